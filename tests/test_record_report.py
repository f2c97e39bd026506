"""Recording sessions into SQLite and reporting them.

A real emulated session (firmware on the MicroPython VM + simulator) is
recorded and the database checked against what the hub sent; a recorder
killed mid-session and one whose hub vanishes leave readable databases; the
report is rendered by headless Chromium and checked for errors and for every
section (a screenshot is saved); one synthetic hour at full telemetry with 64
bots records and reports fast.
"""
import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from _waiting import wait_for
import _background
import _night

from nanohub.host.report import db as report_db
from nanohub.host.study.record import Recorder
from nanohub.host.report import render
from nanohub.host.report.sections import SECTIONS
from nanohub.protocol import codec, schema

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def recorded(presentation_night):
    """The presentation-night session, recorded: (db path, Session)."""
    return presentation_night[:2]


def cli(*args, env=None, timeout=120):
    return subprocess.run([sys.executable, "-m", "nanohub.host.cli"] + [str(a) for a in args],
                          capture_output=True, text=True, timeout=timeout,
                          env=dict(os.environ, **(env or {})))


def rows(db, sql, *params):
    return db.execute(sql, params).fetchall()


# ----------------------------------------------- a real emulated session --

@pytest.mark.vm
def test_database_holds_what_the_hub_sent(recorded):
    path, s = recorded
    assert not Path(str(path) + "-wal").exists(), "a closed recording is one file"
    db = sqlite3.connect(path)
    meta = dict(rows(db, "SELECT key, value FROM meta"))
    assert meta["format"] == "nanohub-session"
    assert int(meta["schema_version"]) == report_db.SCHEMA_VERSION
    assert db.execute("PRAGMA user_version").fetchone()[0] == report_db.SCHEMA_VERSION
    assert meta["ended"] == "complete" and "closed_at" in meta
    assert meta["scenario"] == "presentation-night"
    # hub identity, as the session's first note told it
    hub_id = int(re.search(r"hub 0x([0-9a-f]{8})", s.events[0][2]).group(1), 16)
    (rid, board, bots), = rows(db, "SELECT hub_id, board, bots FROM hub_info")
    assert (rid, board, bots) == (hub_id, "unix", 64)
    # every HUB_STATUS the session's own watcher saw is in the table, field for field
    cols = [d[0] for d in db.execute("SELECT * FROM status LIMIT 0").description][1:]
    table = {r[1]: dict(zip(cols, r[1:])) for r in rows(db, "SELECT * FROM status")}
    assert len(s.statuses) > 100
    assert rows(db, "SELECT count(*) FROM status")[0][0] >= len(s.statuses)
    for _, fields in s.statuses:
        got = table[fields["t"]]
        assert all(got[k if k != "t" else "hub_t"] == v for k, v in fields.items()), fields
    # alarms and site readings the watcher saw
    alarms = rows(db, "SELECT code_name, prio_name, state_name FROM alarm_v")
    for _, name, prio, state in s.alarms:
        assert (name, prio, state) in alarms
    readings = set(rows(db, "SELECT site, depth, dose FROM site_reading"))
    for site, seq in s.sites.items():
        assert {(site, d, q) for _, d, q, *_ in seq} <= readings
    # bot states: one row per bot per frame
    n_frames, n_bots = rows(db, "SELECT count(*), sum(count) FROM bot_frame")[0]
    assert n_frames > 20 and rows(db, "SELECT count(*) FROM bot_state")[0][0] == n_bots
    # every command the operator script sent, each with its ACK
    ops = rows(db, "SELECT v.name, c.signed, v.ack_status_name FROM command_v v JOIN command c "
                   "USING (id) WHERE c.kind = 'command' ORDER BY c.t")
    assert [o[0] for o in ops] == ["TELEM_RATE", "CONSENT", "DEPLOY", "DEPLOY", "DEPLOY", "ARM",
                                   "TREAT_START", "ESTOP"]
    assert all(o[2] in ("DONE", "ACCEPTED") for o in ops), ops
    # the host holds the key, so it also signs TELEM_RATE (a rate below the floor needs a tag)
    assert {o[0] for o in ops if o[1]} == {"TELEM_RATE", "CONSENT", "ARM", "TREAT_START"}
    plan = json.loads(rows(db, "SELECT records FROM command WHERE name = 'TREAT_START'")[0][0])
    assert [p["site"] for p in plan] == sorted(l.site for l in s.scenario.lesions) or \
        [p["site"] for p in plan] == [l.site for l in s.scenario.lesions]
    # the audit log, byte for byte as pulled, and its verification
    raw = b"".join(r[0] for r in rows(db, "SELECT raw FROM audit ORDER BY idx"))
    assert raw == s.log and len(raw) > 0
    assert json.loads(meta["audit_verify"])["ok"] is True and s.log_result.ok
    # the ground truth
    tr = s.trace
    starts = rows(db, "SELECT sim_ms, idx, kind, bots FROM truth_fault WHERE edge = 'start'")
    assert [(a, b, c, tuple(json.loads(d))) for a, b, c, d in starts] == \
        [tuple(f) for f in tr.fault_starts()]
    assert rows(db, "SELECT count(*) FROM truth_bot")[0][0] == len(tr.samples()) * 64
    assert rows(db, "SELECT count(*) FROM truth_bot_change")[0][0] == len(tr.of("bot"))
    assert "DEPLOY" in meta["trace_alignment"]
    # time-indexed reads use the indexes
    for table in ("status", "alarm", "command", "event"):
        plan = " ".join(r[-1] for r in rows(db, "EXPLAIN QUERY PLAN SELECT * FROM %s WHERE t > 5"
                                                % table))
        assert "USING INDEX %s_t" % table in plan, plan
    plan = " ".join(r[-1] for r in rows(db, "EXPLAIN QUERY PLAN SELECT * FROM bot_state "
                                            "WHERE t BETWEEN 5 AND 6"))
    assert "PRIMARY KEY" in plan, plan


