"""Power cuts: the hub loses power in the middle of what it writes, then boots.

Two rigs, one set of properties:

1. Every step, exhaustively (CPython, fast): the firmware's store runs on an
   in-memory filesystem (``tests/_cutfs.py``) that cuts power at the k-th
   mutating operation (a write leaves a random prefix; a rename or remove does
   not happen), for every k of a workload that sets parameters, signs
   commands, latches an emergency stop and rotates log segments; and again
   during the recovery boot (a cut while recovering from a cut).
2. SIGKILL at random times (the real firmware on the MicroPython VM, unix
   board, a real directory): a workload makes the hub write (signed
   PARAM_SETs: counter, parameters and audit log; unsigned commands: audit
   log), the process is killed, sometimes the medium also loses the unsynced
   tail of the last record, then the hub restarts on the same store.

After every cut, at the next boot:
- the hub comes up SAFE, or ESTOP if the latch was set: never treating;
- parameters are the old or the new value, never corrupt nor defaults after
  a set was acknowledged; the state record is never corrupt, and the counter
  high-water mark never falls below a counter the hub acknowledged;
- the audit log verifies; every record written before the cut is still there
  unchanged; a torn tail is dropped and the drop is logged (EV_TORN, with
  the LOG_TORN alarm).
"""
import os
import random
import signal
import struct
import sys
import time
from pathlib import Path

import pytest

from _waiting import arrived, wait_for

from _cutfs import CutFS, PowerCut
from _fuzzing import ROOT, props

from boards.null import Board  # noqa: E402  (firmware on sys.path via props)
from hub import params as P  # noqa: E402
from hub import state as S  # noqa: E402
from hub import store as store_mod  # noqa: E402
from hub import wire  # noqa: E402
from hub.core import Hub  # noqa: E402
from nanohub.protocol import auditlog, codec  # noqa: E402

KEY = props.KEY
ROOTDIR = "/hub"
LEASES = (1500, 2500, 3000)
DEFAULT_LEASE = 2000


# ------------------------------------------------- every step (CPython) --

@pytest.fixture
def cutfs(monkeypatch):
    fs = CutFS({ROOTDIR + "/hub.key": KEY}, seed=7)
    fs.dirs.add(ROOTDIR)
    monkeypatch.setattr(store_mod, "os", fs.os)
    monkeypatch.setattr(store_mod, "open", fs.open, raising=False)
    return fs


def make_hub(fs):
    store = store_mod.Store(ROOTDIR)
    board = Board(store=store)
    hub = Hub(board, 4, props.HUB_ID)
    hub.log.per_seg = 4          # small segments: rotation happens inside the workload
    hub.log.max_segs = 3
    return hub, board, store


class Host:
    """Sends frames to a hub on the null board and remembers what it acknowledged."""

    def __init__(self, hub, board, now=0):
        self.hub, self.board, self.now = hub, board, now
        self.seq = 0
        self.counter = 0
        self.acked = []               # (msg, status, counter, value)
        self.sent = []                # (msg, counter, value), in order
        self.dec = codec.StreamDecoder()

    def send(self, msg, payload=b"", signed=False, value=None):
        self.seq += 1
        key = None
        if signed:
            self.counter += 1
            key = KEY
        raw = props.raw_frame(msg, payload, seq=self.seq, key=key, counter=self.counter,
                              expires=(self.now + 500) & props.wire.HUB_TIME_MASK)
        self.sent.append((msg, self.counter if signed else 0, value))
        self.board.host_in.extend(props.wire_of(raw))
        try:
            self.hub.poll(self.now)
        finally:
            self._collect()

    def tick(self, n=1):
        for _ in range(n):
            self.now += 20
            self.board.clock = self.now
            try:
                self.hub.tick(self.now)
            finally:
                self._collect()

    def _collect(self):
        data = bytes(self.board.host_out)
        self.board.host_out[:] = b""
        for f in self.dec.feed(data):
            if isinstance(f, codec.Frame) and f.name == "ACK":
                sent = [s for s in self.sent if s[0] == f["cmd"]]
                self.acked.append((f["cmd"], f["status"], sent[-1][1] if sent else 0,
                                   sent[-1][2] if sent else None))


