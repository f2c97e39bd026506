"""The report's sections, one HTML fragment per session each.

Each ``section_*`` takes a :class:`~nanohub.host.report.data.SessionData`,
the figure width (inches) and the shared time-axis length, and returns HTML.
"""
import base64
import json
import re
from html import escape

from nanohub.protocol import auditlog, schema

from . import plots
from ..plan import site_name
from .summary import hms

MAX_ROWS = 250
PER_BOT_ALARMS = ("BOT_LOST", "BOT_QUARANTINE", "RUNAWAY")   # their audit record's b is a bot
# audit-log events shown on the timeline, with their row level
LOG_TIMELINE = {"ALARM": "warn", "BOT": "warn", "ESTOP": "bad", "ESTOP_DONE": "", "ADVERSE": "bad",
                "REJECT": "warn", "TREAT": "", "CONSENT": "", "KEY": "", "PARAM": "",
                "TORN": "warn", "BOOT": ""}


def figure(png, alt, caption=""):
    src = "data:image/png;base64," + base64.b64encode(png).decode("ascii")
    return ('<figure><img alt="%s" src="%s">%s</figure>'
            % (escape(alt), src, "<figcaption>%s</figcaption>" % caption if caption else ""))


def table(head, rows, cls="", levels=None, limit=MAX_ROWS):
    out = ['<table class="%s">' % cls]
    if any(head):
        out.append("<thead><tr>%s</tr></thead>" % "".join("<th>%s</th>" % escape(h) for h in head))
    out.append("<tbody>")
    for i, r in enumerate(rows[:limit]):
        lv = levels[i] if levels else ""
        out.append('<tr class="%s">%s</tr>' % (lv, "".join(
            "<td>%s</td>" % escape("" if v is None else str(v)) for v in r)))
    out.append("</tbody></table>")
    if len(rows) > limit:
        out.append('<p class="note">… and %d more rows (all of them are in the database)</p>'
                   % (len(rows) - limit))
    return "".join(out)


def log_text(r):
    """An audit record as 'EVENT detail' (without index and hub time)."""
    ev = auditlog.event_name(r["event"])
    if ev == "ESTOP":
        return "ESTOP: DISABLE broadcast to %d bots (source %d)" % (r["c"], r["a"])
    if ev == "BOT":
        cause = schema.enum_name("ALARM", r["c"], "silent %d ms" % r["c"])
        return "BOT bot %d -> %s (%s)" % (r["a"], schema.enum_name("BOT", r["b"]), cause)
    if ev == "ALARM":
        code = schema.enum_name("ALARM", r["a"])
        return "ALARM %s%s%s" % (code, " bot %d" % r["b"] if code in PER_BOT_ALARMS else "",
                                 " value %d" % r["c"] if r["c"] else "")
    return re.sub(r"\s+", " ", re.sub(r"^#\d+\s+[-\d.]+ s\s+", "", auditlog.describe(r)))


def ts(t):
    return "" if t is None else "%.2f" % t


# ---------------------------------------------------------------- timeline --

def timeline_rows(d):
    rows = []
    for t0, _, state, reason in d.state_segments():
        rows.append((t0, "hub", "state %s%s" % (state, " (%s)" % reason if reason else ""),
                     "bad" if state == "ESTOP" else "warn" if state == "PAUSED" else ""))
    for r in d.log_window():
        ev = auditlog.event_name(r["event"])
        if ev in LOG_TIMELINE:
            rows.append((d.hub_time(r["t"]), "hub log", log_text(r), LOG_TIMELINE[ev]))
    for t, code, prio, state, bot, site, value in d.alarms:
        where = (" bot %d" % bot if bot != 255 else "") + (" site %d" % site if site != 255 else "")
        rows.append((t, "alarm", "%s %s %s%s" % (prio, code, state.lower(), where),
                     "bad" if prio == "HIGH" and state == "RAISED" else
                     "warn" if state == "RAISED" else ""))
    for c in d.operator_commands():
        ack = c["status"] + (" " + c["reason"] if c["status"] == "REJECTED" else "")
        rows.append((c["t"], "operator", "%s → %s" % (c["name"], ack),
                     "bad" if c["status"] == "REJECTED" else ""))
    for t, kind, text in d.events:
        if kind in ("op", "telemetry", "state", "alarm", "info"):
            continue        # the same as the commands and the telemetry above
        rows.append((t, kind, text, "warn" if kind in ("refused", "link") else ""))
    for f in d.faults:
        rows.append((f["t"], "fault", "%s starts%s" % (f["kind"], (" on bots %s" % f["bots"])
                                                        if f["bots"] else ""), "bad"))
        if f.get("until"):
            rows.append((f["until"], "fault", "%s ends" % f["kind"], ""))
    for t, kind, sens in getattr(d, "truth_events", []) or []:
        rows.append((t, "patient", "ADVERSE EVENT %s (S %.2f)" % (kind, (sens or 0) / 1000), "bad"))
    for t0, t1 in d.gaps():
        rows.append((t0, "link", "no telemetry for %.1f s" % (t1 - t0), "warn"))
    rows.sort(key=lambda r: r[0])
    return rows


