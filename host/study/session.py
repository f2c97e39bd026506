"""A whole scripted session: emulated hub, simulated swarm, scripted operator.

``run_session`` starts the firmware on the MicroPython VM with the swarm
gateway, plays the scenario's operator script through the real host library,
watches telemetry, pulls and verifies the audit log, and judges the outcome
from the simulator's ground-truth trace. The demo prints it live; the study
runs it many times. One call is self-contained (its own processes, ports and
files), so a pool or a cluster engine can fan it out unchanged.
"""
import os
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from nanohub.protocol import auditlog, schema

from ..client import Hub
from ..emulate.hub import EmulatedHub
from ..errors import NanohubError
from ..logkeep import LogKeeper
from ..plan import Plan, PlanSite
from ..simport import HEAP

HUB = {v: n for n, v, _ in schema.ENUMS["HUB"]}
ALARM = {v: n for n, v, _ in schema.ENUMS["ALARM"]}


def _site(value):
    from nanohub.sim.mouth import parse_site
    return parse_site(value)


def _plan(scenario, args):
    sites = [PlanSite(l.site, l.target_um, l.bots) for l in scenario.lesions]
    return Plan(session_cap=int(args.get("session_cap", 300000)),
                site_cap=int(args.get("site_cap", 100000)),
                rate_cap=int(args.get("rate_cap", 2400)),
                duration_s=int(args.get("duration", 40)), sites=sites,
                name=scenario.name)


@dataclass(eq=False)
class Session:
    """What happened, as the host saw it (events) and as the sim knew it (trace)."""

    scenario: object
    seed: int | None
    events: list = field(default_factory=list)      # (t_s, kind, text, data)
    states: list = field(default_factory=list)      # (t_s, state, reason)
    alarms: list = field(default_factory=list)      # (t_s, code name, prio, state)
    statuses: list = field(default_factory=list)    # (t_s, HUB_STATUS fields)
    # site -> [(t_s, depth, dose, temp, hub ms of the HUB_STATUS read before it)]
    sites: dict = field(default_factory=dict)
    bot_states: list = field(default_factory=list)  # (t_s, first bot, ((state, site, activity), ...))
    estop: dict | None = None                       # how the emergency stop went
    log: bytes | None = None                        # the audit log pulled at the end
    log_result: object = None                       # auditlog.verify of it
    trace: object = None                            # the simulator's trace
    error: str | None = None
    t_estop: float | None = None
    t_operator_estop: float | None = None
    last_line: float = 0.0

    def add(self, t, kind, text, data=None):
        self.events.append((t, kind, text, data))


