"""The firmware writes the audit log on the MicroPython VM; the host verifier checks it.

Also: the firmware's HMAC-SHA256 on the VM agrees with CPython's hmac, and the
firmware log code gives the same bytes on CPython as on the VM.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import os
import random
import subprocess
import sys
import textwrap

import pytest

from nanohub.host import vm
from nanohub.protocol import auditlog, schema

EV = {n: v for n, v, _ in schema.ENUMS["EV"]}

WRITER = textwrap.dedent("""
    import sys, json
    from binascii import hexlify
    from hub import wire
    from hub.audit import AuditLog
    from hub.store import Store

    root, per_seg, max_segs, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    log = AuditLog(Store(root), per_seg, max_segs)
    dropped = log.open(99)
    events = (wire.EV_BOOT, wire.EV_STATE, wire.EV_CMD, wire.EV_REJECT, wire.EV_ALARM)
    for i in range(n):
        log.append(1000 + 7 * i, events[i % len(events)], i & 0xFF, 3 * i, 1000 * i - 50000)
    # what LOG_CHUNK replies would carry, read in chunks from index 0
    buf = bytearray(wire.LOG_CHUNK_MAX * wire.LOG_SIZE)
    chunks, start = [], 0
    while True:
        count, first, nxt = log.read_into(start, wire.LOG_CHUNK_MAX, buf, 0)
        if not count:
            break
        start = max(start, first)
        chunks.append([start, hexlify(buf[:count * wire.LOG_SIZE]).decode()])
        start += count
    ok, bad = log.verify()
    print(json.dumps({"dropped": dropped, "first": log.first_index, "next": log.next_index,
                      "chunks": chunks, "ok": ok, "bad": bad}))
""")

HMACS = textwrap.dedent("""
    import sys, json
    from binascii import hexlify, unhexlify
    from hub import hmac
    with open(sys.argv[1]) as f:
        cases = json.load(f)
    print(json.dumps([hexlify(hmac.hmac_sha256(unhexlify(k), unhexlify(m))).decode()
                      for k, m in cases]))
