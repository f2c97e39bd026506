"""The library's resumable log pull (nanohub.host.logs), which nanohub log pull
and nanohub fleet logs share: a file continues only the log it came from."""
import struct

import pytest

from nanohub.host import logs
from nanohub.host.views import LogChunk
from nanohub.protocol import auditlog


def raw_log(n, salt=0):
    out, chain = [], auditlog.ZERO_CHAIN
    for i in range(n):
        rec = {"index": i, "t": 10 * i, "event": 3, "a": 1, "b": i + salt, "c": -i}
        chain = auditlog.chain_of(chain, auditlog.head_bytes(rec))
        rec["chain"] = chain
        out.append(struct.pack(auditlog.FMT, *(rec[k] for k in auditlog.NAMES)))
    return out


class LogHub:
    """The log side of a hub: ``records`` from ``first`` on, 7 a chunk."""

    hub_id = 0x4E000001

    def __init__(self, records, first=0):
        self.records, self.first = records, first
        self.asked = []

    def log_chunks(self, start=0):
        self.asked.append(start)
        start = max(start, self.first)
        while True:
            part = self.records[start:start + 7]
            yield LogChunk(start, self.first, len(self.records), list(part))
            start += len(part)
            if not part or start >= len(self.records):
                return


def test_a_pull_resumes_from_the_files_last_whole_record(tmp_path):
    log = raw_log(30)
    path = tmp_path / "hub.log"
    path.write_bytes(b"".join(log[:12]) + log[12][:5])      # cut inside record 12
    hub = LogHub(log)
    seen = []
    start, added, first, end = logs.pull_into(hub, str(path), progress=lambda *a: seen.append(a))
    assert hub.asked == [11]                # the file's last record, asked again
    assert (start, added, first, end) == (12, 18, 0, 30)
    assert path.read_bytes() == b"".join(log)
    assert auditlog.verify(auditlog.parse_records(path.read_bytes())).ok
    assert seen[-1] == (18, 18)


def test_a_pull_continues_past_records_the_hub_rotated_away(tmp_path):
    log = raw_log(30)
    path = tmp_path / "hub.log"
    path.write_bytes(b"".join(log[:12]))
    hub = LogHub(log, first=12)             # records 0..11 gone from the hub
    assert logs.pull_into(hub, str(path))[:2] == (12, 18)
    assert path.read_bytes() == b"".join(log)


def test_another_hubs_file_is_refused_before_anything_is_written(tmp_path):
    path = tmp_path / "hub.log"
    theirs = b"".join(raw_log(12, salt=1))
    path.write_bytes(theirs)
    with pytest.raises(logs.NotThisHub, match="does not continue the log of hub 0x4e000001"):
        logs.pull_into(LogHub(raw_log(30)), str(path))
    assert path.read_bytes() == theirs
    # without resume the file is overwritten from the hub's first record
    assert logs.pull_into(LogHub(raw_log(30)), str(path), resume=False)[:2] == (0, 30)
    assert path.read_bytes() == b"".join(raw_log(30))


def test_the_ack_needs_the_key_and_a_verified_log():
    class Hub:
        acked = None

        def log_ack(self, upto):
            Hub.acked = upto
    res = auditlog.verify(auditlog.parse_records(b"".join(raw_log(5))))
    assert logs.ack(Hub(), None, res) == (None, "no key") and Hub.acked is None
    assert logs.ack(Hub(), b"k" * 32, res) == (5, "") and Hub.acked == 5
