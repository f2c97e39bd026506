"""Record a whole session into a SQLite session database.

    rec = Recorder("session.db", source="socket://...")
    tap(hub, rec.on_frame)          # every frame the host sends and receives
    ...
    rec.close()

``tap`` hooks a connected :class:`~nanohub.host.client.Hub`: each frame it
receives, each frame it sends, its identity (``"info"``) and the end of the
link (``"closed"`` or ``"lost"``) reach ``on_frame(direction, item)``. The
callback only stamps and queues (it runs on the link's reader thread); a
writer thread decodes the queue into rows and writes them with
``executemany`` in one transaction every ``flush_s`` (0.5 s). A recorder
killed in the middle leaves every batch committed before it readable (WAL
journal); a clean close folds the journal back into the one file.

``record_session`` records a scripted emulated session (:func:`run_session`)
including the simulator's ground truth. Schema: :mod:`nanohub.host.report.db`.
"""
import json
import os
import platform
import sqlite3
import threading
import time
from contextlib import contextmanager
from pathlib import Path

from nanohub.protocol import auditlog, model, schema

from ..report import db as report_db
from ..errors import NanohubError
from .tap import tap
from ..simport import HEAP

HEARTBEATS = ("HEARTBEAT",)
_LOG_FMT = auditlog.FMT


# -------------------------------------------------------------- recorder --

def _jsonable(v):
    if isinstance(v, (bytes, bytearray)):
        return bytes(v).hex()
    return v


def _fields_json(fields):
    return json.dumps({k: _jsonable(v) for k, v in fields.items()}, separators=(",", ":"))


class RecordError(NanohubError):
    """Writing the session database failed (disk full, file removed...)."""


