"""A random byte stream into the emulated hub: the firmware on the MicroPython VM.

    python fuzz/vm_stream.py --seconds 60 --seed 1

One connection carries a seeded mix of garbage, oversize runs, mutated and
truncated frames, frames of unknown version or id (with a good CRC), HELLOs
of a foreign schema, reads, and commands: energy commands signed wrongly or
not at all, and harmless stop-direction commands. The host codec judges every
chunk as it goes out. Then, through a clean link, the hub must:

- still answer (it never crashed or hung: same process, same boot count);
- count exactly the chunks the host codec rejects (HUB_STATUS rx_bad) and
  log them by class (EV_RX_BAD records);
- have answered every command frame with exactly one ACK, refused every
  energy command that lacked a valid tag, and acted on nothing else (still
  SAFE, counter, parameters and consent unchanged);
- keep an audit log that verifies end to end.
"""
import argparse
import json
import os
import random
import socket
import struct
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from fuzz.props import (  # noqa: E402
    HUB_ID, KEY, OTHER_KEY, P, oracle, raw_frame, split, wire_of, wire,
)
from hub import core  # noqa: E402  (fuzz.props puts firmware/ on the path)
from nanohub.host.emulate.operator import Operator  # noqa: E402
from nanohub.protocol import auditlog, codec, schema  # noqa: E402
from soak.run import vm_rss_kb  # noqa: E402
from nanohub.host.simport import HEAP

ENERGY = [schema.MSG[n] for n in sorted(schema.AUTH_REQUIRED)]
# one burst and its sync read: what the hub parses in one tick
_BURST_MAX = core._PARSE_BYTES - 64
HARMLESS = [schema.MSG[n] for n in ("HOLD", "RECALL", "TREAT_PAUSE", "DISARM", "TREAT_STOP")]
READS = [schema.MSG[n] for n in ("REQUEST", "PARAM_GET", "LOG_READ")]
SYNC_SEQ = 0xF000       # request ids from here up are the harness's sync reads


class Wrapping:
    """A 16-bit counter read now and then (HUB_STATUS ``rx_bad``), unwrapped:
    the count since the first reading, the wraps inferred from successive
    readings (fewer than 2^16 counts between two readings)."""

    def __init__(self, first, bits=16):
        self.mod = 1 << bits
        self.first = self.last = first % self.mod
        self.wraps = 0

    def read(self, value):
        value %= self.mod
        if value < self.last:
            self.wraps += 1
        self.last = value
        return self.count

    @property
    def count(self):
        return self.wraps * self.mod + self.last - self.first


