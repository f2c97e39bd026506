"""Read a session database into what the report shows (bulk reads with numpy).

``load(path)`` returns a :class:`SessionData`: arrays of the telemetry, the
commands with their ACKs, the plan, thresholds, the audit log verified
again, the ground truth where there is one, and the summary rows.
Nothing here reads a per-bot table whole: the per-bot state chart samples at
most ``HEATMAP_COLUMNS`` BOT_STATES frames.
"""
import json
from pathlib import Path

from nanohub.protocol import auditlog, facts, schema

from . import db as report_db, truth as report_truth

HEATMAP_COLUMNS = 600
HUB = {v: n for n, v, _ in schema.ENUMS["HUB"]}
ALARM = {v: n for n, v, _ in schema.ENUMS["ALARM"]}
PRIO = {v: n for n, v, _ in schema.ENUMS["PRIO"]}
ALST = {v: n for n, v, _ in schema.ENUMS["ALST"]}
ACKS = {v: n for n, v, _ in schema.ENUMS["ACKS"]}
WHY = {v: n for n, v, _ in schema.ENUMS["WHY"]}
BOT_NAMES = [n for n, _, _ in schema.ENUMS["BOT"]]
STATUS_BOTS = tuple(n.lower() for n in BOT_NAMES)   # HUB_STATUS's count per bot state


def firmware_defaults():
    """{name: default} of the hub's parameter table (the schema's, which the firmware's is generated from)."""
    return {p[1]: p[3] for p in facts.PARAMS}