class Recorder:
    """Writes one session database; thread-safe ``on_frame``; ``close`` when done."""

    def __init__(self, path, source="", meta=None, flush_s=0.5):
        self.path = str(path)
        self.flush_s = flush_s
        self.db = report_db.create(path)
        self._dblock = threading.Lock()
        self._qlock = threading.Lock()
        self._flushlock = threading.Lock()
        self._queue = []
        self._t0 = time.monotonic()
        self._last_t = 0.0
        self._next_id = 1
        self._pending = {}          # (req, msg) -> (command id, tries)
        self.first_tx = {}          # command name -> t of its first send
        self.counts = {}            # "rx NAME" / "tx NAME" -> frames
        self.rows = 0
        self.batches = 0
        self.error = None
        self.closed = False
        self.wal_kept = None            # why the journal could not be folded at close, if so
        self.hub_info = None
        self.ended = None           # set to say why the recording ended (else the caller's)
        started = time.time()
        info = {"created_at": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(started)),
                "started_at": repr(started), "source": source,
                "nanohub_version": _version(), "schema_fingerprint": "0x%08x" % model.FINGERPRINT,
                "host": "%s %s, Python %s" % (platform.system(), platform.machine(),
                                              platform.python_version()),
                "recorder_pid": str(os.getpid()), "flush_s": repr(flush_s)}
        for k, v in (meta or {}).items():
            info[k] = v if isinstance(v, str) else json.dumps(v, default=str)
        self._write_meta(info)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="nanohub-recorder", daemon=True)
        self._thread.start()

    # ------------------------------------------------------------ input --

    def clock(self):
        return time.monotonic() - self._t0

    def on_frame(self, direction, item, t=None):
        """Queue one frame (or link event); cheap, safe from any thread."""
        with self._qlock:
            if t is None:
                t = time.monotonic() - self._t0
            if t <= self._last_t:
                t = self._last_t + 1e-6        # strictly increasing: (t, bot) keys stay unique
            self._last_t = t
            self._queue.append((t, direction, item))

    def note(self, kind, text, data=None, t=None):
        """A host-side event (operator action, session note) on the timeline."""
        self.on_frame("note", (kind, text, data), t)

    # ----------------------------------------------------------- writing --

    def _run(self):
        while not self._stop.wait(self.flush_s):
            self.flush()

    def flush(self):
        """Write everything queued so far in one transaction."""
        with self._flushlock:       # one flush at a time: decoding keeps state
            with self._qlock:
                items, self._queue = self._queue, []
            if not items or self.error is not None:
                return 0
            b = report_db.Batch()
            for t, direction, item in items:
                self._decode(b, t, direction, item)
            try:
                with self._dblock:
                    n = b.write(self.db, items[-1][0])
            except Exception as e:      # disk full, file removed: say so at close
                self.error = e
                return 0
            self.rows += n
            self.batches += 1
            return n

    def _count(self, key):
        self.counts[key] = self.counts.get(key, 0) + 1

    def _decode(self, b, t, direction, item):
        if direction == "rx":
            self._count("rx " + item.name)
            self._rx(b, t, item)
        elif direction == "tx":
            self._count("tx " + item.name)
            self._tx(b, t, item)
        elif direction == "note":
            kind, text, data = item
            b.add("event", (t, kind, text, None if data is None else json.dumps(data, default=str)))
        elif direction == "info":
            self._info(b, t, item)
        elif direction in ("closed", "lost"):
            b.add("event", (t, "link", "link %s%s" % (
                direction, ": %s" % item if direction == "lost" and item else ""), None))
            if direction == "lost":
                b.meta["link_lost"] = str(item)

    def _info(self, b, t, info):
        i = dict(info)
        self.hub_info = i
        board = i.get("board", "")
        if isinstance(board, (bytes, bytearray)):
            board = bytes(board).split(b"\0", 1)[0].decode("ascii", "replace")
        b.add("hub_info", (t, i.get("hub_id"), i.get("fw_major"), i.get("fw_minor"),
                           i.get("fw_patch"), board, i.get("schema"), i.get("caps"),
                           i.get("bots"), i.get("state"), i.get("boots"), i.get("reset_cause"),
                           i.get("keyed"), i.get("counter"), i.get("estop")))
        if i.get("hub_id") is not None:
            b.meta["hub_id"] = "0x%08x" % i["hub_id"]

    def _rx(self, b, t, f):
        name, x = f.name, f.fields
        if name == "HUB_STATUS":
            b.add("status", (t, x["t"], x["state"], x["reason"], x["bots"], x["docked"],
                             x["deployed"], x["active"], x["returning"], x["quarantined"],
                             x["disabled"], x["lost"], x["alarms"], x["unacked"], x["dose"],
                             x["dose_cap"], x["sens"], x["scale"], x["link"], x["rx_bad"],
                             x["checks"], x["late_ms"], x["late_n"], x["host_lost"],
                             x["log_next"], bytes(x["log_head"]), x["host_us"]))
        elif name == "BOT_STATES":
            first = x["first"]
            b.add("bot_frame", (t, first, x["count"]))
            b.extend("bot_state", [(t, first + i, r["state"], r["site"], r["activity"],
                                    r["battery"], r["health"]) for i, r in enumerate(f.records)])
        elif name == "SITE_READINGS":
            b.extend("site_reading", [(t, r["site"], r["ph"], r["bacteria"], r["temp"],
                                       r["depth"], r["dose"]) for r in f.records])
        elif name == "ALARM":
            b.add("alarm", (t, x["t"], x["code"], x["prio"], x["state"], x["bot"], x["site"],
                            x["value"]))
        elif name == "ESTOP_REPORT":
            from ..views import bitmap_ids
            b.add("estop_report", (t, x["done"], x["total"], x["confirmed"], x["unconfirmed"],
                                   json.dumps(bitmap_ids(x["pending"]))))
        elif name == "ACK":
            hit = self._pending.get((x["req"], x["cmd"]))
            if hit is None:
                b.add("frame_other", (t, "rx", f.msg, name, f.seq, _fields_json(x)))
            else:
                b.update("ack", (t, x["status"], x["reason"], x["detail"], hit[0]))
        elif name == "HELLO_REPLY":
            self._info(b, t, x)
        elif name == "PARAM_VALUE":
            from ..views import text
            b.add("param", (t, x["index"], text(x["name"]), text(x["unit"]), x["value"],
                            x["min"], x["max"], x["default"]))
        elif name == "LOG_CHUNK":
            import struct
            for r in f.records:
                raw = struct.pack(_LOG_FMT, *(r[n] for n in auditlog.NAMES))
                b.add("audit", (r["index"], r["t"], r["event"], r["a"], r["b"], r["c"],
                                bytes(r["chain"]), raw, t))
            b.meta["audit_first"] = str(x["first"])
            b.meta["audit_next"] = str(x["next"])
        elif name not in HEARTBEATS:
            b.add("frame_other", (t, "rx", f.msg, name, f.seq, _fields_json(x)))

    def _tx(self, b, t, f):
        name = f.name
        if name in HEARTBEATS:
            return
        key = (f.seq, f.msg)
        hit = self._pending.get(key)
        if hit is not None:                 # the same request re-sent: a retry
            cid, tries = hit
            self._pending[key] = (cid, tries + 1)
            b.update("retry", (tries + 1, t, cid))
            return
        cid = self._next_id
        self._next_id += 1
        self._pending[key] = (cid, 1)
        if len(self._pending) > 4096:
            del self._pending[next(iter(self._pending))]
        self.first_tx.setdefault(name, t)
        kind = ("command" if name in schema.COMMANDS else "read" if name in schema.READS
                else "session")
        records = None
        if f.records:
            records = json.dumps([dict(r) for r in f.records] if isinstance(f.records, list)
                                 else bytes(f.records).hex())
        b.add("command", (cid, t, t, f.seq, f.msg, name, kind, _fields_json(f.fields), records,
                          1 if f.tag is not None else 0, f.counter, 1, None, None, None, None))

    # ------------------------------------------------------------ finish --

    def _write_meta(self, items):
        with self._dblock:
            self.db.execute("BEGIN")
            self.db.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)",
                                [(k, str(v)) for k, v in items.items()])
            self.db.execute("COMMIT")

    def set_meta(self, **items):
        self._write_meta({k: v if isinstance(v, str) else json.dumps(v, default=str)
                          for k, v in items.items()})

    def add_trace(self, trace):
        """Store the simulator's ground-truth trace, aligned to the recording's clock."""
        self.flush()
        from ..report.truth import store_trace
        with self._dblock:
            return store_trace(self.db, trace, self.first_tx)

    def verify_log(self):
        recs = [{"index": i, "t": t, "event": e, "a": a, "b": b, "c": c, "chain": ch}
                for i, t, e, a, b, c, ch in self.db.execute(
                    "SELECT idx, hub_t, event, a, b, c, chain FROM audit ORDER BY idx")]
        res = auditlog.verify(recs)
        return {"ok": res.ok, "count": res.count, "first_index": res.first_index,
                "last_index": res.last_index, "bad_index": res.bad_index,
                "reason": res.reason, "anchored": res.anchored, "text": str(res)}

    def close(self, ended="complete", link_stats=None):
        """Final flush, summary meta, one self-contained file. Idempotent."""
        if self.closed:
            return
        self._stop.set()
        self._thread.join(5.0)
        self.flush()
        self.closed = True
        try:
            with self._dblock:
                verify = self.verify_log()
            self._write_meta({
                "ended": ended, "closed_at": repr(time.time()),
                "duration_s": repr(self._last_t), "batches": str(self.batches),
                "rows": str(self.rows), "frames": json.dumps(self.counts, sort_keys=True),
                "link_stats": json.dumps(link_stats or {}, default=str),
                "audit_verify": json.dumps(verify)})
            with self._dblock:
                self._fold_journal()
        finally:
            self.db.close()
        if self.error is not None:
            raise RecordError("recording to %s failed: %s" % (self.path, self.error))

    def _fold_journal(self):
        """Fold the WAL journal back into the one file. While another process reads
        the database (a report being written, ``sqlite3`` at a prompt) SQLite keeps
        it in WAL mode: every row is committed and, checkpointed, in the database
        file, and the switch back happens at the next lone open; ``self.wal_kept``
        says so instead of failing the recording."""
        try:
            self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            self.db.execute("PRAGMA journal_mode = DELETE")
        except sqlite3.OperationalError as e:
            if "locked" not in str(e) and "busy" not in str(e):
                raise
            self.wal_kept = ("another process has %s open: the recording is complete, left in "
                             "WAL mode until it is next opened alone" % self.path)

    def __enter__(self):
        return self

    def __exit__(self, kind, exc, tb):
        self.close("complete" if kind is None else "error: %s" % (exc or kind.__name__))


