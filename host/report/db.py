"""The session database: one SQLite file per recorded session.

Shared by the recorder (:mod:`nanohub.host.study.record`) and the report
(:mod:`nanohub.host.report`). The schema is documented in
``docs/session-db.md``; ``SCHEMA_VERSION`` is stored in the ``meta`` table
(key ``schema_version``) and in ``PRAGMA user_version``. An older file is
migrated in place when opened (``MIGRATIONS``); a newer one is refused.

Times: ``t`` is seconds since the recording started (host monotonic clock,
REAL); ``meta.started_at`` is the wall-clock time of t = 0. ``hub_t`` is the
hub's own clock (ms since its boot). Enumerated columns hold the wire values;
the ``enum`` table names them (and the ``*_v`` views join the names in).
"""
import json
import sqlite3
from itertools import chain
from pathlib import Path

from nanohub.protocol import schema

from ..errors import UsageError

SCHEMA_VERSION = 4
FORMAT = "nanohub-session"

# (name, DDL). Tables keyed by time are either WITHOUT ROWID with t first in
# the primary key, or have an index on t.
TABLES = (
    ("meta", "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)"),
    ("enum", "CREATE TABLE enum (enum TEXT NOT NULL, value INTEGER NOT NULL, name TEXT NOT NULL,"
             " meaning TEXT, PRIMARY KEY (enum, value)) WITHOUT ROWID"),
    ("hub_info", "CREATE TABLE hub_info (t REAL NOT NULL, hub_id INTEGER, fw_major INTEGER,"
                 " fw_minor INTEGER, fw_patch INTEGER, board TEXT, schema INTEGER, caps INTEGER,"
                 " bots INTEGER, state INTEGER, boots INTEGER, reset_cause INTEGER,"
                 " keyed INTEGER, counter INTEGER, estop INTEGER)"),
    ("status", "CREATE TABLE status (t REAL NOT NULL, hub_t INTEGER, state INTEGER,"
               " reason INTEGER, bots INTEGER, docked INTEGER, deployed INTEGER, active INTEGER,"
               " \"returning\" INTEGER, quarantined INTEGER, disabled INTEGER, lost INTEGER,"
               " alarms INTEGER, unacked INTEGER, dose INTEGER, dose_cap INTEGER, sens INTEGER,"
               " scale INTEGER, link INTEGER, rx_bad INTEGER, checks INTEGER)"),
    ("bot_frame", "CREATE TABLE bot_frame (t REAL NOT NULL, first INTEGER, count INTEGER)"),
    ("bot_state", "CREATE TABLE bot_state (t REAL NOT NULL, bot INTEGER NOT NULL,"
                  " state INTEGER, site INTEGER, activity INTEGER, battery INTEGER,"
                  " health INTEGER, PRIMARY KEY (t, bot)) WITHOUT ROWID"),
    ("site_reading", "CREATE TABLE site_reading (t REAL NOT NULL, site INTEGER NOT NULL,"
                     " ph INTEGER, bacteria INTEGER, temp INTEGER, depth INTEGER, dose INTEGER,"
                     " PRIMARY KEY (t, site)) WITHOUT ROWID"),
    ("alarm", "CREATE TABLE alarm (t REAL NOT NULL, hub_t INTEGER, code INTEGER, prio INTEGER,"
              " state INTEGER, bot INTEGER, site INTEGER, value INTEGER)"),
    ("estop_report", "CREATE TABLE estop_report (t REAL NOT NULL, done INTEGER, total INTEGER,"
                     " confirmed INTEGER, unconfirmed INTEGER, pending TEXT)"),
    ("command", "CREATE TABLE command (id INTEGER PRIMARY KEY, t REAL NOT NULL, last_t REAL,"
                " req INTEGER, msg INTEGER, name TEXT, kind TEXT, fields TEXT, records TEXT,"
                " signed INTEGER, counter INTEGER, tries INTEGER, ack_t REAL,"
                " ack_status INTEGER, ack_reason INTEGER, ack_detail INTEGER)"),
    ("param", "CREATE TABLE param (t REAL NOT NULL, idx INTEGER, name TEXT, unit TEXT,"
              " value INTEGER, min INTEGER, max INTEGER, dflt INTEGER)"),
    ("audit", "CREATE TABLE audit (idx INTEGER PRIMARY KEY, hub_t INTEGER, event INTEGER,"
              " a INTEGER, b INTEGER, c INTEGER, chain BLOB, raw BLOB NOT NULL, t REAL)"),
    ("event", "CREATE TABLE event (t REAL NOT NULL, kind TEXT, text TEXT, data TEXT)"),
    ("frame_other", "CREATE TABLE frame_other (t REAL NOT NULL, dir TEXT, msg INTEGER,"
                    " name TEXT, seq INTEGER, fields TEXT)"),
    # the simulator's ground truth (emulated sessions only); sim_ms is the
    # simulator's clock, t the same instant on the recording's clock
    ("truth_bot", "CREATE TABLE truth_bot (t REAL NOT NULL, bot INTEGER NOT NULL,"
                  " sim_ms INTEGER, state INTEGER, site INTEGER, activity INTEGER,"
                  " dose INTEGER, battery INTEGER, flags INTEGER,"
                  " PRIMARY KEY (t, bot)) WITHOUT ROWID"),
    ("truth_site", "CREATE TABLE truth_site (t REAL NOT NULL, site INTEGER NOT NULL,"
                   " sim_ms INTEGER, depth INTEGER, temp INTEGER, ph INTEGER, bacteria INTEGER,"
                   " PRIMARY KEY (t, site)) WITHOUT ROWID"),
    ("truth_patient", "CREATE TABLE truth_patient (t REAL NOT NULL, sim_ms INTEGER,"
                      " sens INTEGER, nano_events INTEGER, pulp_rise INTEGER)"),
    ("truth_bot_change", "CREATE TABLE truth_bot_change (t REAL NOT NULL, sim_ms INTEGER,"
                         " bot INTEGER, state INTEGER, activity INTEGER, flags INTEGER)"),
    ("truth_fault", "CREATE TABLE truth_fault (t REAL NOT NULL, sim_ms INTEGER, edge TEXT,"
                    " idx INTEGER, kind TEXT, bots TEXT)"),
    ("truth_cmd", "CREATE TABLE truth_cmd (t REAL NOT NULL, sim_ms INTEGER, bot INTEGER,"
                  " op INTEGER, site INTEGER, rate INTEGER, lease INTEGER, heard INTEGER)"),
    ("truth_event", "CREATE TABLE truth_event (t REAL NOT NULL, sim_ms INTEGER, kind TEXT,"
                    " sens INTEGER)"),
    ("truth_other", "CREATE TABLE truth_other (t REAL NOT NULL, sim_ms INTEGER, kind TEXT,"
                    " data TEXT)"),
)