def workload(host):
    host.send(wire.M_HELLO, struct.pack("<IH", wire.SCHEMA, 1))
    host.send(wire.M_PARAM_SET, struct.pack("<Bi", P.P_LEASE_MS, LEASES[0]), True, LEASES[0])
    host.send(wire.M_CONSENT, struct.pack("<I", 42), True)
    host.send(wire.M_HOLD, b"\xff")
    host.tick(3)
    host.send(wire.M_PARAM_SET, struct.pack("<Bi", P.P_LEASE_MS, LEASES[1]), True, LEASES[1])
    host.send(wire.M_RECALL, b"\xff")
    host.send(wire.M_ESTOP, b"\x00")
    host.tick(3)
    host.send(wire.M_PARAM_SET, struct.pack("<Bi", P.P_LEASE_MS, LEASES[2]), True, LEASES[2])
    host.tick(2)


def log_records(fs):
    """(index, bytes) of every whole record on the medium, from the segment files."""
    out = {}
    for path in sorted(fs.files):
        name = path.rsplit("/", 1)[1]
        if not name.startswith("log.") or not name[4:].isdigit():
            continue
        data = fs.files[path]
        first = int(name[4:])
        whole = (len(data) - 8) // wire.LOG_SIZE if len(data) >= 8 else 0
        for k in range(whole):
            out[first + k] = bytes(data[8 + k * wire.LOG_SIZE:8 + (k + 1) * wire.LOG_SIZE])
    return out


def torn_bytes(fs):
    segs = sorted(p for p in fs.files if p.rsplit("/", 1)[1][:4] == "log." and
                  p.rsplit("/", 1)[1][4:].isdigit())
    if not segs:
        return 0
    size = len(fs.files[segs[-1]])
    return size if size < 8 else (size - 8) % wire.LOG_SIZE


def check_boot(fs, hub, host, before):
    """The properties after a cut, ``before`` = the medium's log records then."""
    st = hub.state
    assert st in (wire.HUB_SAFE, wire.HUB_ESTOP), st
    estop_acked = any(a[0] == wire.M_ESTOP and a[1] != wire.ACKS_REJECTED for a in host.acked)
    if estop_acked:
        assert st == wire.HUB_ESTOP, "an acknowledged emergency stop did not survive the cut"
    assert hub.state_store.estop == (st == wire.HUB_ESTOP)
    # parameters: old or new, never corrupt
    pr = P.Params(hub.params.store)
    code = pr.load()
    assert code in (P.LOAD_OK, P.LOAD_MISSING), "params.bin corrupt after a cut (%d)" % code
    lease = hub.params.get(P.P_LEASE_MS)
    acked = [a[3] for a in host.acked if a[0] == wire.M_PARAM_SET and a[1] == wire.ACKS_DONE]
    sent = [s[2] for s in host.sent if s[0] == wire.M_PARAM_SET]
    if acked:
        k = sent.index(acked[-1])
        assert lease in sent[k:k + 2], (lease, acked, sent)      # the acked value or the next
    else:
        assert lease in (DEFAULT_LEASE,) + tuple(sent[:1]), lease
    # state record: never corrupt; counter never below an acknowledged one
    ss = S.State(hub.params.store)
    assert ss.load() in (S.LOAD_OK, S.LOAD_MIRROR), "state record lost or corrupt"
    signed = [a[2] for a in host.acked if a[2]]
    if signed:
        assert hub.state_store.counter >= max(signed)
    # the log: verifies, keeps everything written before the cut, logs a torn tail
    ok, bad = hub.log.verify()
    assert ok, "the audit log does not verify after a cut (bad at %d)" % bad
    after = log_records(fs)
    for index, rec in before.items():
        if index >= hub.log.first_index:
            assert after.get(index) == rec, "record %d lost or changed by the cut" % index
    return after