def _version():
    try:
        from importlib.metadata import version
        return version("nanohub")
    except Exception:
        return "unknown"


# ------------------------------------------------------ a connected hub --

@contextmanager
def recording(hub, path, source=None, meta=None, pull_log=True, progress=None):
    """Record everything on ``hub`` while the block runs (``--record FILE``).

    On the way out the audit log is pulled (when the link still works) so
    that the database holds it, and the file is closed; the reason the
    recording ended (done, Ctrl-C, link lost, error) goes into ``meta.ended``.
    """
    rec = Recorder(path, source=source or hub.url, meta=meta)
    untap = tap(hub, rec.on_frame)
    ended = "complete"
    try:
        yield rec
    except KeyboardInterrupt:
        ended = "stopped by the operator (interrupt)"
        raise
    except BaseException as e:
        ended = "error: %s" % (e or type(e).__name__)
        raise
    finally:
        try:
            if pull_log and hub.error is None:
                try:
                    hub.log_pull(progress=progress)
                except NanohubError as e:
                    rec.note("log", "audit log pull failed: %s" % e)
        finally:
            untap()
            ended = rec.ended or ended
            if hub.error is not None and not hub.closed:
                ended = "link lost: %s" % hub.error
            rec.close(ended, link_stats={"rx_frames": hub.rx_frames, "sent": hub.sent,
                                         "rx_errors": dict(hub.decoder.errors)})