class SessionData:
    def __init__(self, path):
        self.path = Path(path)
        self.name = self.path.name
        db = self.db = report_db.open_session(path)
        try:
            self._load(db)
        finally:
            db.close()

    # ---------------------------------------------------------------- load --

    def _load(self, db):
        import numpy as np
        self.meta = report_db.meta(db)
        m = self.meta
        self.interrupted = "closed_at" not in m
        self.ended = m.get("ended") or "interrupted: the recorder stopped without closing"
        info = db.execute("SELECT * FROM hub_info ORDER BY t LIMIT 1").fetchone()
        cols = [d[0] for d in db.execute("SELECT * FROM hub_info LIMIT 0").description]
        self.hub = dict(zip(cols, info)) if info else {}
        cols = [d[0] for d in db.execute("SELECT * FROM status LIMIT 0").description
                if d[0] != "log_head"]                  # bytes: not a numeric column
        self.st = report_db.columns(db, "SELECT %s FROM status ORDER BY t" % ", ".join(
            '"%s"' % c for c in cols))
        st = self.st
        ends = [float(m.get(k)) for k in ("duration_s", "last_batch_t") if m.get(k)]
        self.duration = max(ends + [float(st["t"][-1]) if len(st["t"]) else 0.0])
        self.hub_offset = self._hub_offset()
        self.alarms = [(t, ALARM.get(c, str(c)), PRIO.get(p, str(p)), ALST.get(s, str(s)), b, si, v)
                       for t, c, p, s, b, si, v in db.execute(
                           "SELECT t, code, prio, state, bot, site, value FROM alarm ORDER BY t")]
        self.commands = [dict(zip(("id", "t", "req", "msg", "name", "kind", "fields", "records",
                                   "signed", "tries", "ack_t", "ack_status", "ack_reason",
                                   "ack_detail"), r))
                         for r in db.execute(
                             "SELECT id, t, req, msg, name, kind, fields, records, signed, tries,"
                             " ack_t, ack_status, ack_reason, ack_detail FROM command ORDER BY t")]
        for c in self.commands:
            c["status"] = ACKS.get(c["ack_status"], "no ACK" if c["kind"] == "command" else "")
            c["reason"] = WHY.get(c["ack_reason"], "")
        self.events = db.execute("SELECT t, kind, text FROM event ORDER BY t").fetchall()
        self.estops = db.execute("SELECT t, done, total, confirmed, unconfirmed, pending "
                                 "FROM estop_report ORDER BY t").fetchall()
        self._plan()
        self._params(db)
        self.sites = {}
        sr = report_db.columns(db, "SELECT site, t, depth, dose, temp FROM site_reading "
                                   "ORDER BY site, t")
        for s in np.unique(sr["site"]).astype(int):
            sel = sr["site"] == s
            self.sites[int(s)] = {k: sr[k][sel] for k in ("t", "depth", "dose", "temp")}
        self._bots(db)
        self._audit(db)
        self.truth = report_truth.summary(db)
        self.faults = report_truth.faults(db) if self.truth else []
        self._log_detection()
        if self.truth:
            self.truth_patient = report_db.columns(
                db, "SELECT t, sens FROM truth_patient ORDER BY t")
            self.truth_sites = {}
            ts = report_db.columns(db, "SELECT site, t, depth FROM truth_site ORDER BY site, t")
            for s in np.unique(ts["site"]).astype(int):
                sel = ts["site"] == s
                self.truth_sites[int(s)] = {"t": ts["t"][sel], "depth": ts["depth"][sel]}
            self.truth_events = db.execute("SELECT t, kind, sens FROM truth_event "
                                           "ORDER BY t").fetchall()
            self.truth_changes = db.execute("SELECT t, bot, state, activity FROM "
                                            "truth_bot_change ORDER BY t").fetchall()
        self.frames = json.loads(m.get("frames") or "{}")
        self.counts = {k: report_db.count(db, k) for k in (
            "status", "bot_state", "site_reading", "alarm", "command", "audit", "event")}
        if not self.frames:     # interrupted: count from the tables
            self.frames = {"rows " + k: v for k, v in self.counts.items()}

    def _hub_offset(self):
        """recording t - hub_t / 1000, the smallest seen before any hub reboot."""
        t, h = self.st["t"], self.st["hub_t"]
        if not len(t):
            return None
        import numpy as np
        back = np.nonzero(np.diff(h) < 0)[0]
        n = back[0] + 1 if len(back) else len(t)
        return float(np.min(t[:n] - h[:n] / 1000.0))

    def hub_time(self, hub_ms):
        return None if self.hub_offset is None else self.hub_offset + hub_ms / 1000.0

    def _plan(self):
        self.plan = None
        for c in self.commands:
            if c["name"] == "TREAT_START" and c["status"] in ("ACCEPTED", "DONE"):
                f = json.loads(c["fields"])
                f["sites"] = json.loads(c["records"] or "[]")
                f["t"] = c["t"]
                self.plan = f
        self.targets = {s["site"]: s["target"] for s in (self.plan or {}).get("sites", [])}

    def _params(self, db):
        rows = db.execute("SELECT name, value FROM param ORDER BY t").fetchall()
        self.params = {n: v for n, v in rows}
        self.params_source = "recorded from the hub" if rows else None
        if not rows:
            self.params = firmware_defaults()
            self.params_source = ("firmware defaults (the session did not read the hub's "
                                  "parameters)") if self.params else None

    def _bots(self, db):
        import numpy as np
        ft = report_db.columns(db, "SELECT t FROM bot_frame WHERE first = 0 ORDER BY t")["t"]
        self.bot_times = np.array([])
        self.bot_matrix = None
        if not len(ft):
            return
        pick = ft if len(ft) <= HEATMAP_COLUMNS else ft[np.linspace(
            0, len(ft) - 1, HEATMAP_COLUMNS).round().astype(int)]
        nbots = int(self.hub.get("bots") or 0) or int(
            db.execute("SELECT max(bot) + 1 FROM bot_state").fetchone()[0] or 0)
        mat = np.full((nbots, len(pick)), np.nan)
        index = {float(t): i for i, t in enumerate(pick)}
        db.execute("CREATE TEMP TABLE pick (t REAL PRIMARY KEY)")
        db.executemany("INSERT INTO pick VALUES (?)", [(float(t),) for t in pick])
        # a frame batch holds bots first..; later batches of the same sweep follow within 50 ms
        got = report_db.columns(db, "SELECT p.t, b.bot, b.state FROM pick p JOIN bot_state b "
                                    "ON b.t >= p.t AND b.t < p.t + 0.05")
        for t, b, s in zip(got["t"], got["bot"].astype(int), got["state"]):
            if b < nbots:
                mat[b, index[float(t)]] = s
        self.bot_times, self.bot_matrix = pick, mat

    def _audit(self, db):
        rows = db.execute("SELECT idx, hub_t, event, a, b, c, chain, raw FROM audit "
                          "ORDER BY idx").fetchall()
        self.audit_pulled_t = db.execute("SELECT max(t) FROM audit").fetchone()[0] or 0.0
        self.audit = [{"index": i, "t": t, "event": e, "a": a, "b": b, "c": c, "chain": ch,
                       "raw": raw} for i, t, e, a, b, c, ch, raw in rows]
        raw = b"".join(r["raw"] for r in self.audit)
        self.audit_result = auditlog.verify(auditlog.parse_records(raw)) if self.audit else None
        self.audit_flags = _audit_flags(self)

    def _log_detection(self):
        """A fault's first hub reaction may only be in the audit log (telemetry lost)."""
        from .sections import PER_BOT_ALARMS, log_text
        for f in self.faults:
            if not f["bots"] or "contained_s" not in f:
                continue
            for r in self.log_window():
                ev, t = auditlog.event_name(r["event"]), self.hub_time(r["t"])
                bot = r["a"] if ev == "BOT" else r["b"] if ev == "ALARM" and ALARM.get(
                    r["a"]) in PER_BOT_ALARMS else None
                if bot in f["bots"] and t >= f["t"]:
                    if f.get("detected_s") is None or t - f["t"] < f["detected_s"]:
                        f["detected_s"] = t - f["t"]
                        f["detected_by"] = "hub log: " + log_text(r)
                    break

    # ------------------------------------------------------------ derived --

    def state_changes(self):
        """[(t, state, reason)]: from the audit log's STATE records when the pulled log
        covers the recording (exact, and complete through telemetry gaps), else from
        the HUB_STATUS stream. ``self.states_from`` says which."""
        t, s, r = self.st["t"], self.st["state"], self.st["reason"]
        tele = []
        for i in range(len(t)):
            key = (HUB.get(int(s[i]), "?"), ALARM.get(int(r[i]), ""))
            if not tele or tele[-1][1:] != key:
                tele.append((float(t[i]),) + key)
        self.states_from = "hub telemetry"
        log = [(self.hub_time(x["t"]), x) for x in self.log_window()
               if auditlog.event_name(x["event"]) == "STATE"]
        if not tele or not self.audit or self.audit_pulled_t < t[-1] - 5:
            return tele
        self.states_from = "the hub's audit log (exact times), telemetry before it"
        out = [tele[0]]
        for when, x in log:
            if when > out[-1][0]:
                out.append((when, HUB.get(x["a"], "?"), ALARM.get(x["c"], "")))
        return out

    def state_segments(self):
        """[(t0, t1, state name, reason name)] covering the recording."""
        ch = self.state_changes()
        ends = [c[0] for c in ch[1:]] + [max(self.duration, ch[-1][0] if ch else 0)]
        return [(c[0], e, c[1], c[2]) for c, e in zip(ch, ends)]

    def log_window(self):
        """Audit records of this recording's boot, from just before the recording on."""
        if self.hub_offset is None:
            return []
        boot = max((i for i, r in enumerate(self.audit)
                    if auditlog.event_name(r["event"]) == "BOOT"), default=0)
        return [r for r in self.audit[boot:] if self.hub_time(r["t"]) >= -60.0]

    def gaps(self, min_s=1.0):
        """[(t0, t1)] where no HUB_STATUS arrived for much longer than usual."""
        import numpy as np
        t = self.st["t"]
        if len(t) < 3:
            return []
        d = np.diff(t)
        lim = max(min_s, 5 * float(np.median(d)))
        return [(float(t[i]), float(t[i + 1])) for i in np.nonzero(d > lim)[0]]

    def operator_commands(self):
        return [c for c in self.commands if c["kind"] == "command"]

    def raised(self):
        return [a for a in self.alarms if a[3] == "RAISED"]

    def thresholds(self):
        p = self.params
        return [(v / 1000.0, label) for v, label in (
            (p.get("sens_throttle"), "throttle"), (p.get("sens_pause"), "pause")) if v]


