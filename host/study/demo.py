"""``nanohub demo``: the main job, end to end, in about a minute.

Starts the emulated hub (firmware on the MicroPython VM) with the simulated
swarm, runs the pre-treatment checks, arms, deploys and treats while showing
live telemetry, lets the presentation-night faults strike, watches the hub
contain them, shuts the swarm down, pulls and verifies the audit log and
prints a summary. Exit 0 when every fault was contained, every bot that can
still hear is confirmed disabled, and the audit log verifies.
"""
import sys

from ..report.story import DETERMINISTIC, TIMING_DEPENDENT, contain_text, reaction_text
from .session import outcome
from ..simport import HEAP

KINDS = {"telemetry": "swarm", "op": "operator", "state": "hub", "alarm": "hub", "estop": "hub",
         "log": "host", "info": "", "refused": "REFUSED"}


def run(scenario="presentation-night", seed=None, bots=None, heap=HEAP, json_out=False,
        stream=sys.stdout, record=None, out=None):
    def show(t, kind, text, data=None):
        if json_out:
            import json
            stream.write(json.dumps({"t": round(t, 2), "kind": kind, "text": text}) + "\n")
        else:
            who = KINDS.get(kind, kind)
            stream.write("%6.1f s  %-8s %s\n" % (t, who, text))
        stream.flush()

    if not json_out:
        stream.write("nanohub demo: scenario %s on the emulated hub (MicroPython VM)\n" % scenario)
    from .record import demo_paths, record_session
    db, html = demo_paths(record, out)      # the session is recorded, then reported
    s = record_session(db, scenario, seed=seed, bots=bots, heap=heap, on_event=show)
    # the console summary, the report and a study's row print the same figures:
    # all read this
    from ..report.data import load
    from ..report.story import figures, story
    from .run import merge
    d = load(db)
    st = story(d)
    res = outcome(s)
    if not res.get("error"):
        res = merge(res, figures(st))
    ok = _verdict(res)
    if json_out:
        import json
        res["ok"] = ok
        res["story"] = _story_json(st)
        res["deterministic"] = list(DETERMINISTIC)
        res["timing_dependent"] = list(TIMING_DEPENDENT)
        stream.write(json.dumps({"summary": res}, default=str) + "\n")
    else:
        _summary(res, d, st, ok, stream)
    from .record import write_report
    write_report(db, html, stream, json_out, datas=[d])
    return 0 if ok else 1


def _story_json(st):
    return {"alarms": st["alarms"], "alarms_text": st["alarms_text"], "flags": st["flags"],
            "flags_text": st["flags_text"], "lesions_source": st["lesions_source"],
            "lesions": [{"site": s, "before_um": a, "after_um": b, "target_um": t}
                        for s, a, b, t in st["lesions"]],
            "faults": [{"kind": f["kind"], "t": f["t"], "bots": f["bots"],
                        "contained": contain_text(f), "reaction": reaction_text(f)}
                       for f in st["faults"]]}


def _verdict(res):
    if res.get("error"):
        return False
    est = res.get("estop") or {}
    final = est.get("final") or est
    confirmed = final.get("confirmed", 0) == final.get("total", -1) or \
        res["bots_disabled_at_end"] == res["bots"]
    return bool(res["contained"] and res["log_ok"] and confirmed
                and res["dose_after_disable"] == 0)


def _summary(res, d, st, ok, out):
    """The console summary: the report's figures (``st``), on the report's clock."""
    from nanohub.protocol import auditlog

    from ..plan import site_name
    from ..report.sections import LOG_TIMELINE, log_text
    w = out.write
    w("\n== Summary ==  (times: seconds since the recording started, as in the report)\n")
    if res.get("error"):
        w("could not judge the session: %s\n" % res["error"])
        return
    w("What happened (simulator ground truth):%s\n" % ("" if st["faults"] else " no faults"))
    for f in st["faults"]:
        bots = (" bots %s" % ", ".join(map(str, f["bots"]))) if f["bots"] else ""
        w("  %5.1f s  %s%s\n" % (f["t"], f["kind"], bots))
    w("What the hub did (from its audit log):\n")
    for r in d.log_window():
        ev = auditlog.event_name(r["event"])
        if ev in LOG_TIMELINE and ev not in ("BOOT", "CONSENT") or ev == "STATE":
            w("  %5.1f s  %s\n" % (d.hub_time(r["t"]), log_text(r)))
    w("Alarms raised: %s\n" % st["alarms_text"])
    w("Lesion depth before -> after (%s, um):\n" % st["lesions_source"])
    for site, a, b, target in st["lesions"]:
        w("  %-12s %5d -> %5d%s\n" % (site_name(site), a, b,
                                       "  (target %d)" % target if target else ""))
    adv = st["adverse"]
    w("Adverse events: %d (%s%s)\n" % (adv["events"], adv["source"], "" if adv["nano"] is None
      else "; nano-sensitivity %d, peak sensitivity %.2f of the limit"
      % (adv["nano"], adv["peak_sens"])))
    for f in st["faults"]:
        if "contained_s" in f:
            w("Time to contain %s: %s\n" % (f["kind"], contain_text(f)))
            if f.get("reactions") and not f.get("not_applicable"):
                w("  hub reaction: %s\n" % reaction_text(f))
    est = st["estop"]
    if est:
        w("Emergency stop: %d of %d bots confirmed disabled%s\n" % (
            est["confirmed"], est["total"],
            "; unconfirmed %s" % est["unconfirmed"] if est["unconfirmed"] else ""))
    sw = st["swarm"]
    if sw:
        w("Swarm at the end (ground truth): %d of %d bots disabled, %d delivering\n"
          % (sw["disabled"], sw["bots"], sw["delivering"]))
    w("Dose delivered after a bot heard DISABLE: %d udu\n" % res["dose_after_disable"])
    r = d.audit_result
    w("Audit log: %s; %s\n" % (("verifies" if r is not None and r.ok else "DOES NOT VERIFY"),
                                st["flags_text"]))
    w("Same scenario and seed, same: %s.\n" % ", ".join(DETERMINISTIC))
    w("Varies from run to run (the hub and the simulator run in real time): %s.\n"
      % ", ".join(TIMING_DEPENDENT))
    w("Result: %s\n" % ("faults contained, swarm shut down" if ok else "NOT CONTAINED"))
