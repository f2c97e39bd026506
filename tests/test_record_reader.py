"""A recording that ends while another process reads its database (a report
being written, ``sqlite3`` at a prompt) is complete, not an error: the
journal mode cannot be switched back while the reader holds it, so the recording
stays in WAL mode (every row committed) until the next lone open folds it."""
import sqlite3
import subprocess
import sys

from nanohub.host.report import db as report_db
from nanohub.host.study.record import Recorder
from nanohub.protocol import codec

READER = """
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
db.execute("SELECT count(*) FROM meta").fetchall()
print("open", flush=True)
sys.stdin.read()
"""


def _record(path, n):
    rec = Recorder(path, source="synthetic", flush_s=0.05)
    for i in range(n):
        rec.on_frame("rx", codec.decode(codec.encode("HUB_STATUS", {
            "state": 2, "t": 20 * i, "bots": 64, "docked": 16, "active": 48, "quarantined": 0,
            "dose": i, "dose_cap": 10 ** 7, "sens": 300, "scale": 100, "link": 99}, seq=i + 1)),
            t=0.02 * i)
    return rec


def test_a_recording_closed_under_a_reader_keeps_every_row_and_says_why(tmp_path):
    path = tmp_path / "read-while-recording.db"
    rec = _record(path, 40)
    reader = subprocess.Popen([sys.executable, "-c", READER, str(path)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert reader.stdout.readline().strip() == "open"
        rec.close()                                 # must not raise "database is locked"
        assert rec.wal_kept and str(path) in rec.wal_kept
    finally:
        reader.communicate("", timeout=10)
    db = report_db.open_session(path)               # alone now: SQLite folds the journal
    try:
        assert report_db.meta(db)["ended"] == "complete"
        assert report_db.count(db, "status") == 40
    finally:
        db.close()


def test_a_recording_closed_alone_is_one_file(tmp_path):
    path = tmp_path / "alone.db"
    rec = _record(path, 3)
    rec.close()
    assert rec.wal_kept is None
    assert not (tmp_path / (path.name + "-wal")).exists()
    assert sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone()[0] == "delete"
