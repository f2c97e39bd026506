"""Every safety input: what the hub believed against what was true.

Each rule of the supervisor (DESIGN section 5) reads a quantity the hub can
only estimate, from the bots' reports and the patient monitor. ``compare``
puts the hub's view over one session (its telemetry and its audit log) next
to the simulator's ground-truth trace and measures each error, signed
``hub - truth``:

==================  ==================================  =====================
input               the hub's view                      dangerous error
==================  ==================================  =====================
dose_session        HUB_STATUS.dose (udu)               below the truth
dose_site           SITE_READINGS.dose (udu)            below the truth
dose_rate_site      SITE_READINGS.dose over ~1 s        below the truth
sensitivity         HUB_STATUS.sens (permille)          below the truth
temperature         SITE_READINGS.temp (C)              below the truth
depth               SITE_READINGS.depth (um)            above the truth
silent_time         audit log: LOST / quarantine (ms)   below the truth
activity            BOT_STATES.activity (%)             below the truth
==================  ==================================  =====================

Time. A hub value stands for the truth at some moment no older than the
hub's own freshness limit (``FRESH_S``: the hub uses a bot's report for
``bot_lost_ms`` = 0.5 s, a patient reading for 1 s) and no later than its
timestamp. So each value is compared with the range the truth took over that
window, and the error is its distance from that range: 0 when the hub's value
is something the truth really was. Clocks: HUB_STATUS and audit records carry
the hub's time; SITE_READINGS between the HUB_STATUS frames read before and
after them (the hub sends periodic telemetry at once or never, in order), and
BOT_STATES by their arrival at the host (as late as the HUB_STATUS frames
around them, plus ``LATENCY_S``). The hub's clock is put on the
simulator's by the DEPLOYs and the first emergency stop (the hub logs them;
the trace records when they reached the swarm).

Where the hub has no fresh data it does not use its estimate (a site whose
bots are all LOST or QUARANTINED gets no dose; a stale patient reading stops
delivery), so such values are not judged. The bounds (``BOUNDS``) are the
ones ``docs/safety.md`` lists, row by row.
"""
from bisect import bisect_left, bisect_right

from nanohub.protocol import auditlog, schema

FRESH_S = {"bot": 0.5, "patient": 1.0}
LATENCY_S = 0.2         # host arrival after the hub sent, beyond the HUB_STATUS delays nearby
LEAD_S = 0.1            # clock alignment slack: the hub may look slightly ahead
RATE_WINDOW_S = 2.0     # shortest interval for a per-site dose rate

# input -> (unit, dangerous side, bound on the dangerous side, what the bound is)
# "low": the hub below the truth is dangerous (error >= -bound);
# "high": the hub above the truth is dangerous (error <= bound).
BOUNDS = {
    "dose_session": ("udu", "low", 1, "1 udu per bot, never under-counted"),
    "dose_site": ("udu", "low", 1, "1 udu per bot at the site, never under-counted"),
    "dose_rate_site": ("udu/s", "low", 250, "report quantization: 1 % x 3 bots, plus timing"),
    "sensitivity": ("permille", "low", 5, "the monitor's reading, 0.1 s old at most"),
    "temperature": ("C", "low", 0.15, "sensor calibration 0.08 C + noise 0.03 C"),
    "depth": ("um", "high", 20, "sensor calibration 10 um + noise 4 um"),
    "silent_time": ("ms", "low", 100, "one report period"),
    "activity": ("%", "low", 3, "report rounding 0.5 % + noise 1 % + output noise 0.4 %"),
}
ORDER = tuple(BOUNDS)
LABELS = {
    "dose_session": "dose, session",
    "dose_site": "dose, per site",
    "dose_rate_site": "dose rate, per site",
    "sensitivity": "sensitivity index",
    "temperature": "temperature, per site",
    "depth": "lesion depth, per site",
    "silent_time": "silent time, per bot",
    "activity": "activity (runaway rule)",
}