def section_timeline(d, width, xmax):
    rows = timeline_rows(d)
    return (figure(plots.timeline(d, width, xmax), "timeline of hub states, alarms, operator "
                   "commands and faults")
            + "<details open><summary>%d events</summary>%s</details>" % (len(rows), table(
                ("t (s)", "who", "what"), [(ts(r[0]), r[1], r[2]) for r in rows], "events",
                [r[3] for r in rows])))


# ------------------------------------------------------------------- sites --

def section_sites(d, width, xmax):
    rows = []
    for s, r in sorted(d.sites.items()):
        n = len(r["depth"])
        target = d.targets.get(s)
        end = int(r["depth"][-1]) if n else None
        rows.append((s, site_name(s), int(r["depth"][0]) if n else "", end, target or "",
                     ("reached" if target and end is not None and end <= target else
                      "not reached" if target else "unplanned"),
                     int(r["dose"][-1]) if n else "", "%.1f" % (r["temp"].max() / 100) if n else ""))
    levels = ["ok" if r[5] == "reached" else "" for r in rows]
    return (figure(plots.sites(d, width, xmax), "lesion depth and dose per site over time")
            + table(("site", "tooth-surface", "depth at start (µm)", "at end (µm)",
                     "target (µm)", "target", "dose (µDU)", "peak temp (°C)"), rows, "", levels))


# ------------------------------------------------------------- sensitivity --

def section_sensitivity(d, width, xmax):
    import numpy as np
    t, s = d.st["t"], d.st["sens"]
    rows = []
    if len(t) > 1:
        dt = np.diff(t, append=t[-1])
        rows.append(("peak (hub)", "%.2f of the limit at %s s" % (s.max() / 1000, ts(t[s.argmax()]))))
        for v, label in d.thresholds():
            rows.append(("time above %s (%.2f)" % (label, v), "%.1f s" % dt[s >= v * 1000].sum()))
    if d.truth:
        rows.append(("peak (ground truth)", "%.2f of the limit" % d.truth["peak_sens"]))
    rows.append(("thresholds from", d.params_source or "unknown"))
    return (figure(plots.sensitivity(d, width, xmax), "sensitivity index against thresholds")
            + table(("", ""), rows, "kv"))


# -------------------------------------------------------------------- bots --

def section_bots(d, width, xmax):
    cols = ("docked", "deployed", "active", "returning", "quarantined", "disabled", "lost")
    rows = []
    if len(d.st["t"]):
        rows.append(["at the start"] + [int(d.st[c][0]) for c in cols])
        rows.append(["at the end"] + [int(d.st[c][-1]) for c in cols])
        rows.append(["most at once"] + [int(d.st[c].max()) for c in cols])
    return (figure(plots.bots(d, width, xmax), "bots by state over time")
            + table(("",) + cols, rows))


# ------------------------------------------------------------------ faults --

def section_faults(d, width, xmax):
    out = []
    if d.faults:
        out.append(figure(plots.faults(d, width, xmax), "faults and their containment"))
        from .story import contain_text, faults, reaction_text
        rows, levels = [], []
        for f in faults(d):
            c = f.get("contained_s", "")
            rows.append((f["kind"], ", ".join(map(str, f["bots"])) or "—", ts(f["t"]),
                         ts(f.get("until")) or "—", reaction_text(f) or "—", contain_text(f)))
            levels.append("" if f.get("not_applicable") else "bad" if c is None
                          else "ok" if c != "" else "")
        out.append(table(("fault", "bots", "start (s)", "end (s)", "hub reaction, per bot",
                          "contained after (ground truth)"), rows, "", levels))
        out.append('<p class="note">Contained: the bot\'s true output fell to zero and stayed '
                   'there (simulator ground truth). Start and end on the recording\'s clock '
                   '(%s).</p>' % escape(d.meta.get("trace_alignment", "")))
    else:
        out.append('<p class="note">No simulator ground truth in this recording (a real hub): '
                   'faults as the hub saw them, from its per-bot alarms.</p>')
        rows = [(ts(a[0]), a[1], a[4], a[2]) for a in d.raised() if a[4] != 255]
        out.append(table(("t (s)", "alarm", "bot", "priority"), rows) if rows
                   else "<p>No per-bot alarm was raised.</p>")
    if d.estops:
        rows = [(ts(t), "yes" if done else "no", total, confirmed, unconfirmed,
                 ", ".join(map(str, json.loads(p or "[]")[:16])))
                for t, done, total, confirmed, unconfirmed, p in d.estops]
        out.append("<h3>Emergency stop reports</h3>" + table(
            ("t (s)", "done", "bots", "confirmed", "unconfirmed", "pending bots"), rows,
            "", ["ok" if r[1] == "yes" and r[3] >= r[2] else "warn" for r in rows]))
    return "".join(out)