class Generator:
    def __init__(self, seed):
        self.rng = random.Random(seed)
        self.seq = 0
        self.counter = 1000
        self.last = wire_of(raw_frame(wire.M_HEARTBEAT, b"\0\0\0\0"))

    def _seq(self):
        # below SYNC_SEQ: a read of the stream carrying a sync read's id would
        # be answered with that id, early, and taken for the sync reply
        self.seq = (self.seq + 1) % SYNC_SEQ
        return self.seq

    def segment(self):
        r = self.rng
        k = r.randrange(12)
        if k == 0:
            out = bytes(r.randrange(256) for _ in range(r.randrange(1, 80)))
        elif k == 1:
            out = bytes(r.randrange(1, 256) for _ in range(r.randrange(505, 1200))) + b"\0"
        elif k == 2:
            w = bytearray(self.last)
            w[r.randrange(len(w))] ^= 1 << r.randrange(8)
            out = bytes(w)
        elif k == 3:
            out = self.last[:r.randrange(1, max(2, len(self.last) - 1))] + b"\0"
        elif k == 4:
            raw = bytearray(raw_frame(r.choice(READS), b"\1" * 5, seq=self._seq()))
            if r.random() < 0.5:
                raw[0] = (r.randrange(2, 16) << 4) | (raw[0] & 0xF)     # unknown version
            else:
                raw[3] = r.choice([0x00, 0x04, 0x11, 0x3f, 0x50, 0x7f, 0xff])  # unknown id
            out = wire_of(_recrc(raw))
        elif k == 5:
            out = wire_of(raw_frame(wire.M_HELLO, struct.pack("<IH", r.getrandbits(32), 1),
                                    seq=self._seq()))
        elif k == 6:
            msg = r.choice(READS)
            size = wire.MSGS[msg][1]
            payload = bytes(r.randrange(256) for _ in range(size))
            if msg == wire.M_REQUEST:
                payload = bytes((r.randrange(1, 7),))
            out = wire_of(raw_frame(msg, payload, seq=self._seq()))
        elif k in (7, 8, 9):
            msg = r.choice(ENERGY)
            payload = bytes(r.randrange(256) for _ in range(wire.MSGS[msg][1]))
            if msg == wire.M_TREAT_START:
                payload = payload[:-1] + b"\0"
            how = r.randrange(4)
            self.counter += 1
            if how == 0:
                raw = raw_frame(msg, payload, seq=self._seq())                 # no tag
            elif how == 1:
                raw = raw_frame(msg, payload, seq=self._seq(), key=OTHER_KEY,
                                counter=self.counter)                        # another hub's key
            elif how == 2:
                raw = raw_frame(msg, payload, seq=self._seq(), counter=self.counter,
                                tag=bytes(r.randrange(256) for _ in range(8)))  # forged
            else:
                raw = raw_frame(msg, payload, seq=self._seq(), key=KEY, counter=self.counter,
                                tag_len=r.randrange(0, 8))                   # truncated tag
            out = wire_of(raw)
        elif k == 10:
            msg = r.choice(HARMLESS)
            payload = bytes((255,)) if wire.MSGS[msg][1] else b""
            out = wire_of(raw_frame(msg, payload, seq=self._seq()))
        else:
            out = wire_of(raw_frame(wire.M_HEARTBEAT, struct.pack("<I", r.getrandbits(32)),
                                    seq=self._seq()))
        if out.endswith(b"\0") and len(out) > 2:
            self.last = out
        return out


def _recrc(raw):
    import zlib
    raw = bytearray(raw)
    struct.pack_into("<I", raw, len(raw) - 4, zlib.crc32(raw[:-4]))
    return bytes(raw)