@pytest.mark.parametrize("second_cut", [False, True], ids=["one-cut", "cut-during-recovery"])
def test_a_cut_at_every_write_leaves_old_or_new_never_corrupt(cutfs, second_cut):
    fs = cutfs
    hub, board, _ = make_hub(fs)
    hub.boot(0)
    workload(Host(hub, board))
    total = fs.steps
    assert total > 60
    tried = torn_seen = recoveries = 0
    pristine = {ROOTDIR + "/hub.key": KEY}
    for k in range(1, total + 1):
        for j in (range(1, 14) if second_cut else (None,)):
            fs.files = {p: bytearray(v) for p, v in pristine.items()}
            fs.steps, fs.cut_at = 0, k
            hub, board, _ = make_hub(fs)
            host = Host(hub, board)
            try:
                hub.boot(0)
                workload(host)
            except PowerCut:
                pass
            else:
                continue                                    # k was past the end
            tried += 1
            before = log_records(fs)
            torn = torn_bytes(fs)
            torn_seen += bool(torn)
            if j is not None:                               # the lights flicker again
                fs.steps, fs.cut_at = 0, j
                try:
                    make_hub(fs)[0].boot(0)
                    continue                                # the boot wrote less than j
                except PowerCut:
                    recoveries += 1
                    torn = torn or torn_bytes(fs)
            fs.cut_at = None
            hub2, board2, _ = make_hub(fs)
            hub2.boot(0)
            check_boot(fs, hub2, host, before)
            if torn and j is None:
                recs = [auditlog.parse_records(r)[0] for _, r in sorted(log_records(fs).items())]
                assert any(r["event"] == wire.EV_TORN and r["c"] == torn for r in recs)
                assert hub2.alarms.active(wire.ALARM_LOG_TORN)
    assert tried >= total - 2
    assert torn_seen > 5
    if second_cut:
        assert recoveries > 50


# -------------------------------------------- SIGKILL (MicroPython VM) --


def _segments(store):
    return sorted(p for p in Path(store).iterdir() if p.name.startswith("log.")
                  and p.name[4:].isdigit())