# ------------------------------------------------------------------- audit --

def section_audit(d, width, xmax):
    res = d.audit_result
    if res is None:
        return '<p class="verdict warn">The audit log was not pulled in this recording.</p>'
    out = ['<p class="verdict %s">%s</p>' % ("ok" if res.ok else "bad", escape(
        ("The audit log verifies: " if res.ok else "The audit log DOES NOT VERIFY: ") + str(res)))]
    by = {}
    for r in d.audit:
        name = auditlog.event_name(r["event"])
        by[name] = by.get(name, 0) + 1
    out.append(table(("event", "records"), sorted(by.items()), "kv"))
    from .story import flag_text
    flags = [f for f in d.audit_flags]
    out.append("<h3>What it flags: %s</h3>" % escape(flag_text(d)))
    if flags:
        rows = [(level, "" if r is None else ts(d.hub_time(r["t"])),
                 "" if r is None else r["index"], text) for level, r, text in flags]
        out.append(table(("level", "t (s)", "record", "what"), rows, "", [f[0] for f in flags]))
    else:
        out.append("<p>Nothing.</p>")
    return "".join(out)


# ---------------------------------------------------------------- commands --

def section_commands(d, width, xmax):
    rows, levels = [], []
    for c in d.operator_commands():
        f = json.loads(c["fields"] or "{}")
        args = ", ".join("%s=%s" % kv for kv in f.items())
        if c["records"]:
            args += "; %d records" % len(json.loads(c["records"]))
        lat = "%.0f" % ((c["ack_t"] - c["t"]) * 1000) if c["ack_t"] is not None else "—"
        rows.append((ts(c["t"]), c["name"], args, "yes" if c["signed"] else "", c["tries"],
                     c["status"] + (" %s (%s)" % (c["reason"], c["ack_detail"])
                                    if c["status"] == "REJECTED" else ""), lat))
        levels.append("bad" if c["status"] == "REJECTED" else "warn" if c["ack_t"] is None
                      else "")
    reads = {}
    for c in d.commands:
        if c["kind"] != "command":
            reads[c["name"]] = reads.get(c["name"], 0) + 1
    note = ('<p class="note">Also sent: %s.</p>' % ", ".join(
        "%s ×%d" % kv for kv in sorted(reads.items()))) if reads else ""
    return table(("t (s)", "command", "arguments", "signed", "tries", "ACK", "ACK after (ms)"),
                 rows, "", levels) + note


# --------------------------------------------------------------- recording --

def section_recording(d, width, xmax):
    m = d.meta
    keys = ("format", "schema_version", "source", "created_at", "nanohub_version",
            "schema_fingerprint", "host", "hub_id", "ended", "batches", "rows", "flush_s",
            "trace_alignment", "trace_offset_s")
    rows = [(k, m[k]) for k in keys if k in m]
    rows.append(("duration", hms(d.duration)))
    rows.append(("thresholds from", d.params_source or "unknown"))
    frames = sorted(d.frames.items())
    return (table(("", ""), rows, "kv") + "<h3>Frames recorded</h3>"
            + table(("frames", "count"), frames, "kv"))


SECTIONS = (
    ("timeline", "Timeline: hub states, alarms and operator commands", section_timeline),
    ("sites", "Lesion depth and dose per site", section_sites),
    ("sensitivity", "Patient sensitivity index against its thresholds", section_sensitivity),
    ("bots", "Bots by state", section_bots),
    ("faults", "Faults and how long each took to contain", section_faults),
    ("audit", "Audit log verification", section_audit),
    ("commands", "Operator commands and their ACKs", section_commands),
    ("recording", "About this recording", section_recording),
)