class Receiver(threading.Thread):
    def __init__(self, sock):
        super().__init__(daemon=True)
        self.sock = sock
        self.dec = codec.StreamDecoder()
        self.frames = []
        self.bad = 0
        self.done = threading.Event()

    def wait_status(self, seq, timeout, since=0):
        """The HUB_STATUS reply to request ``seq`` (fields) among the frames
        received from index ``since`` on, or None."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            for f in reversed(self.frames[max(since, len(self.frames) - 50):]):
                if f.name == "HUB_STATUS" and f.seq == seq and f.flags & schema.F_REPLY:
                    return f.fields
            time.sleep(0.002)
        return None

    def run(self):
        while not self.done.is_set():
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                return
            if not data:
                return
            for item in self.dec.feed(data):
                if isinstance(item, codec.CodecError):
                    self.bad += 1
                else:
                    self.frames.append(item)


def run_stream(seconds=5.0, seed=1, heap=HEAP, home=None, max_bytes=None):
    """Stream into a fresh emulated hub; returns (figures, violations)."""
    from nanohub.host.client import Hub
    from nanohub.host.emulate.hub import EmulatedHub
    old_home = os.environ.get("NANOHUB_HOME")
    if home is not None:
        os.environ["NANOHUB_HOME"] = str(home)      # keys of this throwaway hub go there
    try:
        return _stream(seconds, seed, heap, max_bytes, Hub, EmulatedHub)
    finally:
        if home is not None:
            if old_home is None:
                os.environ.pop("NANOHUB_HOME", None)
            else:
                os.environ["NANOHUB_HOME"] = old_home


def _stream(seconds, seed, heap, max_bytes, Hub, EmulatedHub):
    violations = []

    def need(cond, what):
        if not cond:
            violations.append(what)
    gen = Generator(seed)
    store = Path(tempfile.mkdtemp(prefix="nanohub-fuzz-hub-"))
    (store / "hub.key").write_bytes(KEY)         # the fixture key (the hub reads it at boot)
    try:
        return _run(gen, store, seconds, heap, max_bytes, violations, need, Hub, EmulatedHub)
    finally:
        import shutil
        shutil.rmtree(store, ignore_errors=True)


def _run(gen, store, seconds, heap, max_bytes, violations, need, Hub, EmulatedHub):
    with EmulatedHub(bots=8, gateway=False, heap=heap, hub_id=HUB_ID, store=store) as emu:
        pid = emu.hub.pid
        with Hub.open(emu.hub_url, key=KEY, timeout=3.0) as h:
            info0 = dict(h.info)
            st0 = h.status()
        rss0 = vm_rss_kb(pid)
        rx_bad = Wrapping(st0["rx_bad"])
        sock = socket.create_connection(("127.0.0.1", emu.host_port), timeout=5.0)
        sock.settimeout(0.2)
        rx = Receiver(sock)
        rx.start()
        pending = b""
        sent = 0
        t_end = time.monotonic() + seconds
        verdicts = []
        segments = bursts = 0
        carry = None
        while time.monotonic() < t_end and (max_bytes is None or sent < max_bytes):
            # a burst fits the hub's parse budget of one tick: a larger one
            # backlogs the link, and a hub held up for _FLOOD_MS on a loaded
            # machine then drains it unparsed (the sync read with it), which
            # is the flood rule working, not something this check can count
            parts = []
            size = 1
            while len(parts) < 20:
                s = carry if carry is not None else gen.segment()
                carry = None
                if parts and size + len(s) > _BURST_MAX:
                    carry = s                   # the next burst starts with it
                    break
                parts.append(s)
                size += len(s)
            seg = b"".join(parts) + b"\0"
            segments += len(parts)
            chunks, pending = split(seg, pending)
            verdicts.extend(oracle(c) for c in chunks)
            sock.sendall(seg)
            sent += len(seg)
            # a read answered in order: once its reply is here, the hub has
            # judged every byte before it
            bursts += 1
            sync = 0xF000 | (bursts & 0xFFF)
            req = wire_of(raw_frame(wire.M_REQUEST, bytes((wire.REQ_STATUS,)), seq=sync))
            chunks, pending = split(req, pending)
            verdicts.extend(oracle(c) for c in chunks)
            since = len(rx.frames)
            sock.sendall(req)
            sent += len(req)
            st = rx.wait_status(sync, 10.0, since)
            if st is None:
                need(False, "no answer to a read after burst %d: the hub hangs" % bursts)
                break
            invalid = sum(1 for v in verdicts if v[0] == "err")
            counted = rx_bad.read(st["rx_bad"])
            need(counted == invalid, "burst %d: rx_bad counted %d (read %d, %d wraps), "
                 "expected %d" % (bursts, counted, st["rx_bad"], rx_bad.wraps, invalid))
            need(st["state"] == wire.HUB_SAFE, "burst %d: the hub left SAFE (%d)"
                 % (bursts, st["state"]))
            if len(violations) > 20:
                break
        time.sleep(1.3)                          # the hub logs its drop counters each second
        rx.done.set()
        sock.close()
        rx.join(2.0)
        alive = emu.hub.poll() is None
        need(alive, "the hub process died: %s" % emu.alive())
        rss1 = vm_rss_kb(pid) if alive else None
        # the library's resilient operator: a hub still draining the stream may
        # answer late or drop the link; reads reconnect and retry
        op = Operator(emu.hub_url, KEY, timeout=3.0)
        try:
            info1 = op.read(lambda h: dict(h.info), within=20.0)
            st1 = op.read(lambda h: h.status())
            raw, _ = op.pull_log()
            # nothing here acknowledges the log: a long run fills it, and the
            # hub then counts records instead of writing them (ALARM_LOG_FULL)
            full = op.read(lambda h: any(a["code"] == "LOG_FULL" for a in h.alarms()))
        finally:
            op.close()
    invalid = [v for v in verdicts if v[0] == "err"]
    valid = [v for v in verdicts if v[0] == "ok"]
    per_class = [0] * 16
    for v in invalid:
        per_class[v[1]] += 1
    need(info1["boots"] == info0["boots"], "the hub rebooted (%d -> %d boots)"
         % (info0["boots"], info1["boots"]))
    # rx_bad counts every bad frame since boot, ours and the clean links' (none)
    counted = rx_bad.read(st1["rx_bad"])
    need(counted == len(invalid), "rx_bad counted %d (read %d, %d wraps), expected %d"
         % (counted, st1["rx_bad"], rx_bad.wraps, len(invalid)))
    need(st1["state"] == "SAFE", "the hub left SAFE: %s" % st1["state"])
    need(info1["counter"] == info0["counter"], "the counter moved: %d -> %d"
         % (info0["counter"], info1["counter"]))
    acks = {}
    for f in rx.frames:
        if f.name == "ACK":
            acks.setdefault((f["req"], f["cmd"]), []).append(f)
    cmds = [v for v in valid if wire.MSGS[v[1]][4] & wire.MF_COMMAND]
    expect = {}
    for v in cmds:
        expect[(v[2], v[1])] = expect.get((v[2], v[1]), 0) + 1
    pget_refusals = sum(1 for v in valid if v[1] == wire.M_PARAM_GET and v[5][0] >= P.COUNT)
    got_cmd_acks = sum(len(a) for k, a in acks.items() if k[1] != wire.M_PARAM_GET)
    need(got_cmd_acks == len(cmds), "%d ACKs for %d command frames" % (got_cmd_acks, len(cmds)))
    for k, n in expect.items():
        need(len(acks.get(k, ())) == n, "request %r: %d ACKs for %d frames"
             % (k, len(acks.get(k, ())), n))
    for k, lst in acks.items():
        if k[1] in ENERGY:
            for a in lst:
                need(a["status"] == schema.enum_value("ACKS", "REJECTED"),
                     "an energy command without a valid tag was accepted: %r" % a.fields)
    need(rx.bad == 0, "the hub sent %d malformed frames" % rx.bad)
    recs = auditlog.parse_records(raw)
    res = auditlog.verify(recs)
    need(res.ok, "the audit log does not verify: %s" % res)
    logged = [0] * 16
    for rec in recs:
        if rec.get("event") == wire.EV_RX_BAD:
            logged[rec["a"]] += rec["c"]
    rotated = bool(recs) and recs[0]["index"] != 0
    drained = sum(rec["c"] for rec in recs if rec.get("event") == wire.EV_RX_DRAIN)
    if not rotated and not full:    # every record kept: exact, class by class
        need(logged[1:] == per_class[1:], "logged drops %r, sent %r" % (logged, per_class))
    else:               # records rotated out or never written: never more than sent
        need(all(g <= s for g, s in zip(logged, per_class)),
             "logged drops %r, sent %r" % (logged, per_class))
    executed = [rec for rec in recs if rec.get("event") == wire.EV_CMD and rec["a"] in ENERGY]
    need(not executed, "energy commands executed: %r" % executed[:3])
    figures = {
        "seconds": seconds, "bytes": sent, "segments": segments, "bursts": bursts,
        "frames": len(verdicts), "accepted": len(valid), "rejected": len(invalid),
        "commands": len(cmds), "acks": got_cmd_acks + pget_refusals,
        "log_records": len(recs), "log_rotated": rotated, "log_full": full, "drained": drained, "rss_kb_start": rss0, "rss_kb_end": rss1,
        "violations": len(violations),
    }
    return figures, violations


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args(argv)
    home = tempfile.mkdtemp(prefix="nanohub-fuzz-home-")
    figures, violations = run_stream(a.seconds, a.seed, home=home)
    print(json.dumps(figures))
    for v in violations[:20]:
        print("VIOLATION:", v)
    return 1 if violations else 0


if __name__ == "__main__":
    sys.exit(main())
