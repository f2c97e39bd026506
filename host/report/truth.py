"""The simulator's ground truth in a session database: storing and judging it.

``align`` puts the trace's clock (simulator ms) on the recording's clock: the
first DEPLOY the host sent reaches the swarm as the trace's first DEPLOY bot
command a few tens of ms later (or, without a deploy, the ESTOP as the first
DISABLE). ``rows`` turns a :class:`nanohub.sim.world.Trace` into table rows.
``faults`` reads the faults back and measures, from the true bot activity,
how long each took to contain (the same rule as ``Trace.containment_time``).
"""
import json

from nanohub.protocol import schema

OP_DEPLOY = schema.enum_value("OP", "DEPLOY")
OP_DISABLE = schema.enum_value("OP", "DISABLE")
BOT_DISABLED = schema.enum_value("BOT", "DISABLED")
PER_BOT = ("runaway", "silent", "sensor_drift", "battery_collapse", "stuck_disable")


def align(trace, first_tx, fallback=None):
    """(offset_s, how): recording t = sim_ms / 1000 + offset_s."""
    for host_cmd, op in (("DEPLOY", OP_DEPLOY), ("ESTOP", OP_DISABLE)):
        t_host = first_tx.get(host_cmd)
        if t_host is None:
            continue
        sim = next((r[1] for r in trace.rows if r[0] == "cmd" and r[3] == op), None)
        if sim is not None:
            return t_host - sim / 1000.0, "first %s sent = first %s bot command" % (
                host_cmd, schema.enum_name("OP", op))
    if fallback is not None:
        return fallback
    return 0.0, "unaligned (no command to align on): simulator time used as is"


def rows(trace, offset):
    """{table: [row, ...]} for the truth_* tables."""
    out = {k: [] for k in ("truth_bot", "truth_site", "truth_patient", "truth_bot_change",
                           "truth_fault", "truth_cmd", "truth_event", "truth_other")}
    bot, site, pat = out["truth_bot"], out["truth_site"], out["truth_patient"]
    for r in trace.rows:
        kind, ms = r[0], r[1]
        t = ms / 1000.0 + offset
        if kind == "s":
            bot.extend((t, i, ms, b[0], b[1], b[2], b[3], b[4], b[5]) for i, b in enumerate(r[2]))
            site.extend((t, s[0], ms, s[1], s[2], s[3], s[4]) for s in r[3])
            pat.append((t, ms) + tuple(r[4][:3]))
        elif kind == "bot":
            out["truth_bot_change"].append((t, ms, r[2], r[3], r[4], r[5]))
        elif kind == "fault":
            out["truth_fault"].append((t, ms, r[2], r[3], r[4], json.dumps(list(r[5]))))
        elif kind == "cmd":
            out["truth_cmd"].append((t, ms) + tuple(r[2:8]) + (None,) * (6 - len(r[2:8])))
        elif kind == "event":
            out["truth_event"].append((t, ms, r[2], r[3] if len(r) > 3 else None))
        else:
            out["truth_other"].append((t, ms, kind, json.dumps(list(r[2:]), default=str)))
    return out


def store_trace(db, trace, first_tx, fallback=None):
    """The truth_* rows of ``trace`` (one transaction); returns the clock offset (s).
    ``fallback``: (offset, how) when no command aligns the clocks."""
    offset, how = align(trace, first_tx, fallback)
    data_rows = rows(trace, offset)
    db.execute("BEGIN")
    try:
        for table, data in data_rows.items():
            if data:
                db.executemany("INSERT INTO %s VALUES (%s)" % (
                    table, ",".join("?" * len(data[0]))), data)
        db.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)", [
            ("trace_meta", json.dumps(trace.meta, default=str)),
            ("trace_offset_s", repr(offset)), ("trace_alignment", how)])
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise
    return offset


def add_trace_to(path, trace, fallback=None):
    """Add a trace to a closed recording (the simulator writes it only when it stops)."""
    from . import db as report_db
    db = report_db.open_session(path)
    try:
        first = dict(db.execute("SELECT name, min(t) FROM command GROUP BY name").fetchall())
        return store_trace(db, trace, first, fallback)
    finally:
        db.close()


def has_truth(db):
    return db.execute("SELECT 1 FROM truth_patient LIMIT 1").fetchone() is not None


def _containment(changes, t0):
    """Seconds from t0 until the bot's true output went to 0 and stayed there."""
    if changes and changes[-1][1] > 0:
        return None
    off = None
    for (_, a0), (t1, a1) in zip(changes, changes[1:]):
        if a0 > 0 and a1 == 0:
            off = t1
    if off is None or off <= t0:
        return 0.0
    return off - t0


def faults(db):
    """Each fault that started: kind, start/end (recording s), bots, contained_s,
    and when the hub first raised an alarm about one of its bots."""
    rows = db.execute("SELECT t, edge, idx, kind, bots FROM truth_fault ORDER BY t").fetchall()
    ends = {idx: t for t, edge, idx, _, _ in rows if edge == "end"}
    changes = {}
    for t, b, act in db.execute("SELECT t, bot, activity FROM truth_bot_change ORDER BY t"):
        changes.setdefault(b, []).append((t, act))
    alarms = db.execute("SELECT t, code, bot FROM alarm WHERE state = 0 ORDER BY t").fetchall()
    out = []
    for t, edge, idx, kind, bots in rows:
        if edge != "start":
            continue
        bots = json.loads(bots)
        f = {"index": idx, "kind": kind, "t": t, "until": ends.get(idx), "bots": bots}
        if bots and kind in PER_BOT:
            times = [_containment(changes.get(b, []), t) for b in bots]
            f["contained_s"] = None if any(x is None for x in times) else max(times)
            seen = [(ta, c) for ta, c, b in alarms if ta >= t and b in bots]
            if seen:
                f["detected_s"] = seen[0][0] - t
                f["detected_by"] = schema.enum_name("ALARM", seen[0][1])
        out.append(f)
    return out


def summary(db):
    """Ground-truth figures for the summary table (None without a trace)."""
    if not has_truth(db):
        return None
    peak, events = db.execute("SELECT max(sens), max(nano_events) FROM truth_patient").fetchone()
    n_events = db.execute("SELECT count(*) FROM truth_event").fetchone()[0]
    last_t = db.execute("SELECT max(t) FROM truth_bot").fetchone()[0]
    end = db.execute("SELECT count(*), sum(state = ?), sum(activity > 0) FROM truth_bot "
                     "WHERE t = ?", (BOT_DISABLED, last_t)).fetchone()
    return {"peak_sens": (peak or 0) / 1000.0, "adverse_events": n_events,
            "bots": end[0], "disabled_at_end": end[1] or 0, "delivering_at_end": end[2] or 0}
