"""One story per session: the figures that the console summary of ``nanohub
demo`` and the HTML report both print, computed once from the session database.

Each figure has one source, named next to it:

- alarms raised: the hub's audit log (complete even while the host link was
  down), else the ALARM telemetry frames; priorities from the firmware's table;
- audit flags: the records the report's audit section lists, counted by level;
- lesion depth before and after: the simulator's ground truth when the
  recording has it, else the hub's site readings;
- faults: ground truth, with each faulty bot's first hub reaction named per
  bot, and "not applicable" when every bot of the fault was already disabled
  before it struck (nothing left to contain);
- adverse events and the swarm at the end: ground truth, else the audit log;
- emergency stop confirmations: the hub's last ESTOP_REPORT.

``nanohub study`` reads its per-run figures from here too (:func:`figures`),
so a study's row and the report of the same session cannot disagree.
"""
import ast

from nanohub.protocol import auditlog, schema

from ..plan import site_name

PRIOS = ("HIGH", "MEDIUM", "LOW")
PER_BOT_ALARMS = ("BOT_LOST", "BOT_QUARANTINE", "RUNAWAY")   # their audit record's b is a bot
BOT_DISABLED = schema.enum_value("BOT", "DISABLED")

# What the same scenario and seed reproduce exactly, and what follows the wall
# clock: the hub and the simulator run in real time as separate processes, so
# frame timing (and with it which frames a lossy bus drops) differs run to run.
DETERMINISTIC = ("the faults and their bots", "the alarms raised",
                 "the hub's state path", "bots confirmed disabled",
                 "dose after DISABLE", "adverse events", "the verdict")
TIMING_DEPENDENT = ("lesion depths (a few µm)", "dose totals", "times to detect and contain")


def alarm_priorities():
    """{alarm code name: priority name} from the firmware's table (hub/alarms.py)."""
    try:
        from ..vm import firmware_dir
        tree = ast.parse((firmware_dir() / "hub" / "alarms.py").read_text())
    except (OSError, SyntaxError, ImportError):
        return {}
    out = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.For) and isinstance(node.iter, ast.Tuple):
            for pair in node.iter.elts:
                if isinstance(pair, ast.Tuple) and len(pair.elts) == 2 and all(
                        isinstance(e, ast.Attribute) for e in pair.elts):
                    code, prio = (e.attr for e in pair.elts)
                    out[code.replace("ALARM_", "", 1)] = prio.replace("PRIO_", "", 1)
    return out


def alarms(d):
    """[{t, code, prio, bot}] of every alarm raised, and where that list comes from."""
    seen_prio = {a[1]: a[2] for a in d.alarms}
    prio = dict(alarm_priorities(), **seen_prio)
    log = [r for r in d.log_window() if auditlog.event_name(r["event"]) == "ALARM"]
    if d.audit_result is not None:
        out = []
        for r in log:
            code = schema.enum_name("ALARM", r["a"])
            out.append({"t": d.hub_time(r["t"]), "code": code, "prio": prio.get(code, "?"),
                        "bot": r["b"] if code in PER_BOT_ALARMS else None})
        return out, "the hub's audit log"
    out = [{"t": t, "code": code, "prio": p, "bot": None if bot == 255 else bot}
           for t, code, p, state, bot, site, value in d.alarms if state == "RAISED"]
    return out, "alarm telemetry (the audit log was not pulled)"


def alarm_text(d):
    found, source = alarms(d)
    by = {p: sum(1 for a in found if a["prio"] == p) for p in PRIOS}
    names = ", ".join("%s%s" % (a["code"], " bot %d" % a["bot"] if a["bot"] is not None else "")
                      for a in found)
    text = "%d (%d HIGH, %d MEDIUM, %d LOW)%s; from %s" % (
        len(found), by["HIGH"], by["MEDIUM"], by["LOW"], ": " + names if names else "", source)
    level = "bad" if by["HIGH"] else "warn" if found else "ok"
    return text, level, found


def flag_counts(d):
    """{level: n} over the audit flags the report's audit section lists."""
    out = {}
    for level, _, _ in d.audit_flags:
        out[level] = out.get(level, 0) + 1
    return out


def flag_text(d):
    counts = flag_counts(d)
    n = sum(counts.values())
    order = ("bad", "warn", "info", "ok")
    parts = ["%d %s" % (counts[k], k) for k in order if counts.get(k)]
    return "%d record%s flagged%s" % (n, "" if n == 1 else "s",
                                     " (%s)" % ", ".join(parts) if parts else "")


def lesions(d):
    """[(site, before, after, target)] and the source of the depths."""
    truth = getattr(d, "truth_sites", None) or {}
    planned = set(d.targets) or set(d.sites)
    rows = []
    if truth:
        for s in sorted(planned & set(truth) if planned else truth):
            r = truth[s]
            if len(r["depth"]):
                rows.append((s, int(r["depth"][0]), int(r["depth"][-1]), d.targets.get(s)))
        return rows, "ground truth"
    for s, r in sorted(d.sites.items()):
        if len(r["depth"]):
            rows.append((s, int(r["depth"][0]), int(r["depth"][-1]), d.targets.get(s)))
    return rows, "hub telemetry"


def lesion_text(d):
    rows, source = lesions(d)
    if not rows:
        return ""
    return "; ".join("%s: %d → %d µm%s" % (site_name(s), a, b, " (target %d)" % t if t else "")
                     for s, a, b, t in rows) + " (%s)" % source


def _state_at(d, bot, t):
    """(state, activity) of a bot just before t, from the ground truth's changes."""
    last = None
    for tc, b, state, activity in getattr(d, "truth_changes", ()):
        if tc > t:
            break
        if b == bot:
            last = (state, activity)
    return last


