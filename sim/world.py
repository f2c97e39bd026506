"""The simulated world: mouth, swarm and patient under a scenario's faults.

``World(scenario, seed)`` advances on a fixed 20 ms grid however often
``step`` is called, so a seed and a sequence of commands give one trace.
The trace is the ground truth a safety study judges the hub by: what the bots
really did (not what they reported), what the tissue and the patient went
through, and when each fault started and ended.
"""
import gzip
import json
from collections import namedtuple

from . import defect
from ..firmware.hub import wire
from .bots import F_RUNAWAY_ABOVE, F_RUNAWAY_OFF, F_SILENT, F_DRIFT, F_COLLAPSE, F_DEAD
from .bots import FULL, NO_SITE, Swarm, Xorshift32
from .mouth import NSITES, Mouth
from .patient import NANO, Patient
from .scenario import Scenario, load

DT_MS = 20                 # internal step
SAMPLE_MS = 100            # trace sample period (and chemistry/patient step)
TRACE_FORMAT = "nanohub-sim-trace"
TRACE_VERSION = 1

BusFaults = namedtuple("BusFaults", "loss corrupt duplicate reorder delay_ms")
NO_BUS_FAULTS = BusFaults(0.0, 0.0, 0.0, 0.0, 0)

# what each trace row holds after its kind and time (also written to the meta line)
ROWS = {
    "s": "sample: bots [(state, site, activity 0.01%, dose uDU, battery permille, "
         "fault flags)], sites [(site, depth um, temp C x100, pH x100, bacteria log10 x100)], "
         "patient (S permille, nano events, pulp rise C x100)",
    "bot": "true change of a bot: bot, state, activity 0.01%, fault flags",
    "cmd": "command received: bot (255 all), op, site, rate, lease ms, heard (bots)",
    "fault": "edge (start|end), fault index, kind, bots",
    "event": "adverse event: kind, S permille",
    "sugar": "sugar intake (plaque acid challenge)",
    "retrieve": "bots taken out of the mouth by hand: bots",
    "quiet": "the gateway sent no bot report since: t_ms (it ran late)",
}


def _subseed(seed, stream):
    # independent streams, so a fault's random picks do not shift the mouth's noise
    return (seed * 0x9E3779B1 + stream * 0x85EBCA77 + 1) & 0xFFFFFFFF