@pytest.mark.vm
def test_containment_from_the_database_matches_the_simulator(recorded):
    from nanohub.host.report import truth as report_truth
    from nanohub.host.study.session import outcome
    path, s = recorded
    want = [f for f in outcome(s)["faults"] if "contained_s" in f]
    db = report_db.open_session(path)
    try:
        got = [f for f in report_truth.faults(db) if "contained_s" in f]
    finally:
        db.close()
    assert [f["kind"] for f in got] == [f["kind"] for f in want]
    for g, w in zip(got, want):
        assert g["contained_s"] == pytest.approx(w["contained_s"], abs=1e-6)


# ------------------------------------------------- the report in a browser --

def chromium():
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path
    script = ROOT / "scripts" / "ensure-chromium.sh"
    proc = subprocess.run(["sh", str(script)], capture_output=True, text=True, timeout=900)
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path
    reason = "chromium cannot be installed: %s" % (proc.stdout.strip().splitlines() or ["?"])[-1]
    print(reason)
    pytest.skip(reason)


def browse(tmp_path, page, *extra):
    argv = [chromium(), "--headless", "--no-sandbox", "--disable-gpu",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--no-first-run", "--user-data-dir=%s" % (tmp_path / "chromium-profile"),
            "--enable-logging=stderr", "--v=0", "--hide-scrollbars"] + list(extra)
    return subprocess.run(argv + [page.as_uri()], capture_output=True, text=True, timeout=120)