""")


def run_vm(tmp_path, source, *args):
    script = tmp_path / "script.py"
    script.write_text(source)
    argv, env = vm.vm_command([script, *args], heap="256k")
    proc = subprocess.run(argv, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def write_log(tmp_path, root, n, per_seg=256, max_segs=8):
    return run_vm(tmp_path, WRITER, root, per_seg, max_segs, n)


def pulled(out):
    return b"".join(bytes.fromhex(h) for _, h in out["chunks"])


def segments(root):
    return [(root / name).read_bytes() for name in sorted(os.listdir(root))
            if name.startswith("log.") and name[4:].isdigit()]


def test_log_written_by_the_firmware_verifies_on_the_host(micropython, tmp_path):
    root = tmp_path / "store"
    out = write_log(tmp_path, root, 60)
    assert (out["ok"], out["first"], out["next"], out["dropped"]) == (True, 0, 60, 0)
    records = auditlog.parse_records(pulled(out))
    assert [r["index"] for r in records] == list(range(60))
    res = auditlog.verify(records, expect_start=0)
    assert res.ok and res.anchored and res.count == 60, res
    assert auditlog.verify_segments(segments(root)).ok
    assert records[2]["event"] == EV["CMD"] and records[2]["c"] == 2000 - 50000
    assert "CMD" in auditlog.describe(records[2])


def tampered(data, pos, byte=0x01):
    data = bytearray(data)
    data[pos] ^= byte
    return bytes(data)


def test_host_names_the_first_bad_record(micropython, tmp_path):
    data = pulled(write_log(tmp_path, tmp_path / "store", 20))
    R = auditlog.SIZE
    cases = {
        "flip c": (tampered(data, 5 * R + 12), 5, auditlog.CHAIN_BREAK),
        "flip chain": (tampered(data, 7 * R + 20), 7, auditlog.CHAIN_BREAK),
        "index down": (tampered(data, 9 * R), 9, auditlog.INDEX_ORDER),
        "index up": (tampered(data, 9 * R, 0x02), 9, auditlog.INDEX_GAP),
        "removed": (data[:4 * R] + data[5 * R:], 4, auditlog.INDEX_GAP),
        "repeated": (data[:6 * R] + data[5 * R:], 6, auditlog.INDEX_ORDER),
        "truncated": (data[:-3], 19, auditlog.TRUNCATED),
    }
    for what, (bad, index, reason) in cases.items():
        res = auditlog.verify(auditlog.parse_records(bad))
        assert not res.ok, what
        assert (res.bad_index, res.reason) == (index, reason), (what, res)
        assert "BAD at record %d" % index in str(res)
    # a record rewritten with a recomputed chain still breaks the next link
    recs = auditlog.parse_records(data)
    recs[3]["c"] += 1
    recs[3]["chain"] = auditlog.chain_of(recs[2]["chain"], auditlog.head_bytes(recs[3]))
    res = auditlog.verify(recs)
    assert (res.bad_index, res.reason) == (4, auditlog.CHAIN_BREAK)
    # the start of the log is anchored by zeros, or by a known head
    res = auditlog.verify(auditlog.parse_records(data), expect_start=1)
    assert (res.bad_index, res.reason) == (1, auditlog.INDEX_ORDER)
    res = auditlog.verify(auditlog.parse_records(data[R:]), expect_start=0)
    assert (res.bad_index, res.reason) == (0, auditlog.INDEX_GAP)
    assert not auditlog.verify(auditlog.parse_records(data), anchor=b"\1" * 8).ok


def test_firmware_and_host_agree_on_tampered_segments(micropython, tmp_path):
    root = tmp_path / "store"
    write_log(tmp_path, root, 10)
    seg = root / "log.0000000000"
    seg.write_bytes(tampered(seg.read_bytes(), 8 + 6 * auditlog.SIZE + 10))
    out = write_log(tmp_path, root, 0)
    assert (out["ok"], out["bad"]) == (False, 6)
    res = auditlog.verify_segments(segments(root))
    assert (res.ok, res.bad_index, res.reason) == (False, 6, auditlog.CHAIN_BREAK)


def test_torn_tail_is_dropped_and_logged_and_the_log_still_verifies(micropython, tmp_path):
    root = tmp_path / "store"
    write_log(tmp_path, root, 12)
    seg = root / "log.0000000000"
    with open(seg, "ab") as f:
        f.write(b"\xaa" * 11)  # a power cut in the middle of record 12
    assert not auditlog.verify_segments(segments(root)).ok
    out = write_log(tmp_path, root, 2)
    assert (out["dropped"], out["ok"], out["next"]) == (11, True, 15)
    records = auditlog.parse_records(pulled(out))
    torn = records[12]
    assert (torn["event"], torn["c"], torn["t"]) == (EV["TORN"], 11, 99)
    assert auditlog.verify(records).ok
    assert auditlog.verify_segments(segments(root)).ok
    assert "TORN" in auditlog.describe(torn)


def test_rotated_log_verifies_from_its_oldest_segment(micropython, tmp_path):
    root = tmp_path / "store"
    out = write_log(tmp_path, root, 100, per_seg=16, max_segs=3)
    assert (out["ok"], out["first"], out["next"]) == (True, 64, 100)
    assert len(segments(root)) == 3
    records = auditlog.parse_records(pulled(out))
    assert records[0]["index"] == 64
    res = auditlog.verify(records)
    assert res.ok and not res.anchored
    segs = segments(root)
    res = auditlog.verify(records, anchor=segs[0][:8], expect_start=64)
    assert res.ok and res.anchored and res.last_index == 99
    assert auditlog.verify_segments(segs).ok
    # an archived pull continues from its head: the next pull must link to it
    head = res.head
    out = write_log(tmp_path, root, 5, per_seg=16, max_segs=3)
    new = [r for r in auditlog.parse_records(pulled(out)) if r["index"] >= 100]
    assert auditlog.verify(new, anchor=head, expect_start=100).ok
    assert not auditlog.verify(new[1:], anchor=head, expect_start=100).ok
    # a segment anchor that does not link to the previous segment is a break
    segs[1] = b"\0" * 8 + segs[1][8:]
    res = auditlog.verify_segments(segs)
    assert (res.ok, res.bad_index, res.reason) == (False, 80, auditlog.CHAIN_BREAK)


def test_firmware_writes_the_same_bytes_on_cpython(micropython, tmp_path):
    write_log(tmp_path, tmp_path / "vm", 40, 16, 8)
    sys.path.insert(0, str(vm.firmware_dir()))
    try:
        from hub import wire
        from hub.audit import AuditLog
        from hub.store import Store
        log = AuditLog(Store(str(tmp_path / "cpy")), 16, 8)
        log.open(99)
        events = (wire.EV_BOOT, wire.EV_STATE, wire.EV_CMD, wire.EV_REJECT, wire.EV_ALARM)
        for i in range(40):
            log.append(1000 + 7 * i, events[i % len(events)], i & 0xFF, 3 * i, 1000 * i - 50000)
        assert log.verify() == (True, -1)
    finally:
        sys.path.remove(str(vm.firmware_dir()))
    assert segments(tmp_path / "cpy") == segments(tmp_path / "vm")


def test_describe_reads_like_a_log_line():
    rec = {"index": 3, "t": 1500, "event": EV["STATE"], "a": 2, "b": 1, "c": 0, "chain": bytes(8)}
    line = auditlog.describe(rec)
    assert "#3" in line and "1.500 s" in line and "STATE" in line and "ARMED -> TREATING" in line
    rec.update(event=EV["REJECT"], a=0x20, b=17, c=schema.enum_value("WHY", "AUTH_BAD"))
    assert "ARM req 17: AUTH_BAD" in auditlog.describe(rec)


RFC4231 = [
    (b"\x0b" * 20, b"Hi There"),
    (b"Jefe", b"what do ya want for nothing?"),
    (b"\xaa" * 20, b"\xdd" * 50),
    (bytes(range(1, 26)), b"\xcd" * 50),
    (b"\x0c" * 20, b"Test With Truncation"),
    (b"\xaa" * 131, b"Test Using Larger Than Block-Size Key - Hash Key First"),
    (b"\xaa" * 131, b"This is a test using a larger than block-size key and a larger than "
                    b"block-size data. The key needs to be hashed before being used by the "
                    b"HMAC algorithm."),
]


def test_firmware_hmac_matches_cpython(micropython, tmp_path):
    rng = random.Random(4231)
    cases = list(RFC4231)
    for klen in (0, 1, 31, 32, 63, 64, 65, 128, 200):
        for mlen in (0, 1, 55, 64, 200, 501):
            cases.append((rng.randbytes(klen), rng.randbytes(mlen)))
    path = tmp_path / "cases.json"
    path.write_text(json.dumps([[k.hex(), m.hex()] for k, m in cases]))
    got = run_vm(tmp_path, HMACS, path)
    want = [hmac.new(k, m, hashlib.sha256).hexdigest() for k, m in cases]
    assert got == want


def test_firmware_hmac_on_cpython_matches_too():
    sys.path.insert(0, str(vm.firmware_dir()))
    try:
        from hub import hmac as fw_hmac
    finally:
        sys.path.remove(str(vm.firmware_dir()))
    rng = random.Random(1)
    for _ in range(50):
        k, m = rng.randbytes(rng.randrange(150)), rng.randbytes(rng.randrange(300))
        assert fw_hmac.hmac_sha256(k, m) == hmac.new(k, m, hashlib.sha256).digest()
        assert fw_hmac.tag(k, m) == hmac.new(k, m, hashlib.sha256).digest()[:8]
        assert fw_hmac.equal(fw_hmac.tag(k, m), hmac.new(k, m, hashlib.sha256).digest()[:8])
