"""``nanohub record`` and ``nanohub report``: store a whole session, then show it.

    nanohub record --port URL -o session.db [--duration S] [--full]
    nanohub record --scenario presentation-night -o session.db
    nanohub report session.db -o report.html
    nanohub report a.db b.db -o compare.html

Other verbs record with ``--record FILE`` through
:func:`nanohub.host.cli.options.add_record_option` and :func:`maybe_recording`.
"""
import json
import os
import sys
import time
from contextlib import ExitStack, nullcontext
from pathlib import Path

from .options import FROM_SCENARIO, add_emulated_hub

FULL_RATES = (10, 25, 10)      # the hub's upper bounds: status, bots, sites (Hz)


def _epilog(p, *lines):
    p.epilog = "examples:\n" + "\n".join("  " + x for x in lines)


def _check_output(path, force):
    from ..errors import UsageError
    path = Path(path)
    if path.exists() and not force:
        raise UsageError("%s exists: a recording is evidence, so it is not overwritten (pass "
                         "--force, or choose another file)" % path)
    if not path.parent.is_dir():
        raise UsageError("cannot write %s: no directory %s" % (path, path.parent))
    return path


def maybe_recording(ctx, hub, args):
    """A context that records ``hub`` into ``args.record``, or does nothing."""
    path = getattr(args, "record", None)
    if not path:
        return nullcontext()
    from ..study.record import recording
    _check_output(path, False)
    return recording(hub, path, source=ctx.args.port or os.environ.get("NANOHUB_PORT"),
                     meta={"kind": "%s session" % args.verb})


# ------------------------------------------------------------------ record --

def setup_record(p):
    p.description = ("Record a whole session into one SQLite file: the hub's identity, every "
                     "telemetry frame decoded into tables, every command sent with its ACK, "
                     "the audit log (pulled at the end) and, for emulated sessions, the "
                     "simulator's ground truth. Stops at --duration, on Ctrl-C, or when the "
                     "link ends; what was recorded up to then stays readable.")
    p.add_argument("-o", "--output", required=True, metavar="FILE", help="session database")
    p.add_argument("--duration", type=float, metavar="S", help="stop after S seconds")
    p.add_argument("--rates", metavar="S,B,I", help="ask the hub for these telemetry rates (Hz): "
                   "status, bot states, site readings, e.g. 5,5,2")
    p.add_argument("--full", action="store_true", help="highest telemetry rates (%d,%d,%d Hz)"
                   % FULL_RATES)
    p.add_argument("--no-log", action="store_true", help="do not pull the audit log at the end")
    p.add_argument("--scenario", metavar="NAME", help="no port needed: run this scenario's "
                   "scripted session on an emulated hub and record it with the ground truth")
    add_emulated_hub(p, when="with --scenario", seed=FROM_SCENARIO, bots=FROM_SCENARIO)
    p.add_argument("--report", metavar="HTML", help="also write the report there")
    p.add_argument("--force", action="store_true", help="overwrite FILE")
    _epilog(p, "nanohub record --port /dev/ttyACM0 -o session.db",
            "nanohub record --port sim:scenario=runaway --full --duration 60 -o s.db",
            "nanohub record --scenario presentation-night -o crisis.db --report crisis.html")


def _rates(args):
    from ..errors import UsageError
    if args.full:
        return FULL_RATES
    if not args.rates:
        return None
    try:
        rates = tuple(int(x) for x in args.rates.split(","))
    except ValueError:
        rates = ()
    if len(rates) != 3 or min(rates) < 0:
        raise UsageError("--rates takes three numbers: status,bots,sites Hz (e.g. 5,5,2)")
    return rates


def run_record(ctx, args):
    out = _check_output(args.output, args.force)
    rates = _rates(args)
    if args.scenario:
        return _record_scenario(ctx, args, out)
    from ..errors import LinkError
    res = _record_port(ctx, args, out, rates)
    _finish(ctx, args, out, res)
    if res["ended"].startswith("link lost"):
        raise LinkError("%s; everything up to then is in %s" % (res["ended"], out))
    return 0


def _record_scenario(ctx, args, out):
    from nanohub.sim.scenario import ScenarioError
    from ..errors import UsageError
    from ..study.record import record_session

    def show(t, kind, text, data=None):
        if ctx.json:
            ctx.line({"t": round(t, 2), "kind": kind, "text": text})
        else:
            print("%6.1f s  %-9s %s" % (t, kind, text), flush=True)
    try:
        record_session(out, args.scenario, seed=args.seed, bots=args.bots, on_event=show)
    except ScenarioError as e:
        raise UsageError(str(e)) from None
    _finish(ctx, args, out, None)
    return 0


def _sim_options(url):
    from ..errors import UsageError
    options = {}
    for item in filter(None, url[4:].lstrip(":?").replace("&", ",").split(",")):
        name, sep, value = item.partition("=")
        if not sep or name not in ("bots", "scenario", "seed", "heap", "speed"):
            raise UsageError("bad --port %r: use sim or sim:bots=N,scenario=S,seed=N" % url)
        options[name] = value
    return options