def _audit_flags(d):
    """[(level, hub record or None, text)]: what the audit log says that matters."""
    out = []
    res = d.audit_result
    if res is None:
        return [("warn", None, "no audit log in this recording (it was not pulled)")]
    if not res.ok:
        out.append(("bad", None, "chain does not verify: %s" % res))
    elif not res.anchored:
        out.append(("warn", None, "the log starts at record %s (older records rotated out): "
                                  "its first record is the trust root" % res.first_index))
    sent = {(c["msg"], c["req"]) for c in d.commands}
    boot = max((i for i, r in enumerate(d.audit) if auditlog.event_name(r["event"]) == "BOOT"),
               default=0)
    from .sections import log_text
    for i, r in enumerate(d.audit):
        ev = auditlog.event_name(r["event"])
        text = log_text(r)
        during = i >= boot and (d.hub_time(r["t"]) or -1) >= 0
        if ev in ("CMD", "REJECT") and during and (r["a"], r["b"]) not in sent:
            out.append(("warn", r, text + "  [not sent by this recording's host]"))
            continue
        if ev == "ADVERSE":
            out.append(("bad", r, text))
        elif ev == "TORN":
            out.append(("warn", r, text))
        elif ev == "REJECT":
            why = schema.enum_name("WHY", r["c"])
            out.append(("bad" if why.startswith("AUTH") else "warn", r, text))
        elif ev == "ESTOP":
            out.append(("warn", r, text))
        elif ev == "ESTOP_DONE":
            out.append(("warn" if r["b"] else "ok", r, text))
        elif ev == "BOOT" and r["a"] != schema.enum_value("RESET", "POWER"):
            out.append(("warn", r, text))
        elif ev == "ALARM":
            out.append(("info", r, text))
        elif ev in ("KEY", "PARAM", "RX_BAD"):
            out.append(("info", r, text))
    return out


def load(path):
    return SessionData(path)