def run_session(scenario="presentation-night", seed=None, bots=None, heap=HEAP,
                on_event=None, workdir=None, settle_s=8.0, keep_trace=None, on_frame=None,
                firmware=None, log_keep=True):
    """Run one scripted session; returns a :class:`Session`.

    With ``log_keep`` the operator pulls and acknowledges the audit log (keyed)
    whenever many records are waiting (:class:`nanohub.host.logkeep.LogKeeper`),
    as a clinic does, so a hub that writes more than its log holds in one
    life never latches ``LOG_FULL``; the log is pulled at the end either way.

    ``on_frame(direction, item)`` sees every frame on the link (see
    :func:`nanohub.host.study.tap.tap`), e.g. ``Recorder.on_frame``."""
    from nanohub.sim.scenario import load
    sc = load(scenario)
    seed = sc.seed if seed is None else seed
    bots = sc.bots if bots is None else bots
    own = workdir is None
    workdir = Path(workdir or tempfile.mkdtemp(prefix="nanohub-session-"))
    workdir.mkdir(parents=True, exist_ok=True)
    trace_path = Path(keep_trace) if keep_trace else workdir / "trace.jsonl.gz"
    s = Session(sc, seed)
    say = on_event or (lambda *a: None)

    def note(t, kind, text, data=None):
        s.add(t, kind, text, data)
        say(t, kind, text, data)

    emu = EmulatedHub(bots=bots, scenario=sc.source if os.path.exists(str(sc.source)) else sc.name,
                      seed=seed, heap=heap, store=workdir / "hub", trace=trace_path,
                      firmware=firmware)
    with emu:
        key = emu.key_path.read_bytes()
        with Hub.open(emu.url, key=key, timeout=1.0, retries=4) as hub:
            if on_frame is not None:
                from .tap import tap
                tap(hub, on_frame)
            t0 = time.monotonic()
            clock = lambda: time.monotonic() - t0   # noqa: E731
            note(0.0, "info", "hub 0x%08x (%s, firmware %d.%d.%d) with %d bots, scenario %s, seed %d"
                 % (hub.info["hub_id"], hub.info["board"], hub.info["fw_major"],
                    hub.info["fw_minor"], hub.info["fw_patch"], hub.info["bots"], sc.name, seed))
            hub.set_rates(status_hz=5, bots_hz=1, sites_hz=2)
            stop = threading.Event()
            watcher = threading.Thread(target=_watch, args=(hub, s, clock, note, stop), daemon=True)
            watcher.start()
            # the operator's thread is the only one that signs: no counter races
            keeper = LogKeeper(hub)
            keep = (lambda: _keep_log(keeper, s, clock, note)) if log_keep else (lambda: None)
            for t_op, verb, args in sc.operator:
                while clock() < t_op:
                    keep()
                    time.sleep(0.02)
                _operate(hub, s, sc, verb, args, clock, note)
            end = max(sc.duration_s, (s.t_operator_estop or 0) + settle_s)
            while clock() < end:
                if s.estop is not None and s.estop.get("unconfirmed") and \
                        s.statuses and s.statuses[-1][1]["disabled"] == bots:
                    break
                keep()
                time.sleep(0.1)
            if s.estop is not None and s.estop.get("unconfirmed"):
                # the hub keeps retrying; ask once more what it knows now
                try:
                    rep = hub.estop_report()
                    if rep is not None:
                        s.estop["final"] = rep
                        note(clock(), "estop", "later: %d of %d bots confirmed disabled"
                             % (rep["confirmed"], rep["total"]))
                except NanohubError:
                    pass
            stop.set()
            try:
                # the rest, not acknowledged: this hub's life ends with the session, and
                # a LOG_ACK here would be one more command in every recording
                raw = keeper.pull(ack=False)
                # what does not verify is kept out of the keeper: show it here
                s.log = keeper.raw + (raw if keeper.result is not None and
                                      not keeper.result.ok else b"")
                recs = auditlog.parse_records(s.log)
                s.log_result = auditlog.verify(recs)
                note(clock(), "log", "audit log: %d records, %s" % (
                    len(recs), "chain verifies" if s.log_result.ok else
                    "BROKEN at %s (%s)" % (s.log_result.bad_index, s.log_result.reason)))
            except NanohubError as e:
                note(clock(), "log", "audit log pull failed: %s" % e)
            watcher.join(1.0)
            _stop_gateway(emu)
    from nanohub.sim.world import load_trace
    try:
        s.trace = load_trace(trace_path)
    except (OSError, ValueError) as e:
        s.error = "no trace: %s" % e
    if own and keep_trace is None:
        import shutil
        shutil.rmtree(workdir, ignore_errors=True)
    return s


def _keep_log(keeper, s, clock, note):
    """Pull and acknowledge the audit log when the latest HUB_STATUS says it is due."""
    if not s.statuses:
        return
    try:
        if keeper.keep(s.statuses[-1][1].get("log_next")) is None:
            return
    except NanohubError as e:
        note(clock(), "log", "audit log pull failed (retried later): %s" % e)
        return
    if keeper.not_acked:
        note(clock(), "log", "audit log pulled to %d, not acknowledged: %s"
             % (keeper.next, keeper.not_acked))


def _stop_gateway(emu, wait_s=30.0):
    """Stop the swarm gateway and let it write its whole trace: on a loaded
    machine that takes longer than the launcher's kill grace."""
    gw = getattr(emu, "gateway", None)
    if gw is None or gw.poll() is not None:
        return
    gw.terminate()
    try:
        gw.wait(wait_s)
    except Exception:
        pass


# scenario verbs that send one command without arguments: Hub method, event text
_ONE_COMMAND = {
    "arm": ("arm", "armed (pre-treatment checks passed)"),
    "pause": ("pause", "treatment paused"),
    "resume": ("resume", "treatment resumed"),
    "stop": ("stop_treatment", "treatment stopped"),
    "recall": ("recall", "swarm recalled"),
}