EV_CMD = schema.enum_value("EV", "CMD")
EV_BOT = schema.enum_value("EV", "BOT")
EV_ALARM = schema.enum_value("EV", "ALARM")
EV_TREAT = schema.enum_value("EV", "TREAT")
EV_ESTOP = schema.enum_value("EV", "ESTOP")
M_DEPLOY = schema.MSG["DEPLOY"]
OP_DEPLOY = schema.enum_value("OP", "DEPLOY")
OP_DISABLE = schema.enum_value("OP", "DISABLE")
BOT_LOST = schema.enum_value("BOT", "LOST")
BOT_QUARANTINED = schema.enum_value("BOT", "QUARANTINED")
BOT_DEPLOYED = schema.enum_value("BOT", "DEPLOYED")
BOT_ACTIVE = schema.enum_value("BOT", "ACTIVE")
ALARM_BOT_QUARANTINE = schema.enum_value("ALARM", "BOT_QUARANTINE")
HUB_TREATING = schema.enum_value("HUB", "TREATING")
NO_SITE = 0xFF
LOST_MS = 500           # the hub's bot_lost_ms default: when silence becomes LOST


class _Err:
    """Signed errors of one input: the extremes, where, and how many values."""

    def __init__(self):
        self.low = 0.0          # most negative hub - truth
        self.high = 0.0         # most positive
        self.low_at = self.high_at = None
        self.n = 0

    def add(self, err, where):
        self.n += 1
        if err < self.low:
            self.low, self.low_at = err, where
        if err > self.high:
            self.high, self.high_at = err, where

    def out(self, name, scale=1):
        unit, side, bound, why = BOUNDS[name]
        b = bound * scale
        worst = -self.low if side == "low" else self.high
        return {"unit": unit, "low": self.low, "high": self.high, "low_at": self.low_at,
                "high_at": self.high_at, "n": self.n, "dangerous": side, "bound": b,
                "worst": worst, "ok": worst <= b + 1e-9}


def _miss(value, lo, hi):
    """Signed distance from value to [lo, hi]; 0 inside."""
    if value < lo:
        return value - lo
    if value > hi:
        return value - hi
    return 0.0


class _Series:
    """A sampled truth: times (sim s) and values; the range over a window."""

    def __init__(self, ts, vs):
        self.ts, self.vs = ts, vs

    def span(self, a, b):
        ts = self.ts
        if not ts:
            return None
        i0 = max(0, bisect_right(ts, a) - 1)      # the sample in force at a
        i1 = min(len(ts), bisect_left(ts, b) + 1)
        vals = [v for v in self.vs[i0:i1] if v is not None]
        if not vals:
            return None
        return min(vals), max(vals)

    def at(self, t):
        i = bisect_right(self.ts, t) - 1
        return self.vs[max(0, i)]