TIME_INDEXED = ("status", "bot_frame", "alarm", "estop_report", "command", "param", "event",
                "frame_other", "truth_patient", "truth_bot_change", "truth_fault", "truth_cmd",
                "truth_event", "truth_other")

VIEWS = (
    "CREATE VIEW status_v AS SELECT s.*, e.name AS state_name FROM status s"
    " LEFT JOIN enum e ON e.enum = 'HUB' AND e.value = s.state",
    "CREATE VIEW alarm_v AS SELECT a.t, a.hub_t, c.name AS code_name, p.name AS prio_name,"
    " st.name AS state_name, a.bot, a.site, a.value FROM alarm a"
    " LEFT JOIN enum c ON c.enum = 'ALARM' AND c.value = a.code"
    " LEFT JOIN enum p ON p.enum = 'PRIO' AND p.value = a.prio"
    " LEFT JOIN enum st ON st.enum = 'ALST' AND st.value = a.state",
    "CREATE VIEW bot_state_v AS SELECT b.*, e.name AS state_name FROM bot_state b"
    " LEFT JOIN enum e ON e.enum = 'BOT' AND e.value = b.state",
    "CREATE VIEW command_v AS SELECT c.id, c.t, c.name, c.kind, c.fields, c.tries,"
    " c.ack_t - c.t AS ack_after_s, s.name AS ack_status_name, w.name AS ack_reason_name,"
    " c.ack_detail FROM command c"
    " LEFT JOIN enum s ON s.enum = 'ACKS' AND s.value = c.ack_status"
    " LEFT JOIN enum w ON w.enum = 'WHY' AND w.value = c.ack_reason",
)


def _create_v1(db):
    for _, ddl in TABLES:
        db.execute(ddl)
    for name in TIME_INDEXED:
        db.execute("CREATE INDEX %s_t ON %s (t)" % (name, name))
    for ddl in VIEWS:
        db.execute(ddl)
    db.executemany("INSERT INTO enum VALUES (?, ?, ?, ?)",
                   [(e, v, n, m) for e, rows in schema.ENUMS.items() for n, v, m in rows])


def _loop_health_v2(db):
    """HUB_STATUS gained the loop's lateness and the frames lost to a host that
    did not read; the audit log gained EV_HOST_DROP."""
    for col in ("late_ms", "late_n", "host_lost"):
        db.execute("ALTER TABLE status ADD COLUMN %s INTEGER" % col)
    db.executemany("INSERT OR IGNORE INTO enum VALUES (?, ?, ?, ?)",
                   [(e, v, n, m) for e, rows in schema.ENUMS.items() for n, v, m in rows])


def _log_head_v3(db):
    """HUB_STATUS gained the audit log's next index and chain head (the keyed
    log: ``log verify`` checks a pulled file reaches that head)."""
    db.execute("ALTER TABLE status ADD COLUMN log_next INTEGER")
    db.execute("ALTER TABLE status ADD COLUMN log_head BLOB")
    db.executemany("INSERT OR IGNORE INTO enum VALUES (?, ?, ?, ?)",
                   [(e, v, n, m) for e, rows in schema.ENUMS.items() for n, v, m in rows])