def _disk_records(store):
    out = {}
    for p in _segments(store):
        data = p.read_bytes()
        first = int(p.name[4:])
        for k in range(max(0, (len(data) - 8) // wire.LOG_SIZE)):
            out[first + k] = data[8 + k * wire.LOG_SIZE:8 + (k + 1) * wire.LOG_SIZE]
    return out


def _disk_torn(store):
    segs = _segments(store)
    if not segs:
        return 0
    size = segs[-1].stat().st_size
    return size if size < 8 else (size - 8) % wire.LOG_SIZE


class Rig:
    """The emulated hub (VM + swarm gateway) whose hub process we kill."""

    def __init__(self, emu):
        self.emu = emu
        self.main = Path(props.ROOT) / "firmware" / "main.py"

    def kill(self):
        os.kill(self.emu.hub.pid, signal.SIGKILL)
        self.emu.hub.wait(5)

    def restart(self):
        # the launcher's own start path (same store, ports and gateway)
        if not self.emu._start_hub(self.main):
            raise AssertionError("the hub did not restart: %s" % self.emu.alive())

    def connect(self):
        from nanohub.host.client import Hub
        return Hub.open(self.emu.hub_url, key=KEY, timeout=2.0, retries=4)


def run_cycles(emu, cycles, seed, figures=None):
    """Kill the hub at random points of a write-heavy workload, ``cycles`` times."""
    rng = random.Random(seed)
    rig = Rig(emu)
    store = emu.store
    fig = figures if figures is not None else {}
    fig.update(cycles=0, mid_write=0, torn_tails=0, medium_loss=0, estop_boots=0,
               lease_values=set())
    with rig.connect() as h:
        boots = h.info["boots"]
        pulled = h.log_pull()
        acked_lease, counter_hw = None, h.info["counter"]
    for cycle in range(cycles):
        # ---- a workload that writes, killed at a random moment
        with rig.connect() as h:
            h.set_rates(1, 0, 0)
            mode = rng.choice(("params", "params", "commands", "estop"))
            frames, leases = [], []
            for i in range(rng.randrange(10, 40)):
                if mode == "estop" and i == 7:
                    seq, w = h.build("ESTOP", {"source": 2})
                elif mode == "commands" or (mode == "estop" and i % 3):
                    seq, w = h.build(rng.choice(("HOLD", "RECALL")), {"bot": 255})
                else:
                    v = rng.choice(LEASES)
                    seq, w = h.build("PARAM_SET", {"index": P.P_LEASE_MS, "value": v})
                    leases.append(v)
                frames.append(w)
            acks = []
            sub = h._wait_for(lambda f: f.name == "ACK")
            h.send_raw(b"".join(frames))
            time.sleep(rng.uniform(0.0, 0.25))         # a power cut at a random moment
            rig.kill()
            while True:
                try:
                    f = sub.get(0.05)
                except Exception:                       # the link died with the hub
                    break
                if f is None:
                    break
                acks.append(f)
            h._unwait(sub)
        done = [a for a in acks if a["cmd"] == wire.M_PARAM_SET and a["status"] == wire.ACKS_DONE]
        if done:
            acked_lease = done[-1]["detail"]
        signed = [a for a in acks if a["cmd"] == wire.M_PARAM_SET]
        leftovers = [p.name for p in Path(store).iterdir() if p.name.endswith((".tmp", ".new"))]
        fig["mid_write"] += bool(leftovers) or bool(_disk_torn(store))
        if rng.random() < 0.35 and _segments(store):          # the medium lost the last bytes
            seg = _segments(store)[-1]
            size = seg.stat().st_size
            if size > 8 + wire.LOG_SIZE:
                cut = rng.randrange(1, wire.LOG_SIZE)
                os.truncate(seg, size - cut)
                fig["medium_loss"] += 1
        before = _disk_records(store)
        torn = _disk_torn(store)
        estop_latched = any(a["cmd"] == wire.M_ESTOP for a in acks)
        # ---- restart on the same store, check the boot
        rig.restart()
        with rig.connect() as h:
            info = h.info
            boots += 1
            assert info["boots"] == boots, "boot count %d, expected %d" % (info["boots"], boots)
            state = h.status()["state"]
            assert state in ("SAFE", "ESTOP"), state
            if estop_latched:
                assert state == "ESTOP" and info["estop"]
            fig["estop_boots"] += state == "ESTOP"
            lease = h.param_get("lease_ms")["value"]
            fig["lease_values"].add(lease)
            assert lease in (DEFAULT_LEASE,) + LEASES
            if acked_lease is not None:
                assert lease in LEASES, "parameters fell back to defaults after a cut"
            if signed:
                assert info["counter"] >= max(counter_hw, 0)
            counter_hw = info["counter"]
            raw = h.log_pull()
            recs = auditlog.parse_records(raw)
            res = auditlog.verify(recs)
            assert res.ok, "the audit log does not verify after SIGKILL: %s" % res
            # nothing pulled before, nor anything on the medium before the cut, is lost
            old = auditlog.parse_records(pulled)
            now_by_index = {r["index"]: r["raw"] for r in recs}
            for r in old:
                if r["index"] >= recs[0]["index"]:
                    assert now_by_index.get(r["index"]) == r["raw"], "pulled record lost"
            for index, rec in before.items():
                if index >= recs[0]["index"]:
                    assert now_by_index.get(index) == rec, "record %d lost by the cut" % index
            if torn:
                fig["torn_tails"] += 1
                tail = [r for r in recs if r["index"] >= max(before, default=-1) + 1]
                assert tail and tail[0]["event"] == wire.EV_TORN and tail[0]["c"] == torn, \
                    "torn tail of %d bytes not dropped and logged first" % torn
                assert any(a["code"] == "LOG_TORN" for a in h.alarms())
            pulled = raw
            if state == "ESTOP" and rng.random() < 0.5:
                h.ack_alarms()
                h.reset_estop()
        fig["cycles"] += 1
    return fig


def keyed_hub(store, bots, seed):
    """An emulated hub (nominal scenario) keeping its storage in ``store``, its key KEY."""
    from nanohub.host.emulate.hub import EmulatedHub
    store.mkdir(exist_ok=True)
    (store / "hub.key").write_bytes(KEY)
    return EmulatedHub(bots=bots, scenario="nominal", seed=seed, store=store, hub_id=props.HUB_ID)


@pytest.mark.vm
def test_sigkill_at_random_points_never_corrupts_and_never_resumes(tmp_path, home):
    with keyed_hub(tmp_path / "hub", bots=4, seed=2) as emu:
        fig = run_cycles(emu, cycles=int(os.environ.get("POWERCUT_CYCLES", 10)), seed=11)
    assert fig["cycles"] >= 10
    assert fig["torn_tails"] >= 1                    # the torn-tail path ran on the VM
    assert len(fig["lease_values"]) >= 2


@pytest.mark.vm
def test_a_hub_killed_while_treating_boots_safe_and_the_bots_stop(tmp_path, home):
    with keyed_hub(tmp_path / "hub", bots=6, seed=3) as emu:
        rig = Rig(emu)
        with rig.connect() as h:
            h.consent(7)
            site = 10                                  # the nominal scenario's first lesion
            h.deploy(site, 3)
            arrived(h, (site,), count=3)                # travel ends (a bot en route reads 0 um)
            h.arm()
            from nanohub.host.plan import Plan, PlanSite
            h.treat_start(Plan(session_cap=200000, site_cap=100000, rate_cap=2000,
                               duration_s=60, sites=[PlanSite(site, 500, 3)]))
            wait_for(lambda: h.status()["state"] == "TREATING", what="the treatment to run")
            seq, w = h.build("PARAM_SET", {"index": P.P_LEASE_MS, "value": 1500})
            h.send_raw(w * 1)                          # refused while treating, but written
            rig.kill()
        rig.restart()
        with rig.connect() as h:
            st = h.status()
            assert st["state"] == "SAFE" and h.info["state"] == wire.HUB_SAFE
            recs = auditlog.parse_records(h.log_pull())
            assert auditlog.verify(recs).ok
            boot = max(k for k, r in enumerate(recs) if r["event"] == wire.EV_BOOT)
            states = [r for r in recs if r["event"] == wire.EV_STATE]
            assert [r for r in states if r["index"] < recs[boot]["index"]][-1]["a"] == \
                wire.HUB_TREATING                      # it was treating when the power went
            assert not [r for r in states if r["index"] > recs[boot]["index"]
                        and r["a"] in (wire.HUB_ARMED, wire.HUB_TREATING)]
            # the leases (2 s) the bots had run out: each stops on its own
            wait_for(lambda: not [b for b in h.bots() if b["activity"] > 0], timeout=2.5,
                     what="the bots' leases to run out")
            assert h.status()["state"] == "SAFE"


if __name__ == "__main__":      # python tests/test_powercut.py CYCLES: a longer SIGKILL run
    sys.path.insert(0, str(ROOT))
    import tempfile
    os.environ["NANOHUB_HOME"] = tempfile.mkdtemp()
    with keyed_hub(Path(tempfile.mkdtemp()), bots=4, seed=2) as e:
        print(run_cycles(e, int(sys.argv[1]) if len(sys.argv) > 1 else 50, seed=int(time.time())))