class _Truth:
    def __init__(self, trace, plan_sites):
        samples = trace.samples()
        self.ts = [r[1] / 1000.0 for r in samples]
        self.n = len(samples[0][2]) if samples else 0
        self.samples = samples
        self.plan_sites = plan_sites
        self.sens = _Series(self.ts, [r[4][0] for r in samples])
        self.temp, self.depth = {}, {}
        for s in plan_sites:
            rows = [{x[0]: x for x in r[3]}.get(s) for r in samples]
            self.temp[s] = _Series(self.ts, [x[2] / 100.0 if x else None for x in rows])
            self.depth[s] = _Series(self.ts, [x[1] if x else None for x in rows])
        self.silent = {}            # bot -> [[start s, end s or None], ...]
        for r in trace.rows:        # rows are in time order: a start before its end
            if r[0] == "fault" and r[4] == "silent":
                for b in r[5]:
                    spans = self.silent.setdefault(b, [])
                    if r[2] == "start":
                        spans.append([r[1] / 1000.0, None])
                    elif spans and spans[-1][1] is None:
                        spans[-1][1] = r[1] / 1000.0
        # the gateway's own silences (it ran late): no bot was heard then either
        self.quiet = [(r[2] / 1000.0, r[1] / 1000.0) for r in trace.rows if r[0] == "quiet"]
        # when each DEPLOY (one per site, first sending) and each broadcast
        # DISABLE reached the swarm: anchors for the clocks
        self.deploys, sites = [], set()
        for r in trace.rows:
            if r[0] == "cmd" and r[3] == OP_DEPLOY and r[4] not in sites:
                if not self.deploys or self.deploys[-1] != r[1] / 1000.0:
                    self.deploys.append(r[1] / 1000.0)
                sites.add(r[4])
        self.disables = [r[1] / 1000.0 for r in trace.rows
                         if r[0] == "cmd" and r[3] == OP_DISABLE and r[2] == 0xFF]

    def dose_series(self, t0, site=None):
        """Dose delivered since t0 (sim s): everything, or at one site. A bot
        delivers only where it stands, so each increment goes to the site the
        bot was at (it may be recalled to the dock later)."""
        i0 = max(0, bisect_right(self.ts, t0) - 1)
        vals = [0] * len(self.samples)
        tot = 0
        prev = self.samples[i0][2] if self.samples else ()
        for i in range(i0 + 1, len(self.samples)):
            rows = self.samples[i][2]
            for row, row0 in zip(rows, prev):
                if site is None or row[1] == site or row0[1] == site:
                    tot += row[3] - row0[3]
            prev = rows
            vals[i] = tot
        return _Series(self.ts, vals)

    def activity(self, bot):
        return _Series(self.ts, [r[2][bot][2] / 100.0 for r in self.samples])

    def silent_for(self, bot, t):
        """Seconds the bot had truly been silent at t (0 if it was talking):
        its radio, or the whole bus when the gateway ran late."""
        q = 0.0
        for a, b in self.silent.get(bot, []):
            if a <= t and (b is None or t < b):
                q = t - a
        for a, b in self.quiet:
            if a <= t < b:
                q = max(q, t - a)
        return q


def _records(s):
    if not s.log:
        return []
    return [r for r in auditlog.parse_records(s.log) if r.get("index") is not None]