def _host_us_v4(db):
    """HUB_STATUS gained what the host link's writes cost the loop (``host_us``)."""
    db.execute("ALTER TABLE status ADD COLUMN host_us INTEGER")


# MIGRATIONS[n] turns a version-n file into version n + 1 (0: an empty file)
MIGRATIONS = [_create_v1, _loop_health_v2, _log_head_v3, _host_us_v4]


class NotASessionDB(UsageError):
    """The file is not a nanohub session database (or one this release cannot read)."""


def _connect(path, timeout=5.0):
    db = sqlite3.connect(str(path), timeout=timeout, isolation_level=None,
                         check_same_thread=False)
    db.execute("PRAGMA foreign_keys = OFF")
    return db


def version_of(db):
    try:
        row = db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    except sqlite3.DatabaseError:
        return None
    return int(row[0]) if row else None


def migrate(db, target=None):
    """Bring ``db`` to ``target`` (default: this release's version) in one transaction
    per step; returns the number of steps run."""
    target = SCHEMA_VERSION if target is None else target
    have = version_of(db) or 0
    if have > SCHEMA_VERSION:
        raise NotASessionDB("this session database has schema version %d; this nanohub reads up "
                            "to %d: install a newer nanohub" % (have, SCHEMA_VERSION))
    steps = 0
    while have < target:
        db.execute("BEGIN IMMEDIATE")
        try:
            MIGRATIONS[have](db)
            have += 1
            db.execute("INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)", (str(have),))
            db.execute("INSERT OR REPLACE INTO meta VALUES ('format', ?)", (FORMAT,))
            db.execute("PRAGMA user_version = %d" % have)
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        steps += 1
    return steps


def create(path):
    """A new session database (WAL journal while recording)."""
    path = Path(path)
    if path.parent and not path.parent.exists():
        raise UsageError("cannot write %s: directory %s does not exist" % (path, path.parent))
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(str(path) + suffix).unlink(missing_ok=True)
    db = _connect(path)
    db.execute("PRAGMA journal_mode = WAL")
    db.execute("PRAGMA synchronous = NORMAL")
    migrate(db)
    return db


def open_session(path):
    """Open a recorded session for reading (migrating an older file in place)."""
    path = Path(path)
    if not path.is_file():
        raise UsageError("no such session database: %s" % path)
    with open(path, "rb") as f:
        head = f.read(16)
    if head != b"SQLite format 3\0":
        raise NotASessionDB("%s is not a nanohub session database (not SQLite)" % path)
    db = _connect(path)
    try:
        fmt = db.execute("SELECT value FROM meta WHERE key = 'format'").fetchone()
    except sqlite3.DatabaseError:
        fmt = None
    if not fmt or fmt[0] != FORMAT:
        db.close()
        raise NotASessionDB("%s is not a nanohub session database (no nanohub meta table)" % path)
    try:
        migrate(db)
    except BaseException:
        db.close()
        raise
    return db


def meta(db):
    return {k: v for k, v in db.execute("SELECT key, value FROM meta")}


def meta_json(db, key, default=None):
    row = db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
    return json.loads(row[0]) if row else default


def columns(db, sql, params=(), names=None):
    """Bulk read of numeric columns: {column: float64 numpy array}.

    Rows stream straight into one numpy buffer (no per-row Python lists).
    NULL becomes NaN.
    """
    import numpy as np
    cur = db.execute(sql, params)
    names = names or [d[0] for d in cur.description]
    k = len(names)
    flat = np.fromiter((float("nan") if v is None else v for v in chain.from_iterable(cur)),
                       dtype=np.float64)
    arr = flat.reshape(-1, k) if k else flat
    return {n: arr[:, i] for i, n in enumerate(names)}


def count(db, table):
    return db.execute("SELECT count(*) FROM %s" % table).fetchone()[0]


class Batch:
    """Rows of one recorder flush, by table, written in one transaction."""

    SQL_UPDATE = {
        "ack": "UPDATE command SET ack_t = ?, ack_status = ?, ack_reason = ?, ack_detail = ?"
               " WHERE id = ? AND ack_t IS NULL",
        "retry": "UPDATE command SET tries = ?, last_t = ? WHERE id = ?",
    }

    def __init__(self):
        self.tables = {}
        self.updates = {}
        self.meta = {}

    def add(self, table, row):
        self.tables.setdefault(table, []).append(row)

    def extend(self, table, rows):
        self.tables.setdefault(table, []).extend(rows)

    def update(self, kind, row):
        self.updates.setdefault(kind, []).append(row)

    def write(self, db, last_t):
        n = 0
        db.execute("BEGIN")
        try:
            for table, rows in self.tables.items():
                if not rows:
                    continue
                verb = "INSERT OR REPLACE" if table == "audit" else "INSERT"
                db.executemany("%s INTO %s VALUES (%s)" % (verb, table,
                                                           ",".join("?" * len(rows[0]))), rows)
                n += len(rows)
            for kind, rows in self.updates.items():
                db.executemany(self.SQL_UPDATE[kind], rows)
            self.meta["last_batch_t"] = repr(last_t)
            db.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)", list(self.meta.items()))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return n