class World:
    """One simulated session. ``scenario``: a Scenario, a bundled name or a path;
    ``seed`` and ``bots`` override the scenario's; ``trace_polls`` also records
    NOP/PING commands (left out by default: they change nothing and are many)."""

    def __init__(self, scenario, seed=None, bots=None, trace_polls=False):
        if not isinstance(scenario, Scenario):
            scenario = load(scenario)
        self.scenario = scenario
        self.seed = scenario.seed if seed is None else seed
        self.scenario = scenario = defect.apply(scenario, self.seed)   # a cohort defect
        self.n = scenario.bots if bots is None else bots
        if not 1 <= self.n <= wire.MAX_BOTS:
            raise ValueError("bots must be 1..%d, got %d" % (wire.MAX_BOTS, self.n))
        self.trace_polls = trace_polls
        self.mouth = Mouth(_subseed(self.seed, 1),
                           [(l.site, l.depth_um) for l in scenario.lesions],
                           scenario.incipient)
        self.swarm = Swarm(self.n, _subseed(self.seed, 2), NSITES)
        self.subject = Patient(self.mouth, _subseed(self.seed, 3))
        self._pick = Xorshift32(_subseed(self.seed, 4))
        self.t = 0
        self._faults = [[f, False, False, ()] for f in scenario.faults]  # fault, started, ended, bots
        self._acc = {}                      # site -> summed output over this sample
        self._prev = [(0, 0, 0)] * self.n   # (state, activity on, flags) per bot
        self._sugar = 0
        self.watched = sorted(set(l.site for l in scenario.lesions) | set(self.mouth.incipient))
        self._watched = set(self.watched)
        self.trace = Trace(self._meta())
        self._export()
        self._transitions(0)
        self._sample(0)

    # ------------------------------------------------------------ driving --

    def step(self, now_ms):
        """Advance to ``now_ms`` (on the 20 ms grid; the remainder waits)."""
        while self.t + DT_MS <= now_ms:
            self._tick()

    def command(self, bot, op, site=NO_SITE, rate=0, lease_ms=0, now_ms=None):
        """One bot-bus command at ``now_ms`` (default: now); ``bot`` ADDR_ALL
        broadcasts. Returns how many bots heard it."""
        if now_ms is None:
            now_ms = self.t
        else:
            self.step(now_ms)
        sw = self.swarm
        if bot == wire.ADDR_ALL:
            heard = sum(1 for b in range(self.n) if sw.command(b, op, site, rate, lease_ms, now_ms))
        else:
            heard = 1 if sw.command(bot, op, site, rate, lease_ms, now_ms) else 0
        if self.trace_polls or op not in (wire.OP_NOP, wire.OP_PING):
            self.trace.add("cmd", now_ms, bot, op, site, rate, lease_ms, heard)
        self._transitions(now_ms)           # a kill is instant: record it when it happens
        return heard

    def retrieve(self, now_ms=None):
        """The clinician takes every bot still in the mouth out by hand (after
        an emergency stop, the disabled ones cannot travel back). Returns the
        bots retrieved; the trace records them."""
        if now_ms is None:
            now_ms = self.t
        else:
            self.step(now_ms)
        got = tuple(b for b in range(self.n) if self.swarm.retrieve(b))
        self.trace.add("retrieve", now_ms, got)
        self._transitions(now_ms)
        return got

    def report(self, bot):
        """The bot's report in wire units, or None if it is silent."""
        if not 0 <= bot < self.n:
            raise IndexError("no bot %d (swarm of %d)" % (bot, self.n))
        return self.swarm.report(bot)

    def patient(self):
        """(sensitivity permille, nano-sensitivity events so far) as the PATIENT message."""
        return self.subject.sens_permille(), min(255, self.subject.nano_events())

    def bus_faults(self, now_ms):
        """Bot-bus impairments in force at ``now_ms``; overlapping faults compound."""
        keep = [1.0, 1.0, 1.0, 1.0]
        delay = 0
        for f in self.scenario.faults:
            if f.kind == "bus" and f.active(now_ms / 1000.0):
                p = f.params
                for i, k in enumerate(("loss", "corrupt", "duplicate", "reorder")):
                    keep[i] *= 1.0 - p[k]
                delay += p["delay_ms"]
        if keep == [1.0, 1.0, 1.0, 1.0] and not delay:
            return NO_BUS_FAULTS
        return BusFaults(*[round(1.0 - k, 6) for k in keep], delay)

    def host_link_down(self, now_ms):
        return any(f.kind == "host_link_loss" and f.active(now_ms / 1000.0)
                   for f in self.scenario.faults)

    def fault_bots(self, index):
        """The bots fault ``index`` hit (empty until it starts)."""
        return self._faults[index][3]

    def save_trace(self, path):
        self.trace.save(path)

    # ---------------------------------------------------------------- tick --

    def _tick(self):
        t = self.t + DT_MS
        self.t = t
        self._fault_edges(t)
        sw = self.swarm
        sw.step(t)
        act, site, moving, acc = sw.act, sw.site, sw.moving, self._acc
        for i in range(self.n):
            a = act[i]
            if a and not moving[i] and site[i] != NO_SITE:
                acc[site[i]] = acc.get(site[i], 0) + a
        self._transitions(t)
        if t % SAMPLE_MS == 0:
            scale = 1.0 / (FULL * (SAMPLE_MS // DT_MS))
            activity = {s: v * scale for s, v in acc.items()}
            acc.clear()
            dt = SAMPLE_MS / 1000.0
            self.mouth.step(dt, activity)
            for ev in self.subject.step(dt, activity, t):
                self.trace.add("event", t, ev[1], ev[2])
            while self._sugar < len(self.mouth.sugar):
                self._sugar += 1
                self.trace.add("sugar", t)
            self._export()
            self._sample(t)

    def _export(self):
        # the true site values the bots' sensors read (10 Hz, like a sensor)
        sw, m = self.swarm, self.mouth
        for s in range(NSITES):
            sw.s_temp[s], sw.s_ph[s], sw.s_depth[s], sw.s_bact[s] = m.readings(s)

    def _transitions(self, t):
        sw = self.swarm
        state, act, flags, prev = sw.state, sw.act, sw.flags, self._prev
        for i in range(self.n):
            now = (state[i], 1 if act[i] else 0, flags[i])
            if now != prev[i]:
                prev[i] = now
                self.trace.add("bot", t, i, state[i], act[i], flags[i])

    def _sample(self, t):
        sw, m, p = self.swarm, self.mouth, self.subject
        for i in range(self.n):
            s = sw.site[i]
            if s != NO_SITE and not sw.moving[i] and s not in self._watched:
                self._watched.add(s)
                self.watched.append(s)
        bots = tuple((sw.state[i], sw.site[i], sw.act[i], sw.dose[i], sw.battery[i] // 100000,
                      sw.flags[i]) for i in range(self.n))
        sites = tuple((s, int(round(m.depth[s])), int(round(m.temp[s] * 100)),
                       int(round(m.ph[s] * 100)), int(round(m.bact[s] * 100)))
                      for s in self.watched)
        self.trace.add("s", t, bots, sites,
                       (p.sens_permille(), p.nano_events(), int(round(p.pulp_rise * 100))))

    # -------------------------------------------------------------- faults --

    def _fault_edges(self, t):
        for entry in self._faults:
            f, started, ended, hit = entry
            if not started and t >= f.at * 1000:
                entry[1] = True
                entry[3] = hit = self._targets(f)
                for b in hit:
                    self._apply(f, b)
                if f.kind == "sensitivity_spike":
                    self.subject.start_spike(f.params["amount"], f.params["rise_s"])
                self.trace.add("fault", t, "start", f.index, f.kind, hit)
                self._transitions(t)
            if entry[1] and not ended and f.until is not None and t >= f.until * 1000:
                entry[2] = True
                for b in hit:
                    self._lift(f, b)
                if f.kind == "sensitivity_spike":
                    self.subject.end_spike()
                self.trace.add("fault", t, "end", f.index, f.kind, hit)

    def _targets(self, f):
        if f.targets is None:
            return ()
        if isinstance(f.targets, tuple):
            return tuple(b for b in f.targets if b < self.n)
        if isinstance(f.targets, str):
            for g, started, _, hit in self._faults:
                if g.id == f.targets:
                    return hit
            return ()
        # a count: faults strike bots at work. Pick at random among the bots at
        # a site that no earlier fault hit, then among those any fault hit,
        # then fill up from the rest in order.
        sw = self.swarm
        hit = set(b for e in self._faults if e[1] for b in e[3])
        working = [b for b in range(self.n) if sw.site[b] != NO_SITE
                   and not sw.flags[b] & F_DEAD and sw.state[b] != wire.BOT_DISABLED]
        chosen = []
        for pool in ([b for b in working if b not in hit], [b for b in working if b in hit]):
            while pool and len(chosen) < f.targets:
                chosen.append(pool.pop(self._pick.below(len(pool))))
        for b in range(self.n):
            if len(chosen) >= f.targets:
                break
            if b not in chosen and not sw.flags[b] & F_DEAD:
                chosen.append(b)
        return tuple(sorted(chosen))

    def _apply(self, f, b):
        sw, p = self.swarm, f.params
        if f.kind == "runaway":
            sw.set_runaway(b, p["mode"] == "above_command", p["level"])
        elif f.kind == "silent":
            sw.set_silent(b)
        elif f.kind == "sensor_drift":
            # rates in thousandths of the wire unit per second
            sw.set_drift(b, int(round(p["temp_c_per_s"] * 100000)),
                         int(round(p["ph_per_s"] * 100000)),
                         int(round(p["depth_um_per_s"] * 1000)))
        elif f.kind == "battery_collapse":
            sw.set_collapse(b, int(p["fall_s"] * 1000))
        elif f.kind == "stuck_disable":
            sw.set_stuck(b, p["count"])
        elif f.kind == "health":
            sw.set_health(b, p["health"])

    def _lift(self, f, b):
        sw = self.swarm
        if f.kind == "runaway":
            sw.clear(b, F_RUNAWAY_OFF | F_RUNAWAY_ABOVE)
        elif f.kind == "silent":
            sw.clear(b, F_SILENT)
        elif f.kind == "sensor_drift":
            sw.clear(b, F_DRIFT)               # the error already accumulated stays
        elif f.kind == "battery_collapse":
            sw.clear(b, F_COLLAPSE)            # stops falling; an empty battery stays empty
        elif f.kind == "stuck_disable":
            sw.set_stuck(b, 0)

    def _meta(self):
        sc = self.scenario
        return {
            "format": TRACE_FORMAT, "version": TRACE_VERSION,
            "scenario": sc.name, "source": sc.source, "seed": self.seed, "bots": self.n,
            "dt_ms": DT_MS, "sample_ms": SAMPLE_MS, "duration_s": sc.duration_s,
            "lesions": [[l.site, l.depth_um, l.target_um, l.bots] for l in sc.lesions],
            "incipient": list(self.mouth.incipient),
            "faults": [[f.index, f.kind, f.at, f.until, f.params] for f in sc.faults],
            "rows": ROWS,
        }


# ------------------------------------------------------------------ trace --

def _tuples(x):
    return tuple(_tuples(v) for v in x) if isinstance(x, list) else x


class Trace:
    """Rows ``(kind, t_ms, ...)`` (layouts in ``ROWS``) plus a meta dict."""

    def __init__(self, meta, rows=None):
        self.meta = meta
        self.rows = rows if rows is not None else []

    def add(self, kind, t, *fields):
        self.rows.append((kind, t) + fields)

    def __eq__(self, other):
        return isinstance(other, Trace) and self.meta == other.meta and self.rows == other.rows

    def __len__(self):
        return len(self.rows)

    def save(self, path):
        """JSON lines (meta first), gzip-compressed if ``path`` ends in .gz."""
        opener = gzip.open if str(path).endswith(".gz") else open
        with opener(path, "wt", encoding="utf-8") as f:
            f.write(json.dumps(self.meta, separators=(",", ":")) + "\n")
            for row in self.rows:
                f.write(json.dumps(row, separators=(",", ":")) + "\n")

    @classmethod
    def load(cls, path):
        with open(path, "rb") as f:
            gz = f.read(2) == b"\x1f\x8b"
        opener = gzip.open if gz else open
        with opener(path, "rt", encoding="utf-8") as f:
            meta = json.loads(f.readline())
            if meta.get("format") != TRACE_FORMAT:
                raise ValueError("%s: not a nanohub simulator trace" % path)
            if meta.get("version") != TRACE_VERSION:
                raise ValueError("%s: trace version %r, this reader knows %d"
                                 % (path, meta.get("version"), TRACE_VERSION))
            rows = [_tuples(json.loads(line)) for line in f if line.strip()]
        return cls(meta, rows)

    # ------------------------------------------------------------ queries --

    def of(self, kind):
        return [r for r in self.rows if r[0] == kind]

    def samples(self):
        return self.of("s")

    def fault_starts(self, kind=None):
        """(t_ms, fault index, kind, bots) for each fault that started."""
        return [(r[1], r[3], r[4], r[5]) for r in self.rows
                if r[0] == "fault" and r[2] == "start" and (kind is None or r[4] == kind)]

    def fault_bots(self, kind=None):
        return sorted(set(b for _, _, _, bots in self.fault_starts(kind) for b in bots))

    def activity(self, bot):
        """The bot's true (t_ms, state, activity 0.01%, flags) at each change."""
        return [(r[1], r[3], r[4], r[5]) for r in self.rows if r[0] == "bot" and r[2] == bot]

    def commands(self, bot=None, op=None):
        return [r for r in self.rows if r[0] == "cmd" and (bot is None or r[2] == bot)
                and (op is None or r[3] == op)]

    # ------------------------------------------------------------ metrics --

    def dose_after(self, t_s):
        """Per bot, the dose (uDU) delivered after ``t_s`` (100 ms resolution)."""
        samples = self.samples()
        before = samples[0]
        for r in samples:
            if r[1] <= t_s * 1000:
                before = r
        last = samples[-1]
        return [e[3] - b[3] for b, e in zip(before[2], last[2])]

    def containment_time(self, bot, kind=None, since_s=None):
        """Seconds from the bot's fault start (or ``since_s``) until its true
        output went to 0 and stayed there; None if it was still delivering at
        the end of the trace; 0.0 if it delivered nothing after the start."""
        if since_s is None:
            starts = [t for t, _, _, bots in self.fault_starts(kind) if bot in bots]
            if not starts:
                raise ValueError("no fault%s hit bot %d" % (" " + kind if kind else "", bot))
            t0 = starts[0]
        else:
            t0 = since_s * 1000
        changes = self.activity(bot)
        if changes and changes[-1][2] > 0:
            return None
        off = None
        for (_, _, a0, _), (t1, _, a1, _) in zip(changes, changes[1:]):
            if a0 > 0 and a1 == 0:
                off = t1
        if off is None or off <= t0:
            return 0.0
        return (off - t0) / 1000.0

    def depth_reduction(self):
        """{site: initial depth - final depth} in um for every watched site."""
        first, last = {}, {}
        for r in self.samples():
            for s in r[3]:
                first.setdefault(s[0], s[1])
                last[s[0]] = s[1]
        return {s: first[s] - last[s] for s in first}

    def adverse_events(self, kind=None):
        """How many adverse events (nano-sensitivity and pulp heating) happened."""
        return sum(1 for r in self.of("event") if kind is None or r[2] == kind)

    def nano_events(self):
        return sum(1 for r in self.of("event") if r[2] in NANO)

    def peak_sensitivity(self):
        return max(r[4][0] for r in self.samples()) / 1000.0


def load_trace(path):
    return Trace.load(path)


# --------------------------------------------------------------- baseline --

class Baseline:
    """A naive operator console with no hub and no safety supervisor.

    It plays the scenario's operator script straight onto the bot bus: deploy
    sends docked bots, treat_start doses every deployed bot at ``rate`` % with
    leases renewed every ``renew_ms`` until the plan duration ends, pause/stop
    hold, recall recalls, estop broadcasts DISABLE once (no confirmation, no
    retry). It is the control group of a safety study (what the faults do when
    nothing watches) and drives the model in tests; it is not the hub.
    """

    def __init__(self, world, rate=60, lease_ms=2000, renew_ms=500):
        self.world = world
        self.rate, self.lease_ms, self.renew_ms = rate, lease_ms, renew_ms
        self._script = list(world.scenario.operator)
        self._dosing_until = None
        self._next_renew = 0

    def run(self, until_s=None):
        w = self.world
        end = int((w.scenario.duration_s if until_s is None else until_s) * 1000)
        while w.t < end:
            t = w.t + DT_MS
            w.step(t)
            while self._script and self._script[0][0] * 1000 <= t:
                _, verb, args = self._script.pop(0)
                self._do(verb, args, t)
            if self._dosing_until is not None:
                if t >= self._dosing_until:
                    self._dosing_until = None
                    w.command(wire.ADDR_ALL, wire.OP_HOLD, now_ms=t)
                elif t >= self._next_renew:
                    self._next_renew = t + self.renew_ms
                    sw = w.swarm
                    for b in range(w.n):
                        if sw.state[b] in (wire.BOT_DEPLOYED, wire.BOT_ACTIVE):
                            w.command(b, wire.OP_DOSE, NO_SITE, self.rate, self.lease_ms, t)
        return w.trace

    def _do(self, verb, args, t):
        w, sw = self.world, self.world.swarm
        if verb == "deploy":
            docked = [b for b in range(w.n) if sw.state[b] == wire.BOT_DOCKED
                      and not sw.moving[b] and not sw.flags[b] & F_DEAD]
            for b in docked[:args["count"]]:
                w.command(b, wire.OP_DEPLOY, args["site"], 0, 0, t)
        elif verb in ("treat_start", "resume"):
            if verb == "treat_start":
                self._treat_end = t + args["duration"] * 1000
            self._dosing_until = getattr(self, "_treat_end", t)
            self._next_renew = t
        elif verb in ("pause", "stop", "hold"):
            self._dosing_until = None
            w.command(wire.ADDR_ALL, wire.OP_HOLD, now_ms=t)
        elif verb == "recall":
            self._dosing_until = None
            w.command(wire.ADDR_ALL, wire.OP_RECALL, now_ms=t)
        elif verb == "estop":
            self._dosing_until = None
            w.command(wire.ADDR_ALL, wire.OP_DISABLE, now_ms=t)