def compare(s):
    """{input: {low, high, worst, bound, ok, n, ...}} for one session (a
    :class:`nanohub.host.study.session.Session` with its trace), or {"error": why}."""
    tr = s.trace
    if tr is None or not tr.samples():
        return {"error": "no trace"}
    plan = [l.site for l in s.scenario.lesions]
    bots_at = {l.site: l.bots for l in s.scenario.lesions}
    truth = _Truth(tr, plan)
    recs = _records(s)
    # the hub's clock on the simulator's. The gateway stamps a command when it
    # reads it, never before the hub sent it, so of several anchors (each
    # DEPLOY, the first emergency stop) the one read soonest is the best.
    anchors = list(zip([r["t"] / 1000.0 for r in recs
                        if r["event"] == EV_CMD and r["a"] == M_DEPLOY], truth.deploys))
    stop = next((r["t"] / 1000.0 for r in recs if r["event"] == EV_ESTOP), None)
    if stop is not None and truth.disables:
        anchors.append((stop, truth.disables[0]))
    if not s.statuses:
        return {"error": "no telemetry from the hub"}
    # the host's clock on the hub's: the least delayed HUB_STATUS
    host_off = min(t - f["t"] / 1000.0 for t, f in s.statuses)
    if not anchors:
        # no audit log (its pull failed): when the host sent each DEPLOY will do
        sent = [t for t, kind, text, _ in s.events if kind == "op" and text.startswith("deploy")]
        anchors = list(zip([t - host_off for t in sent], truth.deploys))
    off = max([h - t for h, t in anchors]) if anchors else None
    if off is None:
        return {"error": "cannot align the hub's clock with the trace"}

    def from_hub(ms):
        return ms / 1000.0 - off

    def from_host(t):
        return t - host_off - off

    # how late telemetry without a timestamp may have reached the host: as late
    # as the HUB_STATUS frames around it (a starved host reads in bursts)
    delays = [(t, t - f["t"] / 1000.0 - host_off) for t, f in s.statuses]
    delay_t = [d[0] for d in delays]

    def late(t):
        i0, i1 = bisect_left(delay_t, t - 1.0), bisect_right(delay_t, t + 1.0)
        return LATENCY_S + max([d[1] for d in delays[i0:i1]] or [1.0])

    errs = {k: _Err() for k in ORDER}
    fb, fp = FRESH_S["bot"], FRESH_S["patient"]
    start = next((r["t"] for r in recs if r["event"] == EV_TREAT and r["a"] == 1), None)
    t_start = from_hub(start) if start is not None else None
    if t_start is None:                     # no audit log: when the host started it
        t_start = next((t - host_off - off for t, kind, text, _ in s.events
                        if kind == "op" and text.startswith("treatment started")), None)

    # --- sensitivity (HUB_STATUS), judged while the hub acts on it: treating
    for t, f in s.statuses:
        if f["state"] != HUB_TREATING:
            continue
        T = from_hub(f["t"])
        rng = truth.sens.span(T - fp, T + LEAD_S)
        if rng:
            errs["sensitivity"].add(_miss(f["sens"], *rng), round(T, 2))

    # --- dose, session (HUB_STATUS): from the start of the treatment on
    if t_start is not None:
        total = truth.dose_series(t_start)
        for t, f in s.statuses:
            T = from_hub(f["t"])
            if T < t_start + 0.05:
                continue
            rng = total.span(T - fb, T + LEAD_S)
            if rng:
                errs["dose_session"].add(_miss(f["dose"], *rng), round(T, 2))

    # which plan sites the hub had fresh readings for (BOT_STATES, 1 Hz)
    states = []         # (sim s, {bot: (state, site, activity)}, how late it may be)
    for t, first, recs_ in s.bot_states:
        T = from_host(t)
        if states and abs(states[-1][0] - T) < 0.05:
            states[-1][1].update({first + i: r for i, r in enumerate(recs_)})
        else:
            states.append((T, {first + i: r for i, r in enumerate(recs_)}, late(t)))

    def fresh_sites(T):
        i = bisect_right([x[0] for x in states], T) - 1
        if i < 0:
            return set()
        return {r[1] for r in states[i][1].values()
                if r[1] != NO_SITE and r[0] not in (BOT_LOST, BOT_QUARANTINED)}

    # --- per site: dose, dose rate, temperature, depth (SITE_READINGS)
    # When the hub built a reading: periodic telemetry leaves the hub at once
    # or not at all, in the order it was built, so a reading was built after
    # the HUB_STATUS read before it and before the one read after it. That
    # bracket (a few hundred ms) places it whatever the host's read delays.
    status_ms = sorted(f["t"] for _, f in s.statuses)

    def built(t, after):
        """(earliest, latest) sim s at which the hub built a reading that
        reached the host at t after the status stamped ``after`` (hub ms)."""
        if after is None:
            T = from_host(t)
            return T - late(t), T
        i = bisect_right(status_ms, after)
        hi = from_hub(status_ms[i]) if i < len(status_ms) else from_host(t)
        return from_hub(after), hi

    for site, rows in s.sites.items():
        if site not in truth.temp:
            continue
        per = truth.dose_series(t_start, site) if t_start is not None else None
        last = None
        prev = None
        retracted = False       # the count fell inside the window (see below)
        for t, depth, dose, temp, after in rows:
            # A bot's report replaces the provisional dose the hub counted since
            # the last one (a silent bot's can be large), so the count may fall
            # back towards the truth. The count itself is judged above (never
            # below the truth); a rate over a window holding such a fall measures
            # the correction, not delivery, and is not judged.
            if prev is not None and dose < prev:
                retracted = True
            prev = dose
            lo, hi = built(t, after)
            T = (lo + hi) / 2
            a, b = lo - fb, hi + LEAD_S
            if per is not None and T >= t_start + 0.05:
                rng = per.span(a, b)
                if rng:
                    errs["dose_site"].add(_miss(dose, *rng), (site, round(T, 2)))
                if last is not None and T - last[0] >= RATE_WINDOW_S and retracted:
                    last = None
                    retracted = False
                elif last is not None and T - last[0] >= RATE_WINDOW_S:
                    # the truth over every interval the two readings may span,
                    # each end anywhere in its bracket, both as stale as a report
                    dt = T - last[0]
                    hub_rate = (dose - last[1]) / dt
                    rates = []
                    for lag in (0.0, fb / 2, fb):
                        for x0 in last[2]:
                            d0 = per.at(x0 - lag)
                            for x1 in (lo, hi):
                                rates.append((per.at(x1 - lag) - d0) / dt)
                    errs["dose_rate_site"].add(_miss(hub_rate, min(rates), max(rates)),
                                               (site, round(T, 2)))
                    last = None
                if last is None:
                    last = (T, dose, (lo, hi))
            if site not in fresh_sites(from_host(t)):
                continue
            rng = truth.temp[site].span(a, b)
            if rng:
                errs["temperature"].add(_miss(temp / 100.0, *rng), (site, round(T, 2)))
            rng = truth.depth[site].span(a, b)
            if rng:
                errs["depth"].add(_miss(depth, *rng), (site, round(T, 2)))

    # --- activity (BOT_STATES): every bot the hub saw at a site and still heard
    acts = {}
    for T, table, lat in states:
        for b, (st, site, act) in table.items():
            if site == NO_SITE or st in (BOT_LOST, BOT_QUARANTINED) or b >= truth.n:
                continue
            if b not in acts:
                acts[b] = truth.activity(b)
            rng = acts[b].span(T - lat - fb, T + LEAD_S)
            if rng:
                errs["activity"].add(_miss(act, *rng), (b, round(T, 2)))

    # --- silent time: what the hub logged when it lost or quarantined a bot
    for r in recs:
        if r["event"] == EV_BOT and r["b"] == BOT_LOST:
            bot, ms = r["a"], r["c"]
        elif r["event"] == EV_ALARM and r["a"] == ALARM_BOT_QUARANTINE:
            bot, ms = r["b"], r["c"]
        else:
            continue
        T = from_hub(r["t"])
        truly = truth.silent_for(bot, T - LEAD_S)        # clock slack, as everywhere
        errs["silent_time"].add(ms - 1000.0 * truly, (bot, round(T, 2)))
    # ... and a truly silent bot the hub still showed at work, past the LOST limit
    for T, table, lat in states:
        for b, (st, site, act) in table.items():
            if st in (BOT_DEPLOYED, BOT_ACTIVE):
                quiet = truth.silent_for(b, T - lat)
                if quiet * 1000.0 > LOST_MS + 1000.0 * (lat + LEAD_S):
                    errs["silent_time"].add(-(quiet * 1000.0 - LOST_MS), (b, round(T, 2)))

    out = {}
    for k in ORDER:
        scale = 1
        if k == "dose_session":
            scale = truth.n
        elif k == "dose_site":
            scale = max(bots_at.values() or [1])
        out[k] = errs[k].out(k, scale)
    return out


def judge(results):
    """Worst over many sessions' ``compare`` results: {input: {...}}."""
    worst = {}
    for res in results:
        if not res or "error" in res:
            continue
        for k in ORDER:
            r = res.get(k)
            if r is None:
                continue
            w = worst.setdefault(k, {"unit": r["unit"], "low": 0.0, "high": 0.0, "n": 0,
                                     "dangerous": r["dangerous"], "bound": r["bound"],
                                     "worst": 0.0, "sessions_out": 0, "sessions": 0})
            w["low"] = min(w["low"], r["low"])
            w["high"] = max(w["high"], r["high"])
            w["worst"] = max(w["worst"], r["worst"])
            w["n"] += r["n"]
            w["sessions"] += 1
            w["sessions_out"] += 0 if r["ok"] else 1
    return worst


def verdict(name, w):
    """One word for a ``judge`` row: the dose's sign, or within/out of bound."""
    if w["sessions"] == 0:
        return "no data"
    if name.startswith("dose") and w["dangerous"] == "low":
        return "never under" if w["sessions_out"] == 0 else "UNDER-COUNTED"
    return "within" if w["sessions_out"] == 0 else "OUT OF BOUND"