def _operate(hub, s, sc, verb, args, clock, note):
    t = clock()
    try:
        if verb == "consent":
            hub.consent(int(args.get("patient", 1)))
            note(t, "op", "consent recorded for patient %s" % args.get("patient", 1))
        elif verb == "deploy":
            site = _site(args["site"])
            ack = hub.deploy(site, int(args.get("count", 1)))
            note(t, "op", "deploy %s bots to site %s: %s sent" % (args.get("count", 1), args["site"],
                                                                   getattr(ack, "detail", "?")))
        elif verb in _ONE_COMMAND:
            method, text = _ONE_COMMAND[verb]
            getattr(hub, method)()
            note(t, "op", text)
        elif verb == "treat_start":
            plan = _plan(sc, args)
            hub.treat_start(plan)
            note(t, "op", "treatment started on %d sites (session cap %d udu)"
                 % (len(plan.sites), plan.session_cap))
        elif verb == "estop":
            s.t_operator_estop = t
            note(t, "op", "EMERGENCY STOP pressed")
            res = hub.estop(timeout=6.0, source=int(args.get("source", 0)))
            s.estop = _estop_dict(res)
            note(clock(), "estop", "emergency stop: %d of %d bots confirmed disabled%s" % (
                s.estop["confirmed"], s.estop["total"],
                "; unconfirmed: %s" % s.estop["unconfirmed"] if s.estop["unconfirmed"] else ""))
        else:
            note(t, "op", "unknown operator action %r skipped" % verb)
    except NanohubError as e:
        note(t, "refused", "%s: %s" % (verb, e))


def _estop_dict(res):
    if isinstance(res, dict):
        return res
    return {"confirmed": getattr(res, "confirmed", 0), "total": getattr(res, "total", 0),
            "unconfirmed": list(getattr(res, "unconfirmed", []) or []),
            "done": getattr(res, "done", True)}


def _watch(hub, s, clock, note, stop):
    while not stop.is_set():
        try:
            _watch_some(hub, s, clock, note, stop)
        except NanohubError:
            time.sleep(0.2)


def _watch_some(hub, s, clock, note, stop):
    last_state = s.states[-1][1:] if s.states else None
    if True:
        for f in hub.telemetry(timeout=0.5):
            if stop.is_set():
                return
            t = clock()
            if f.name == "HUB_STATUS":
                s.statuses.append((t, dict(f.fields)))
                if t - s.last_line >= 5.0:
                    s.last_line = t
                    note(t, "telemetry", _line(f.fields))
                st = (HUB[f["state"]], ALARM.get(f["reason"], ""))
                if st != last_state:
                    last_state = st
                    s.states.append((t, HUB[f["state"]], ALARM.get(f["reason"], "")))
                    if f["state"] == schema.enum_value("HUB", "ESTOP") and s.t_estop is None:
                        s.t_estop = t
                    note(t, "state", "hub %s%s" % (HUB[f["state"]],
                                                  " (%s)" % ALARM[f["reason"]] if f["reason"] in ALARM else ""),
                         dict(f.fields))
            elif f.name == "ALARM":
                name = ALARM.get(f["code"], str(f["code"]))
                prio = schema.enum_name("PRIO", f["prio"])
                stname = schema.enum_name("ALST", f["state"])
                s.alarms.append((t, name, prio, stname))
                if stname == "RAISED":
                    where = ""
                    if f["bot"] != 255:
                        where += " bot %d" % f["bot"]
                    if f["site"] != 255:
                        where += " site %d" % f["site"]
                    note(t, "alarm", "ALARM %s %s%s" % (prio, name, where))
            elif f.name == "SITE_READINGS":
                # the hub sends periodic telemetry at once or never, in the
                # order it built it: this frame left after that status
                after = s.statuses[-1][1]["t"] if s.statuses else None
                for r in f.records:
                    s.sites.setdefault(r["site"], []).append(
                        (t, r["depth"], r["dose"], r["temp"], after))
            elif f.name == "BOT_STATES":
                s.bot_states.append((t, f["first"], tuple((r["state"], r["site"], r["activity"])
                                                          for r in f.records)))


def _line(f):
    return ("bots: %d docked, %d deployed, %d active, %d quarantined, %d disabled, %d lost; "
            "dose %d/%d udu; sensitivity %.2f; bus link %d%%" % (
                f["docked"], f["deployed"], f["active"], f["quarantined"], f["disabled"],
                f["lost"], f["dose"], f["dose_cap"], f["sens"] / 1000.0, f["link"]))