@pytest.mark.vm
def test_report_renders_in_a_real_browser(recorded, tmp_path):
    path, _ = recorded
    out, (data,) = render([path], tmp_path / "report.html")
    html = out.read_text()
    assert "http://" not in html and "https://" not in html, "self-contained: nothing to fetch"
    n_img = html.count("<img ")
    assert n_img >= 5 and html.count('src="data:image/png;base64,') == n_img
    proc = browse(tmp_path, out, "--dump-dom", "--virtual-time-budget=5000")
    dom = proc.stdout
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert 'data-figures="%d/%d"' % (n_img, n_img) in dom, "every figure decoded"
    assert dom.count('data-ok="1"') == n_img and 'class="broken"' not in dom
    for sid, heading, _ in (("summary", "Summary", None),) + SECTIONS:
        assert 'id="%s"' % sid in dom and heading.split(":")[0] in dom, sid
    assert "Uncaught" not in proc.stderr and "CONSOLE" not in proc.stderr, proc.stderr[-2000:]
    # what a person looks for: the final state, every alarm, every fault, the sites, the log
    want = {data.state_segments()[-1][2], "verifies", "3-occlusal", "14-mesial", "30-buccal"}
    want |= {a[1] for a in data.raised()} | {f["kind"] for f in data.faults}
    assert len(data.faults) >= 4
    for text in want:
        assert text in dom, text
    shot = tmp_path / "report.png"
    proc = browse(tmp_path, out, "--screenshot=%s" % shot, "--window-size=1280,2400")
    assert proc.returncode == 0 and shot.stat().st_size > 50000, proc.stderr[-2000:]
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    print("report %s, screenshot %s" % (out, shot))


@pytest.mark.vm
def test_report_verb_and_compare(recorded, tmp_path):
    path, _ = recorded
    other = tmp_path / "synthetic.db"
    synthetic_hour(other, seconds=60)
    proc = cli("--json", "report", path, other, "-o", tmp_path / "cmp.html")
    assert proc.returncode == 0, proc.stderr
    obj = json.loads(proc.stdout)
    assert obj["ok"] and Path(obj["report"]).is_file()
    assert [Path(x["db"]).name for x in obj["sessions"]] == [path.name, "synthetic.db"]
    html = Path(obj["report"]).read_text()
    assert html.count('class="pair"') == len(SECTIONS)
    assert path.name in html and "synthetic.db" in html
    proc = cli("report", path, "-o", tmp_path / "one.html")
    assert proc.returncode == 0 and proc.stdout.strip() == "report: %s" % (tmp_path / "one.html")


# ------------------------------------------------------- interrupted runs --

def _rows(db_path, table):
    """Rows the recorder has committed so far (0 before the file or table exists).

    Read only once the recorder has put its file in WAL mode (the -wal file
    exists): from then on a reader does not stand in the writer's way."""
    if not Path(str(db_path) + "-wal").exists():
        return 0
    try:
        # read-only: a plain connect would create the file before a slow
        # recorder does, and the recorder then rightly refuses to overwrite it
        db = sqlite3.connect("file:%s?mode=ro" % db_path, uri=True, timeout=1)
        try:                                # closed at once: the recorder's last step
            return db.execute("SELECT count(*) FROM %s" % table).fetchone()[0]
        finally:                            # (one self-contained file) needs it alone
            db.close()
    except sqlite3.Error:
        return 0


