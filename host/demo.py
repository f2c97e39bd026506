"""``nanohub demo``: the main job, end to end, in about a minute.

Starts the emulated hub (firmware on the MicroPython VM) with the simulated
swarm, runs the pre-treatment checks, arms, deploys and treats while showing
live telemetry, lets the presentation-night faults strike, watches the hub
contain them, shuts the swarm down, pulls and verifies the audit log and
prints a summary. Exit 0 when every fault was contained, every bot that can
still hear is confirmed disabled, and the audit log verifies.
"""
import sys

from .session import outcome

KINDS = {"telemetry": "swarm", "op": "operator", "state": "hub", "alarm": "hub", "estop": "hub",
         "log": "host", "info": "", "refused": "REFUSED"}


def run(scenario="presentation-night", seed=None, bots=None, heap="256k", json_out=False,
        stream=sys.stdout, record=None):
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
    db, html = demo_paths(record)      # the session is recorded, then reported
    s = record_session(db, scenario, seed=seed, bots=bots, heap=heap, on_event=show)
    res = outcome(s)
    ok = _verdict(res)
    if json_out:
        import json
        res["ok"] = ok
        stream.write(json.dumps({"summary": res}, default=str) + "\n")
    else:
        _summary(res, s, ok, stream)
    from .record import write_report
    write_report(db, html, stream, json_out)
    return 0 if ok else 1


def _verdict(res):
    if res.get("error"):
        return False
    est = res.get("estop") or {}
    final = est.get("final") or est
    confirmed = final.get("confirmed", 0) == final.get("total", -1) or \
        res["bots_disabled_at_end"] == res["bots"]
    return bool(res["contained"] and res["log_ok"] and confirmed
                and res["dose_after_disable"] == 0)


def _summary(res, s, ok, out):
    w = out.write
    w("\n== Summary ==\n")
    if res.get("error"):
        w("could not judge the session: %s\n" % res["error"])
        return
    w("What happened:\n")
    for f in res["faults"]:
        bots = (" bots %s" % f["bots"]) if f["bots"] else ""
        w("  %5.1f s  %s%s\n" % (f["t"], f["kind"], bots))
    w("What the hub did (from its audit log):\n")
    from .session import hub_story
    for t, text in hub_story(s):
        w("  %5.1f s  %s\n" % (t, text))
    raised = sorted({(a[1], a[2]) for a in s.alarms if a[3] == "RAISED"})
    w("  alarms raised: %s\n" % (", ".join("%s %s" % (p, n) for n, p in raised) or "none"))
    w("Lesion depth (before -> after, um):\n")
    for site, (a, b) in sorted(res["depth"].items()):
        w("  site %3d: %5d -> %5d\n" % (site, a, b))
    w("Adverse events: %d (nano-sensitivity %d, peak sensitivity %.2f of the limit)\n"
      % (res["adverse_events"], res["nano_events"], res["peak_sensitivity"]))
    for f in res["faults"]:
        if "contained_s" in f:
            c = f["contained_s"]
            w("Time to contain %s: %s\n" % (f["kind"], "NOT CONTAINED" if c is None else "%.1f s" % c))
    est = res.get("estop") or {}
    final = est.get("final") or est
    if est:
        w("Emergency stop: %d of %d bots confirmed disabled%s\n" % (
            final.get("confirmed", 0), final.get("total", 0),
            "; unconfirmed %s" % final.get("unconfirmed") if final.get("unconfirmed") else ""))
    w("Swarm at the end (ground truth): %d of %d bots disabled, %d delivering\n"
      % (res["bots_disabled_at_end"], res["bots"], res["bots_delivering_at_end"]))
    w("Dose delivered after a bot heard DISABLE: %d udu\n" % res["dose_after_disable"])
    w("Audit log: %s\n" % ("verifies" if res["log_ok"] else "DOES NOT VERIFY"))
    w("Result: %s\n" % ("faults contained, swarm shut down" if ok else "NOT CONTAINED"))