def _record_port(ctx, args, out, rates):
    import tempfile
    from ..client import Hub
    from ..emulate.hub import EmulatedHub
    from ..errors import NanohubError
    from ..study.record import recording
    url = ctx.port_url()
    emu = trace = None
    key = ctx.key_arg()
    with ExitStack() as stack:
        if url == "sim" or url.startswith(("sim:", "sim?")):
            tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="nanohub-record-"))
            trace = Path(tmp) / "trace.jsonl.gz"
            t_sim = time.monotonic()
            emu = stack.enter_context(EmulatedHub(trace=trace, **_sim_options(url)))
            target, key = emu.url, key or emu.key_path
        else:
            target = url
        hub = Hub.open(target, key=key, timeout=ctx.args.timeout, baudrate=ctx.args.baud)
        ended = "complete"
        with hub:
            meta = {"kind": "recorded from a port", "port": url}
            if emu is not None:
                meta.update(scenario=str(emu.scenario), seed=str(emu.seed))
            with recording(hub, out, source=url, meta=meta,
                           pull_log=not args.no_log) as rec:
                t_rec = time.monotonic() - rec.clock()
                try:
                    _snapshot(hub, rates, rec)
                    _wait(hub, rec, args.duration, ctx.json)
                except KeyboardInterrupt:
                    rec.note("host", "recording stopped by the operator")
                    ended = rec.ended = "stopped by the operator"
                except NanohubError as e:
                    rec.note("host", "recording stopped: %s" % e)
                    ended = rec.ended = "stopped: %s" % e
                if hub.error is not None:
                    ended = "link lost: %s" % hub.error
        if emu is not None:
            emu.close()             # the gateway writes the ground truth on exit
            _add_trace(out, trace, (t_sim - t_rec, "simulator start ≈ emulator start (no "
                                    "command to align on; within a few hundred ms)"))
    return {"ended": ended}


def _snapshot(hub, rates, rec):
    """Rates, then one full picture: parameters, status, bots, sites, alarms."""
    from ..errors import NanohubError
    if rates:
        hub.set_rates(*rates)
    for what in (hub.params, hub.status, hub.bots, hub.sites, hub.alarms):
        try:
            what()
        except NanohubError as e:
            rec.note("host", "could not read %s at the start: %s" % (what.__name__, e))


def _wait(hub, rec, duration, quiet):
    end = time.monotonic() + duration if duration else None
    from contextlib import nullcontext

    from ..tui import status
    tty = sys.stderr.isatty() and not quiet
    last = 0.0
    with status("recording", sys.stderr) if tty else nullcontext() as line:
        while (end is None or time.monotonic() < end) and hub.error is None:
            time.sleep(0.1)
            if tty and time.monotonic() - last >= 1.0:
                last = time.monotonic()
                frames = sum(v for k, v in dict(rec.counts).items() if k.startswith("rx"))
                line.update("recording %6.0f s: %d frames, %d rows written" % (
                    rec.clock(), frames, rec.rows))


def _add_trace(out, trace, fallback):
    from nanohub.sim.world import load_trace
    from ..report.truth import add_trace_to
    try:
        tr = load_trace(trace)
    except (OSError, ValueError):
        return
    add_trace_to(out, tr, fallback)


def _finish(ctx, args, out, res):
    from ..report import db as report_db
    db = report_db.open_session(out)
    try:
        m = report_db.meta(db)
        counts = {k: report_db.count(db, k) for k in ("status", "bot_state", "site_reading",
                                                       "alarm", "command", "audit")}
    finally:
        db.close()
    obj = {"db": str(out), "ended": m.get("ended"), "duration_s": float(m.get("duration_s", 0)),
           "rows": counts, "audit": json.loads(m.get("audit_verify", "null"))}
    text = "recorded %.1f s into %s (%s): %s" % (
        obj["duration_s"], out, obj["ended"],
        ", ".join("%d %s" % (v, k.replace("_", " ")) for k, v in counts.items()))
    wal = Path(str(out) + "-wal")
    if wal.exists() and wal.stat().st_size:
        obj["journal"] = str(wal)
        text += ("\nnote: another process had %s open as the recording ended: the last rows are in "
                 "%s beside it (keep the two together); SQLite folds them into one file when it "
                 "is next opened alone" % (out, wal.name))
    if args.report:
        from ..report import render
        path, _ = render([out], args.report)
        obj["report"] = str(path)
        text += "\nreport: %s" % path
    ctx.emit(obj, text)


# ------------------------------------------------------------------ report --

def setup_report(p):
    p.description = ("Write one self-contained HTML report (figures embedded) from a recorded "
                     "session: summary, timeline of states, alarms and commands, lesion depth "
                     "and dose per site, sensitivity against its thresholds, bots by state, "
                     "faults and their containment, audit-log verification. Two files: the "
                     "sessions side by side.")
    p.add_argument("sessions", nargs="+", metavar="SESSION.db",
                   help="a recorded session, or two to compare")
    p.add_argument("-o", "--output", metavar="FILE.html",
                   help="where to write (default: next to the first session, .html)")
    p.add_argument("--title", help="the report's title")
    _epilog(p, "nanohub report session.db -o report.html",
            "nanohub report before.db after.db -o compare.html")


def run_report(ctx, args):
    import sqlite3
    from ..errors import UsageError
    from ..report import render
    if len(args.sessions) > 2:
        raise UsageError("report takes one session, or two to compare (got %d)"
                         % len(args.sessions))
    t = time.monotonic()
    try:
        path, datas = render(args.sessions, args.output, args.title)
    except sqlite3.DatabaseError as e:
        raise UsageError("cannot read the session database: %s" % e) from None
    from ..report.summary import rows
    ctx.emit({"report": str(path), "seconds": round(time.monotonic() - t, 2),
              "sessions": [{"db": str(d.path), "summary": [
                  {"item": i, "text": x, "level": lv} for i, x, lv in rows(d)]} for d in datas]},
             "report: %s" % path)
    return 0
