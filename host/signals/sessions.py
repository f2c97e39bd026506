"""One row per recorded session: when, which firmware, plan and bot batch,
and how many safety events it had.

Counts (per session):

* ``nano``: nano-sensitivity episodes (sensory disruption, migraine): the
  simulator's ground truth when the session has one (``truth_event``), else
  the hub's ADVERSE audit records (the hub logs each episode the patient
  monitor reports).
* ``adverse``: every adverse event (nano-sensitivity and pulp heating), from
  the same source.
* ``throttles``: SENS_THROTTLE and HEAT_THROTTLE alarms raised by the hub.
* ``quarantines``: BOT_QUARANTINE and HEAT_QUARANTINE alarms raised.

An alarm frame is sent again on every state change and on every ``alarms
list``: a raise is counted once per (code, bot, site, hub time).
"""
import hashlib
import json
import sqlite3
from dataclasses import asdict, dataclass
from pathlib import Path

from nanohub.protocol import schema

from ..errors import UsageError

NANO_KINDS = ("sensory_disruption", "migraine")
METRICS = ("nano", "adverse", "throttles", "quarantines")
GROUPS = ("firmware", "plan", "batch")
_THROTTLE = ("SENS_THROTTLE", "HEAT_THROTTLE")
_QUARANTINE = ("BOT_QUARANTINE", "HEAT_QUARANTINE")


@dataclass
class Session:
    path: str
    started_at: float
    firmware: str
    plan: str
    batch: str
    nano: int
    adverse: int
    throttles: int
    quarantines: int
    source: str              # where the adverse counts came from: truth, audit, none

    def to_dict(self):
        return asdict(self)


def _q(db, sql, params=()):
    try:
        return db.execute(sql, params).fetchall()
    except sqlite3.OperationalError:
        return []


def _meta(db):
    return dict(_q(db, "SELECT key, value FROM meta"))


def plan_label(fields, records):
    """A short, stable name for a treatment plan (the TREAT_START it was sent as)."""
    text = json.dumps([json.loads(fields or "null"), json.loads(records or "null")],
                      sort_keys=True)
    return "plan-" + hashlib.sha256(text.encode()).hexdigest()[:8]


def _raised(db, codes):
    values = tuple(schema.enum_value("ALARM", c) for c in codes)
    raised = schema.enum_value("ALST", "RAISED")
    rows = _q(db, "SELECT DISTINCT code, bot, site, hub_t FROM alarm WHERE state = ? AND code IN "
                  "(%s)" % ",".join("?" * len(values)), (raised,) + values)
    return len(rows)


def read_session(path):
    """The session's row; UsageError when the file is not a session store."""
    p = Path(path)
    if not p.is_file():
        raise UsageError("no such session file: %s" % path)
    try:
        db = sqlite3.connect("file:%s?mode=ro" % p.resolve(), uri=True)
    except sqlite3.Error as e:
        raise UsageError("cannot open %s: %s" % (path, e)) from None
    try:
        meta = _meta(db)
        if meta.get("format") != "nanohub-session":
            raise UsageError("%s is not a nanohub session (nanohub record writes them)" % path)
        fw = _q(db, "SELECT fw_major, fw_minor, fw_patch FROM hub_info ORDER BY t LIMIT 1")
        firmware = "%d.%d.%d" % fw[0] if fw else "unknown"
        treat = _q(db, "SELECT fields, records FROM command WHERE name = 'TREAT_START' "
                       "ORDER BY t LIMIT 1")
        plan = plan_label(*treat[0]) if treat else "none"
        truth = _q(db, "SELECT kind FROM truth_event")
        if truth or meta.get("trace_meta"):
            kinds = [k for (k,) in truth]
            nano = sum(1 for k in kinds if k in NANO_KINDS)
            adverse, source = len(kinds), "truth"
        else:
            ev = schema.enum_value("EV", "ADVERSE")
            audit = _q(db, "SELECT COUNT(*) FROM audit WHERE event = ?", (ev,))
            nano = adverse = audit[0][0] if audit else 0
            source = "audit" if _q(db, "SELECT 1 FROM audit LIMIT 1") else "none"
        return Session(str(path), float(meta.get("started_at") or 0.0), firmware, plan,
                       meta.get("bot_batch", "unknown"), nano, adverse,
                       _raised(db, _THROTTLE), _raised(db, _QUARANTINE), source)
    except sqlite3.DatabaseError as e:
        raise UsageError("%s is not a readable session store: %s" % (path, e)) from None
    finally:
        db.close()


def read_sessions(paths):
    """Every session, oldest first (by meta.started_at, then path)."""
    out = [read_session(p) for p in paths]
    out.sort(key=lambda s: (s.started_at, s.path))
    return out