def outcome(s):
    """Judge a session from the simulator's ground truth."""
    from nanohub.firmware.hub import wire as w
    out = {"scenario": s.scenario.name, "seed": s.seed}
    tr = s.trace
    if tr is None:
        out["error"] = s.error or "no trace"
        return out
    samples = tr.samples()
    first, last = samples[0], samples[-1]
    planned = {l.site for l in s.scenario.lesions}
    end = {b[0]: b[1] for b in last[3]}
    out["depth"] = {a[0]: (a[1], end[a[0]]) for a in first[3]
                    if a[0] in planned and a[0] in end}
    red = [a - b for a, b in out["depth"].values()]
    out["depth_reduction_um"] = sum(red) / len(red) if red else 0.0
    out["adverse_events"] = tr.adverse_events()
    out["nano_events"] = tr.nano_events()
    out["peak_sensitivity"] = tr.peak_sensitivity()
    # what each bot delivered after it was really disabled (ground truth)
    after = {}
    for b in range(len(first[2])):
        off = next((t for t, st, _, _ in tr.activity(b) if st == w.BOT_DISABLED), None)
        if off is None:
            continue
        at = next((r for r in samples if r[1] >= off), last)
        after[b] = last[2][b][3] - at[2][b][3]
    out["dose_after_disable"] = sum(after.values())
    out["bots_dose_after_disable"] = sorted(b for b, d in after.items() if d > 0)
    faults = []
    for t_ms, idx, kind, bots in tr.fault_starts():
        row = {"kind": kind, "t": t_ms / 1000.0, "bots": list(bots)}
        if bots and kind in ("runaway", "silent", "sensor_drift", "battery_collapse", "stuck_disable"):
            times = [tr.containment_time(b, since_s=t_ms / 1000.0) for b in bots]
            row["contained_s"] = None if any(x is None for x in times) else max(times)
        faults.append(row)
    out["faults"] = faults
    states = [b[0] for b in last[2]]
    out["bots_disabled_at_end"] = sum(1 for st in states if st == w.BOT_DISABLED)
    out["bots_delivering_at_end"] = sum(1 for b in last[2] if b[2] > 0)
    out["bots"] = len(states)
    out["false_quarantines"] = _false_quarantines(s, tr)
    out["estop"] = s.estop
    out["t_estop"] = s.t_estop
    out["log_ok"] = bool(s.log_result) if s.log_result is not None else None
    out["contained"] = (out["bots_delivering_at_end"] == 0
                        and all(f.get("contained_s", 0) is not None for f in faults))
    out["inputs"] = _inputs(s)
    return out


def _inputs(s):
    """Every safety input, the hub's view against the truth (``nanohub.host.study.inputs``)."""
    from .inputs import compare
    return compare(s)


def _false_quarantines(s, tr):
    """Bots the hub quarantined that no fault touched (from its audit log)."""
    if not s.log:
        return []
    faulty = set(tr.fault_bots())
    q = schema.enum_value("BOT", "QUARANTINED")
    ev = schema.enum_value("EV", "BOT")
    out = set()
    for r in auditlog.parse_records(s.log):
        if r.get("index") is not None and r["event"] == ev and r["b"] == q and r["a"] not in faulty:
            out.add(r["a"])
    return sorted(out)


def hub_story(s):
    """What the hub did, from its audit log (complete even while the link was cut)."""
    if not s.log or not s.statuses:
        return []
    recs = auditlog.parse_records(s.log)
    host0, st0 = s.statuses[0]
    hub0 = st0["t"]
    ev = {v: n for n, v, _ in schema.ENUMS["EV"]}
    bot = {v: n for n, v, _ in schema.ENUMS["BOT"]}
    out = []
    for r in recs:
        if r.get("index") is None:
            continue
        t = host0 + (r["t"] - hub0) / 1000.0
        kind = ev.get(r["event"], "")
        if kind == "STATE":
            why = ALARM.get(r["c"], "")
            out.append((t, "%s -> %s%s" % (HUB.get(r["b"], "?"), HUB.get(r["a"], "?"),
                                          " (%s)" % why if why else "")))
        elif kind == "ALARM":
            per_bot = ("BOT_LOST", "BOT_QUARANTINE", "RUNAWAY")
            who = " bot %d" % r["b"] if ALARM.get(r["a"]) in per_bot else ""
            out.append((t, "alarm %s%s" % (ALARM.get(r["a"], r["a"]), who)))
        elif kind == "BOT":
            out.append((t, "bot %d %s (%s)" % (r["a"], bot.get(r["b"], r["b"]),
                                               ALARM.get(r["c"], "silent %d ms" % r["c"]))))
        elif kind == "ESTOP":
            out.append((t, "emergency stop: DISABLE broadcast to %d bots" % r["c"]))
        elif kind == "ESTOP_DONE":
            out.append((t, "emergency stop confirmation: %d confirmed, %d unconfirmed"
                        % (r["c"], r["b"])))
        elif kind == "ADVERSE":
            out.append((t, "ADVERSE EVENT recorded (sensitivity %.2f)" % (r["c"] / 1000.0)))
        elif kind == "REJECT":
            out.append((t, "rejected command 0x%02x (%s)" % (r["a"], schema.enum_name("WHY", r["c"]))))
    return out
