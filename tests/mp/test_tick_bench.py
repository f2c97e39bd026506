# heap: 1m
"""The tick's per-bot table loops in viper (hub/viperbytes.py: the report
fields of ``Swarm.ingest``, ``control.gather``, the BOT_STATES records) match
their portable twins exactly: the same tables and frames from the same
inputs, garbled and negative values included. Without a native emitter (the
.mpy run) only the portable code runs, and the tests say so by skipping."""
from mptest import SkipTest, eq, true

from hub import control, frame, telemetry, wire
from hubkit import BENCH_SITES as SITES, bench_treating

TABLES = ("state", "said", "site", "activity", "battery", "health", "temp", "ph", "depth",
          "bacteria", "heard", "heard_ever", "target", "dose", "ctr", "ctr_ok", "prate", "pt",
          "pdose", "pk", "runaway", "cmd_rate")
PLAN = ("fresh", "nb", "depth", "temp", "ph", "bact", "dose", "dconf", "pset", "pfine", "prs")


def _treating(n):
    return bench_treating(n, 600)


class Lcg:
    """A small seeded generator (MicroPython's random has no Random class)."""

    def __init__(self, seed):
        self.x = seed

    def getrandbits(self, k):
        self.x = (self.x * 1103515245 + 12345) & 0x7FFFFFFF
        return (self.x >> 8) & ((1 << k) - 1)

    def choice(self, seq):
        return seq[self.getrandbits(16) % len(seq)]


def _viper():
    if not frame.select(True):
        raise SkipTest("no native emitter on this port: the portable loops alone run")


def _snapshot(hub):
    sw = hub.swarm
    plan = hub.plan
    out = [list(getattr(sw, t)) for t in TABLES]
    out += [list(getattr(plan, t))[:plan.n] for t in PLAN]
    out.append((sw.conf_total, sw.pset_total, sw.pfine_total, sw.prs_total, sw.changed,
                sw.reports, sw.sweep_at))
    return out


def _checker(seen):
    def check(hub, i, now):
        seen.append(("check", i, now, hub.swarm.conf_total, hub.swarm.pfine_total))
    return check


def _recorder(seen):
    def record(event, a=0, b=0, c=0):
        seen.append(("record", event, a, b, c))
    return record


def _reports_frame(rng, first, count, n):
    """A BOT_REPORTS payload in a frame buffer: random fields, some garbled states."""
    size = wire.BOT_REPORTS_REC_SIZE
    buf = bytearray(wire.MAX_FRAME)
    o = 5
    buf[o] = first
    buf[o + 1] = count
    o += wire.BOT_REPORTS_SIZE
    for k in range(count):
        for j in range(size):
            buf[o + j] = rng.getrandbits(8)
        # mostly states the hub knows (a few garbled), sites of the plan or none
        buf[o + wire.R_BOT_REPORTS_STATE] = rng.choice((wire.BOT_DEPLOYED, wire.BOT_ACTIVE,
                                                         wire.BOT_ACTIVE, wire.BOT_DOCKED,
                                                         wire.BOT_LOST + 1, 200))
        buf[o + wire.R_BOT_REPORTS_SITE] = rng.choice(SITES + (255,))
        buf[o + wire.R_BOT_REPORTS_ACTIVITY] = rng.getrandbits(8) % 101
        o += size
    return buf, o


def test_report_ingest_in_viper_matches_the_portable_ingest():
    _viper()
    rng = Lcg(5)
    checked = 0
    try:
        for trial in range(3):
            a = _treating(40)
            b = _treating(40)
            eq(_snapshot(a.hub), _snapshot(b.hub), "the two rigs start equal")
            for k in range(4):
                count = rng.getrandbits(5) + 1
                first = rng.getrandbits(5)
                buf, pend = _reports_frame(rng, first, count, 40)   # past the swarm too
                now = a.hub.now + 20 * (k + 1)
                calls = ([], [])
                for hub, viper, seen in ((a.hub, True, calls[0]), (b.hub, False, calls[1])):
                    frame.select(viper)
                    hub.record = _recorder(seen)
                    hub.swarm.ingest(hub, buf, pend, now, _checker(seen))
                eq(_snapshot(a.hub), _snapshot(b.hub), "trial %d frame %d" % (trial, k))
                eq(calls[0], calls[1], "trial %d frame %d: checks and records" % (trial, k))
                checked += len(calls[0])
    finally:
        frame.select(True)
    true(checked > 0, "some reports called for the safety rules or a restart record")


def _seeded(seed):
    """(a seeded generator, a rig treating 64 bots), the viper loops selected."""
    _viper()
    return Lcg(seed), _treating(64)


def _viper_then_portable(run):
    """[run() with the viper loops, run() with their portable twins]; viper is
    selected again after, whatever happens."""
    got = []
    try:
        for viper in (True, False):
            frame.select(viper)
            got.append(run())
    finally:
        frame.select(True)
    return got


def test_gather_in_viper_matches_the_portable_gather():
    rng, rig = _seeded(9)
    hub = rig.hub
    sw = hub.swarm

    def gather():
        control.gather(hub)
        return [list(getattr(hub.plan, t))[:hub.plan.n] for t in PLAN[:6]]

    for trial in range(20):
        for i in range(sw.n):
            sw.state[i] = rng.choice((wire.BOT_DOCKED, wire.BOT_DEPLOYED, wire.BOT_ACTIVE,
                                      wire.BOT_LOST, wire.BOT_QUARANTINED))
            sw.target[i] = rng.choice(SITES + (255, 99))
            sw.site[i] = rng.choice((sw.target[i], 255, 11))
            sw.heard_ever[i] = rng.getrandbits(3) != 0
            sw.depth[i] = rng.getrandbits(16)
            sw.temp[i] = rng.getrandbits(16) - 32768
            sw.ph[i] = rng.getrandbits(16)
            sw.bacteria[i] = rng.getrandbits(16)
        got = _viper_then_portable(gather)
        eq(got[0], got[1], "trial %d" % trial)
        true(any(got[0][0]), "some site has fresh readings")


def test_bot_states_in_viper_match_the_portable_frames():
    rng, rig = _seeded(3)
    hub = rig.hub
    sw = hub.swarm
    for i in range(sw.n):
        sw.battery[i] = rng.getrandbits(8)
        sw.health[i] = rng.getrandbits(8)

    def bot_states():
        rig.board.host_out[:] = b""
        hub.htx.seq = 100
        telemetry.bot_states(hub, 7)
        return bytes(rig.board.host_out)

    frames = _viper_then_portable(bot_states)
    true(len(frames[0]) > sw.n * wire.BOT_STATES_REC_SIZE, "the frames went out")
    eq(frames[0], frames[1])


def test_state_counts_in_viper_match_the_portable_counts():
    rng, rig = _seeded(11)
    sw = rig.hub.swarm

    def counts():
        out = bytearray(7)
        sw.counts(out)
        return list(out)

    for trial in range(10):
        for i in range(sw.n):
            sw.state[i] = rng.getrandbits(8) % 7
        got = _viper_then_portable(counts)
        eq(got[0], got[1], "trial %d" % trial)
        eq(sum(got[0]), sw.n)