@pytest.mark.vm
def test_a_killed_recorder_leaves_a_readable_database(home, tmp_path):
    db_path = tmp_path / "killed.db"
    proc = subprocess.Popen([sys.executable, "-m", "nanohub.host.cli", "--port",
                             "sim:bots=16,scenario=nominal", "record", "-o", str(db_path),
                             "--full"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        def rows():
            assert proc.poll() is None, proc.communicate()
            return _rows(db_path, "status")
        wait_for(lambda: rows() >= 20, timeout=60, what="20 statuses recorded")
        seen = rows()
        wait_for(lambda: rows() > seen, timeout=30, what="a batch after the first check")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    assert Path(str(db_path) + "-wal").exists()
    db = report_db.open_session(db_path)
    try:
        meta = report_db.meta(db)
        n = db.execute("SELECT count(*) FROM status").fetchone()[0]
        assert "closed_at" not in meta and float(meta["last_batch_t"]) > 1.0
        assert n > seen, "the batches after the first check were committed too"
        assert db.execute("SELECT count(*) FROM bot_state").fetchone()[0] >= 16 * 25
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        db.close()
    out, (data,) = render([db_path], tmp_path / "killed.html")
    assert data.interrupted and "INTERRUPTED" in out.read_text()


@pytest.mark.vm
def test_an_unplugged_hub_ends_the_recording_cleanly(home, tmp_path):
    from nanohub.host.emulate.hub import EmulatedHub
    db_path = tmp_path / "unplugged.db"
    with EmulatedHub(bots=8, scenario="nominal", seed=2) as emu:
        proc = subprocess.Popen([sys.executable, "-m", "nanohub.host.cli", "--port", emu.url,
                                 "--key", str(emu.key_path), "record", "-o", str(db_path)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        wait_for(lambda: _rows(db_path, "status") >= 5 and _rows(db_path, "param") > 10,
                 timeout=60, what="statuses and parameters recorded")
        emu.close()                         # the cable is pulled
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 3, (out, err)
    assert "link lost" in err and str(db_path) in err and "Traceback" not in err
    db = report_db.open_session(db_path)
    try:
        meta = report_db.meta(db)
        assert meta["ended"].startswith("link lost") and "closed_at" in meta
        assert db.execute("SELECT count(*) FROM param").fetchone()[0] > 10
        assert db.execute("SELECT count(*) FROM status").fetchone()[0] >= 5
    finally:
        db.close()


# -------------------------------------------------------------- one hour --

def synthetic_hour(path, seconds=3600.0, bots=64, sites=8):
    """Full telemetry (status 10 Hz, 64 bots 25 Hz, sites 10 Hz) fed as fast as it goes."""
    def frame(name, fields, records=()):
        return codec.decode(codec.encode(name, fields, records, seq=1))
    states = [schema.enum_value("BOT", n) for n in ("DOCKED", "ACTIVE", "ACTIVE", "QUARANTINED")]
    pool = [frame("BOT_STATES", {"first": 0}, [
        {"state": states[(b + k) % 4], "site": b % 160, "activity": (b * k) % 101,
         "battery": 90, "health": 99} for b in range(bots)]) for k in range(16)]
    rec = Recorder(path, source="synthetic", meta={"kind": "synthetic full telemetry"})
    t0 = time.perf_counter()
    dose = 0
    for i in range(int(seconds * 50)):             # 20 ms ticks
        t = i * 0.02
        if i % 2 == 0:
            rec.on_frame("rx", pool[(i // 2) % 16], t=t)
        if i % 5 == 0:
            dose += 5
            rec.on_frame("rx", frame("HUB_STATUS", {
                "state": 2, "t": int(t * 1000), "bots": bots, "docked": 16, "active": 32,
                "quarantined": 16, "dose": dose, "dose_cap": 10 ** 7, "sens": 300 + i % 500,
                "scale": 100, "link": 99}), t=t + 0.001)
            rec.on_frame("rx", frame("SITE_READINGS", {}, [
                {"site": s * 9, "ph": 700, "bacteria": 500, "temp": 3700,
                 "depth": 1500 - int(t / 8) % 900, "dose": dose // sites} for s in range(sites)]),
                t=t + 0.002)
        if i % 30000 == 0:
            rec.on_frame("rx", frame("ALARM", {"code": 8, "prio": 2, "state": 0, "bot": 255,
                                               "site": 255, "value": 650, "t": int(t * 1000)}),
                         t=t + 0.003)
    rec.close()
    return time.perf_counter() - t0


def record_hour():
    """One synthetic hour into hour.db here: how long the recording took (s)."""
    return synthetic_hour(Path("hour.db"))


def _hour():
    return _background.call("hour", "test_record_report", "record_hour")


# the presentation night, and the synthetic hour (CPU, not real time) beside the other tests
BACKGROUND = [_night.BACKGROUND, ("hour", _hour)]


def test_one_hour_of_full_telemetry_records_and_reports_fast(tmp_path):
    run = _background.get("hour", _hour)
    took = run.value()
    path = run.dir / "hour.db"
    db = sqlite3.connect(path)
    assert db.execute("SELECT count(*) FROM bot_state").fetchone()[0] == 3600 * 25 * 64
    assert db.execute("SELECT count(*) FROM status").fetchone()[0] == 3600 * 10
    batches = int(dict(db.execute("SELECT key, value FROM meta"))["batches"])
    db.close()
    t = time.perf_counter()
    out, (data,) = render([path], tmp_path / "hour.html")
    report_s = time.perf_counter() - t
    print("one hour, 64 bots, full telemetry: recorded in %.1f s (%d batches, %.0f MB), "
          "reported in %.1f s" % (took, batches, path.stat().st_size / 1e6, report_s))
    assert took < 240, "recording must keep far ahead of real time (3600 s)"
    assert report_s < 30
    assert data.bot_matrix.shape == (64, 600) and abs(data.duration - 3600) < 1


def test_recorder_pairs_commands_with_acks_and_counts_retries(tmp_path):
    rec = Recorder(tmp_path / "unit.db", flush_s=0.05)
    estop = codec.decode(codec.encode("ESTOP", {"source": 0}, seq=77))
    rec.on_frame("tx", estop)
    rec.on_frame("tx", estop)                      # a retry: the same request again
    rec.on_frame("rx", codec.decode(codec.encode("ACK", {"req": 77, "cmd": schema.MSG["ESTOP"],
                                                          "status": 0, "detail": 64}, seq=1)))
    rec.on_frame("rx", codec.decode(codec.encode("ACK", {"req": 9, "cmd": 0x20}, seq=2)))
    rec.on_frame("tx", codec.decode(codec.encode("HEARTBEAT", {"t": 1}, seq=3)))
    rec.note("op", "pressed the button")
    rec.close()                                    # flushes what is left
    db = sqlite3.connect(tmp_path / "unit.db")
    (name, tries, status, detail), = db.execute(
        "SELECT name, tries, ack_status, ack_detail FROM command").fetchall()
    assert (name, tries, status, detail) == ("ESTOP", 2, 0, 64)
    assert db.execute("SELECT name FROM frame_other").fetchall() == [("ACK",)]
    assert db.execute("SELECT kind, text FROM event").fetchall() == [("op", "pressed the button")]


def test_schema_versions_and_migrations(tmp_path, monkeypatch):
    from nanohub.host.errors import UsageError
    path = tmp_path / "s.db"
    Recorder(path).close()
    render([path], tmp_path / "empty.html")         # an empty recording still reports
    db = report_db.open_session(path)
    assert report_db.version_of(db) == report_db.SCHEMA_VERSION
    db.close()
    # a newer release adds a step: opening an older file migrates it in place
    calls = []

    def v2(db):
        calls.append(1)
        db.execute("ALTER TABLE status ADD COLUMN extra INTEGER")
    monkeypatch.setattr(report_db, "MIGRATIONS", report_db.MIGRATIONS + [v2])
    monkeypatch.setattr(report_db, "SCHEMA_VERSION", report_db.SCHEMA_VERSION + 1)
    db = report_db.open_session(path)
    assert calls == [1] and report_db.version_of(db) == report_db.SCHEMA_VERSION
    assert "extra" in [d[0] for d in db.execute("SELECT * FROM status LIMIT 0").description]
    db.close()
    monkeypatch.undo()
    with pytest.raises(report_db.NotASessionDB, match="newer nanohub"):
        report_db.open_session(path)
    # not a session at all
    (tmp_path / "x.txt").write_text("hello")
    sqlite3.connect(tmp_path / "other.db").execute("CREATE TABLE t (a)").connection.close()
    for bad in ("x.txt", "other.db", "missing.db"):
        with pytest.raises(UsageError):
            report_db.open_session(tmp_path / bad)
    proc = cli("report", tmp_path / "other.db")
    assert proc.returncode == 2 and "not a nanohub session database" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_record_refuses_to_overwrite_evidence(tmp_path):
    path = tmp_path / "keep.db"
    path.write_bytes(b"precious")
    proc = cli("--port", "socket://127.0.0.1:9", "record", "-o", path)
    assert proc.returncode == 2 and "--force" in proc.stderr
    assert path.read_bytes() == b"precious"