# ----------------------------------------------------- scripted sessions --

def record_session(path, scenario="presentation-night", seed=None, bots=None, heap=HEAP,
                   on_event=None, flush_s=0.5, **kw):
    """:func:`run_session`, recorded into ``path`` with the ground truth; returns the Session."""
    from .session import outcome, run_session
    from nanohub.sim.scenario import load
    sc = load(scenario)
    rec = Recorder(path, source="emulated", flush_s=flush_s, meta={
        "scenario": sc.name, "seed": str(sc.seed if seed is None else seed),
        "scenario_description": (sc.description or "").strip(), "kind": "scripted session"})
    offset = []

    def note(t, kind, text, data=None):
        if not offset:
            offset.append(rec.clock() - t)      # the session's clock, on ours
        rec.note(kind, text, t=t + offset[0])
        if on_event is not None:                # one clock: the recording's, as in the report
            on_event(t + offset[0], kind, text, data)
    try:
        s = run_session(scenario, seed=seed, bots=bots, heap=heap, on_event=note,
                        on_frame=rec.on_frame, **kw)
    except BaseException as e:
        rec.close("error: %s" % (e or type(e).__name__))
        raise
    try:
        if s.trace is not None:
            rec.add_trace(s.trace)
        rec.set_meta(sim_outcome=outcome(s))
    finally:
        rec.close("complete")
    return s


def demo_paths(record=None, out=None):
    """(database, report) paths for a demo: next to ``record`` when given, else in
    ``out``, else in a fresh ``nanohub-demo-YYYYmmdd-HHMMSS`` directory here."""
    if record:
        db = Path(record)
        return db, db.with_suffix(".html")
    if out:
        folder = Path(out)
    else:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        folder = Path("nanohub-demo-" + stamp)
        n = 1
        while folder.exists():                  # two demos in the same second
            n += 1
            folder = Path("nanohub-demo-%s-%d" % (stamp, n))
    folder.mkdir(parents=True, exist_ok=True)
    return folder / "session.db", folder / "report.html"


def write_report(db, html, stream, json_out=False, datas=None):
    """Render the report of a recorded session and say where it is."""
    from ..report import render
    path, _ = render([db], html, datas=datas)
    if json_out:
        stream.write(json.dumps({"report": str(path), "db": str(db)}) + "\n")
    else:
        stream.write("Session report: %s\n  (recorded session: %s; nanohub report shows it "
                     "again)\n" % (path.resolve(), Path(db).resolve()))
    stream.flush()
    return path
