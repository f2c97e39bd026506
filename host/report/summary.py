"""The summary table at the top of a report: (item, text, level) rows.

Levels: "ok", "warn", "bad", or "" (neutral). A compared pair of sessions
shares the item column.
"""
import json
import time



def hms(s):
    if s is None:
        return "?"
    s = float(s)
    return "%d:%02d" % (s // 60, s % 60) if s >= 60 else "%.1f s" % s


def when(d):
    try:
        return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(float(d.meta["started_at"])))
    except (KeyError, ValueError):
        return "?"


def rows(d):
    out = []
    add = lambda item, text, level="": out.append((item, text, level))   # noqa: E731
    m = d.meta
    add("Recorded", "%s, %s long, from %s" % (when(d), hms(d.duration), m.get("source") or "?"))
    h = d.hub
    if h:
        add("Hub", "0x%08x, firmware %s.%s.%s on %s, %s bots, boot %s" % (
            h["hub_id"] or 0, h["fw_major"], h["fw_minor"], h["fw_patch"], h["board"],
            h["bots"], h["boots"]))
    if m.get("scenario"):
        add("Scenario", "%s (seed %s), emulated hub with the simulated swarm"
            % (m["scenario"], m.get("seed", "?")))
    if d.interrupted:
        add("Recording", "INTERRUPTED: the recorder stopped without closing; data up to "
            "%s is here" % hms(m.get("last_batch_t")), "warn")
    elif m.get("link_lost"):
        add("Recording", "ended when the link was lost (%s)" % m["link_lost"], "warn")
    else:
        add("Recording", "complete" if d.ended == "complete" else d.ended, "ok")
    segs = d.state_segments()
    if segs:
        last = segs[-1]
        add("Final hub state", last[2] + (" (%s)" % last[3] if last[3] else ""),
            "bad" if last[2] == "ESTOP" else "")
        path = []
        for s in segs:
            label = s[2] + (" (%s)" % s[3] if s[3] else "")
            if not path or path[-1] != label:
                path.append(label)
        add("Hub states", " → ".join(path[:14]) + (" …" if len(path) > 14 else ""))
    from .story import alarm_text, flag_text, lesion_text
    text, level, _ = alarm_text(d)
    add("Alarms raised", text, level)
    ops = d.operator_commands()
    refused = [c for c in ops if c["status"] == "REJECTED"]
    silent = [c for c in ops if c["status"] == "no ACK"]
    add("Operator commands", "%d sent, %d refused%s, %d unanswered" % (
        len(ops), len(refused), " (%s)" % ", ".join("%s: %s" % (c["name"], c["reason"])
                                                  for c in refused[:4]) if refused else "",
        len(silent)), "warn" if refused or silent else "ok")
    est = [c for c in ops if c["name"] == "ESTOP"]
    if est or d.estops:
        text, level = _estop(d, est)
        add("Emergency stop", text, level)
    add("Lesions", lesion_text(d) or "no site readings", "")
    if len(d.st["t"]):
        dose, cap = int(d.st["dose"][-1]), int(d.st["dose_cap"][-1])
        add("Dose delivered", "%d of %d µDU session cap (%.0f %%)" % (
            dose, cap, 100.0 * dose / cap if cap else 0), "warn" if cap and dose >= cap else "ok")
        peak = float(d.st["sens"].max()) / 1000.0
        th = d.thresholds()
        text = "%.2f of the limit (hub telemetry)" % peak
        if d.truth:
            text += ", %.2f ground truth" % d.truth["peak_sens"]
            peak = max(peak, d.truth["peak_sens"])
        if th:
            text += "; thresholds: " + ", ".join("%s %.2f" % (n, v) for v, n in th)
        add("Peak sensitivity", text, "bad" if peak >= 1.0 or any(
            peak >= v for v, n in th if n == "pause") else "warn" if any(
            peak >= v for v, _ in th) else "ok")
    from .story import adverse, swarm_end
    adv = adverse(d)
    add("Adverse events", "%d (%s)" % (adv["events"], adv["source"]), "bad" if adv["events"] else "ok")
    if d.truth:
        add("Faults (ground truth)", *_faults(d))
    sw = swarm_end(d)
    if sw:
        add("Swarm at the end (ground truth)", "%d of %d bots disabled, %d delivering" % (
            sw["disabled"], sw["bots"], sw["delivering"]), "bad" if sw["delivering"] else "ok")
    res = d.audit_result
    if res is None:
        add("Audit log", "not in this recording", "warn")
    else:
        add("Audit log", ("verifies: " if res.ok else "DOES NOT VERIFY: ") + str(res)
            + "; " + flag_text(d),
            "ok" if res.ok else "bad")
    gaps = d.gaps()
    add("Telemetry", "%d hub status, %d bot state, %d site readings; %s" % (
        d.counts["status"], d.counts["bot_state"], d.counts["site_reading"],
        "%d gap(s), %s without telemetry" % (len(gaps), hms(sum(b - a for a, b in gaps)))
        if gaps else "no gaps"), "warn" if gaps else "ok")
    return out


def _estop(d, est):
    pressed = ("pressed at %s" % hms(est[0]["t"])) if est else "by the hub"
    if not d.estops:
        return "%s; no ESTOP_REPORT recorded" % pressed, "warn"
    t, done, total, confirmed, unconfirmed, pending = d.estops[-1]
    text = "%s: %d of %d bots confirmed disabled%s" % (pressed, confirmed, total,
                                                      "" if done else " (not finished)")
    if unconfirmed:
        ids = json.loads(pending or "[]")
        text += "; %d unconfirmed%s" % (unconfirmed, " (bots %s)" % ", ".join(map(str, ids[:10]))
                                        if ids else "")
    return text, "ok" if done and confirmed >= total else "warn"


def _faults(d):
    from .story import faults
    fs = faults(d)
    per_bot = [f for f in fs if "contained_s" in f and not f.get("not_applicable")]
    bad = [f for f in per_bot if f["contained_s"] is None]
    text = "%d fault(s): %s" % (len(fs), ", ".join(f["kind"] for f in fs) or "none")
    na = [f for f in fs if f.get("not_applicable")]
    if per_bot:
        slow = max((f for f in per_bot if f["contained_s"] is not None),
                   key=lambda f: f["contained_s"], default=None)
        text += "; %d of %d bot faults contained" % (len(per_bot) - len(bad), len(per_bot))
        if slow:
            text += ", slowest %.2f s (%s)" % (slow["contained_s"], slow["kind"])
    if na:
        text += "; not applicable to %s (its bots were already disabled)" % ", ".join(
            f["kind"] for f in na)
    return text, "bad" if bad else "ok"