def _first_reaction(d, bot, since):
    """(seconds after ``since``, text) of the hub's first log record naming ``bot``."""
    for r in d.log_window():
        ev = auditlog.event_name(r["event"])
        if ev == "BOT":
            who = r["a"]
            what = "%s (%s)" % (schema.enum_name("BOT", r["b"]),
                                schema.enum_name("ALARM", r["c"], "silent %d ms" % r["c"]))
        elif ev == "ALARM" and schema.enum_name("ALARM", r["a"]) in PER_BOT_ALARMS:
            who, what = r["b"], "alarm %s" % schema.enum_name("ALARM", r["a"])
        else:
            continue
        t = d.hub_time(r["t"])
        if who == bot and t is not None and t >= since:
            return t - since, what
    return None


def faults(d):
    """The ground truth's faults, each with per-bot hub reactions and containment."""
    out = []
    for f in d.faults:
        row = dict(f)
        if f["bots"]:
            row["reactions"] = {b: _first_reaction(d, b, f["t"]) for b in f["bots"]}
        if "contained_s" in f:
            before = [_state_at(d, b, f["t"]) for b in f["bots"]]
            if before and all(s is not None and s[0] == BOT_DISABLED and not s[1]
                              for s in before):
                row["not_applicable"] = "its bots were already disabled when it struck"
        out.append(row)
    return out


def contain_text(f):
    if f.get("not_applicable"):
        return "not applicable: %s" % f["not_applicable"]
    c = f.get("contained_s", "")
    if c is None:
        return "NOT CONTAINED"
    return "%.2f s" % c if c != "" else "—"


def reaction_text(f):
    parts = []
    for b, hit in (f.get("reactions") or {}).items():
        parts.append("bot %d: %s" % (b, "%s after %.2f s" % (hit[1], hit[0]) if hit
                                      else "no hub record"))
    return "; ".join(parts)


def adverse(d):
    """{events, nano, peak_sens, source}: ground truth when recorded, else the audit log
    (which knows the events the hub saw, not the peak)."""
    if d.truth:
        nano = sum(1 for _, kind, _ in getattr(d, "truth_events", ()) if kind in _nano_kinds())
        return {"events": d.truth["adverse_events"], "nano": nano,
                "peak_sens": d.truth["peak_sens"], "source": "ground truth"}
    n = sum(1 for r in d.audit if auditlog.event_name(r["event"]) == "ADVERSE")
    return {"events": n, "nano": None, "peak_sens": None, "source": "audit log"}


def _nano_kinds():
    from nanohub.sim.patient import NANO
    return NANO


def swarm_end(d):
    """{bots, disabled, delivering} at the end (ground truth), or None without it."""
    t = d.truth
    if not t:
        return None
    return {"bots": t["bots"], "disabled": t["disabled_at_end"],
            "delivering": t["delivering_at_end"]}


def estop(d):
    """The hub's last emergency-stop report: {confirmed, total, done, unconfirmed}, or None."""
    if not d.estops:
        return None
    t, done, total, confirmed, unconfirmed, pending = d.estops[-1]
    import json
    return {"t": t, "done": bool(done), "total": total, "confirmed": confirmed,
            "unconfirmed": json.loads(pending or "[]") if unconfirmed else []}


def story(d):
    """Everything the console summary and the report's summary row print."""
    text, level, found = alarm_text(d)
    rows, source = lesions(d)
    return {"alarms": found, "alarms_text": text, "alarms_level": level,
            "flags": flag_counts(d), "flags_text": flag_text(d),
            "lesions": rows, "lesions_source": source, "lesions_text": lesion_text(d),
            "faults": faults(d), "adverse": adverse(d), "swarm": swarm_end(d),
            "estop": estop(d)}


def figures(st):
    """A study's per-run figures from a story: plain JSON-able values.

    Keys the study had before keep their names; a fault whose bots were all
    disabled before it struck carries ``not_applicable`` instead of ``contained_s``
    (the report prints "not applicable" for it)."""
    red = [a - b for _, a, b, _ in st["lesions"]]
    fl = []
    for f in st["faults"]:
        row = {"kind": f["kind"], "t": f["t"], "bots": list(f["bots"])}
        if f.get("not_applicable"):
            row["not_applicable"] = f["not_applicable"]
        elif "contained_s" in f:
            row["contained_s"] = f["contained_s"]
        fl.append(row)
    out = {
        "alarms_raised": len(st["alarms"]),
        "alarms_by_prio": {p: sum(1 for a in st["alarms"] if a["prio"] == p) for p in PRIOS},
        "alarm_codes": [a["code"] for a in st["alarms"]],
        "audit_flags": dict(st["flags"]),
        "audit_flagged": sum(st["flags"].values()),
        "depth": {s: (a, b) for s, a, b, _ in st["lesions"]},
        "depth_source": st["lesions_source"],
        "depth_reduction_um": sum(red) / len(red) if red else 0.0,
        "adverse_events": st["adverse"]["events"],
        "faults": fl,
    }
    if st["adverse"]["nano"] is not None:
        out["nano_events"] = st["adverse"]["nano"]
        out["peak_sensitivity"] = st["adverse"]["peak_sens"]
    if st["swarm"]:
        out["bots"] = st["swarm"]["bots"]
        out["bots_disabled_at_end"] = st["swarm"]["disabled"]
        out["bots_delivering_at_end"] = st["swarm"]["delivering"]
    if st["estop"]:
        out["bots_confirmed_disabled"] = st["estop"]["confirmed"]
        out["estop_total"] = st["estop"]["total"]
    return out
