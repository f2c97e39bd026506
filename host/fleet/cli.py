"""``nanohub fleet status|watch|estop|pull-logs``: every chair of a clinic at once.

The clinic file comes from ``--clinic FILE`` or ``$NANOHUB_CLINIC``; each
chair's hub is reached through its own port URL (``--port`` is not used).
"""
import os
import sys
import time

from . import ops
from .clinic import load_clinic

SHORT = (("active", "act"), ("deployed", "dep"), ("docked", "dock"), ("returning", "ret"),
         ("quarantined", "quar"), ("disabled", "dis"), ("lost", "lost"))


def setup_fleet(p):
    p.add_argument("--clinic", "-c", metavar="FILE",
                   help="clinic file (TOML, one [[chair]] per hub; default: $NANOHUB_CLINIC)")
    sub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    sub.add_parser("status", help="one table: every hub's state, reason, bots, alarms, link")
    w = sub.add_parser("watch", help="the same table, refreshed live (JSON lines with --json)")
    w.add_argument("--interval", type=float, default=1.0, metavar="S",
                   help="seconds between refreshes (default 1)")
    w.add_argument("--duration", type=float, metavar="S",
                   help="stop after S seconds (default: until Ctrl-C)")
    e = sub.add_parser("estop", help="EMERGENCY STOP every hub at once and confirm every bot")
    e.add_argument("--wait", type=float, default=5.0, metavar="S",
                   help="seconds to wait for each hub's confirmation (default 5)")
    pl = sub.add_parser("pull-logs", help="pull and verify every hub's audit log into DIR")
    pl.add_argument("dir", help="folder: one sub-folder per chair, and index.json")
    pl.add_argument("--deadline", type=float, default=300.0, metavar="S",
                    help="give up on a hub still pulling after S seconds (default 300)")
    p.epilog = (
        "examples:\n"
        "  nanohub fleet --clinic clinic.toml status\n"
        "  NANOHUB_CLINIC=clinic.toml nanohub fleet watch\n"
        "  nanohub fleet estop\n"
        "  nanohub fleet pull-logs logs/2026-12-02\n\n"
        "clinic.toml:\n"
        "  [[chair]]\n  name = \"chair-1\"\n  port = \"socket://10.0.0.11:7000\"\n\n"
        "fleet estop needs no key. It exits 0 only when every hub confirms every bot\n"
        "disabled; otherwise 1, naming each hub and its unconfirmed bots, and the hubs\n"
        "it could not reach. status and pull-logs exit 3 when a hub cannot be reached.")


def clinic_path(args):
    from ..errors import UsageError
    path = getattr(args, "clinic", None) or os.environ.get("NANOHUB_CLINIC")
    if not path:
        raise UsageError("no clinic file: pass --clinic FILE or set NANOHUB_CLINIC")
    return path


def run_fleet(ctx, args):
    chairs = load_clinic(clinic_path(args))
    targets = ops.resolve(chairs, ctx.stack, args.timeout)
    return {"status": _status, "watch": _watch, "estop": _estop,
            "pull-logs": _pull_logs}[args.action](ctx, args, targets)


# ------------------------------------------------------------------ table --

def _cells(cells, red):
    """Row cells as rich markup: escaped, and bold red for a hub that needs eyes."""
    from rich.markup import escape
    cells = [escape(str(c)) for c in cells]
    return ["[bold red]%s[/]" % c for c in cells] if red else cells


def _print_red(text):
    """One line, bold red on a terminal, plain when piped."""
    from ..tui import console
    console().print(text, style="bold red", markup=False, highlight=False)
    sys.stdout.flush()


def _bots(b):
    parts = ["%s %d" % (short, b[k]) for k, short in SHORT if b.get(k)]
    return "%d: %s" % (b["total"], " ".join(parts) or "-")


def table(results, tty=False):
    """One row per chair; an unreached hub, a stopped one or an unacknowledged HIGH
    alarm in red (colour only on a terminal: ``tui`` plain-texts piped output)."""
    from ..tui import table as _table
    rows = []
    for r in results:
        d = r.data
        if not r.reached or "state" not in d:
            rows.append(_cells((r.name, "-", "UNREACHED", r.error or "no answer", "", "", ""),
                               True))
            continue
        alarms = "%d" % d["alarms"]["active"]
        if d["alarms"]["unacked_high"]:
            alarms += " (%d HIGH)" % d["alarms"]["unacked_high"]
        link = "bus %d %%, %d bad" % (d["bus_link_percent"], d["rx_bad"])
        red = d["state"] == "ESTOP" or bool(d["alarms"]["unacked_high"])
        rows.append(_cells((r.name, d["hub_id"][2:], d["state"], d["reason"], _bots(d["bots"]),
                            alarms, link), red))
    stream = sys.stdout if tty else _Plain()
    return _table(("chair", "hub", "state", "reason", "bots", "alarms", "link"), rows,
                  stream=stream)


class _Plain:
    """A stream that is not a terminal: the table comes out as plain text."""

    def isatty(self):
        return False

    def write(self, text):
        return len(text)

    def flush(self):
        pass


# ------------------------------------------------------------------ verbs --

def _status(ctx, args, targets):
    results = ops.status_all(targets, timeout=args.timeout, baud=args.baud)
    unreached = [r for r in results if not r.reached]
    if ctx.json:
        print(_json({"ok": not unreached, "chairs": [r.to_dict() for r in results]}), flush=True)
    else:
        print(table(results, sys.stdout.isatty()), flush=True)
    if unreached:
        print("nanohub: fleet status: could not reach %d of %d hubs: %s" % (
            len(unreached), len(results), ", ".join(r.name for r in unreached)),
            file=sys.stderr, flush=True)
        return 3
    return 0


def _watch(ctx, args, targets):
    end = time.monotonic() + args.duration if args.duration else None
    tty = sys.stdout.isatty() and not ctx.json
    with ops.Watcher(targets, interval=args.interval, timeout=args.timeout,
                     baud=args.baud) as watcher:
        deadline = time.monotonic() + args.timeout * ops.OPEN_RETRIES + ops.MARGIN_S
        while not watcher.fresh() and time.monotonic() < deadline:
            time.sleep(0.05)
        while True:
            rows = watcher.rows()
            if ctx.json:
                ctx.line({"time": round(time.time(), 3), "chairs": [r.to_dict() for r in rows]})
            elif tty:
                from ..tui import console
                out = console()
                out.clear()
                out.print(time.strftime("%H:%M:%S  ") + "nanohub fleet watch (Ctrl-C quits)",
                          markup=False)
                sys.stdout.write(table(rows, True) + "\n")
                sys.stdout.flush()
            else:
                print(time.strftime("%H:%M:%S") + "\n" + table(rows) + "\n", flush=True)
            left = None if end is None else end - time.monotonic()
            if left is not None and left <= 0:
                return 0
            time.sleep(args.interval if left is None else min(args.interval, left))


def _estop(ctx, args, targets):
    from ..errors import CheckFailed
    results = ops.estop_all(targets, wait=args.wait, timeout=args.timeout, baud=args.baud)
    ok, text = ops.estop_verdict(results)
    data = {"chairs": [r.to_dict() for r in results], "hubs": len(results),
            "confirmed_hubs": sum(1 for r in results if r.reached and r.data.get("ok")),
            "unreached": [r.name for r in results if not r.reached],
            "unconfirmed": {r.name: r.data.get("unconfirmed", [])
                            for r in results if r.reached and not r.data.get("ok")}}
    if not ctx.json:
        for r in results:
            if r.reached and r.data.get("ok"):
                print("%-12s confirmed: all %d bots disabled (%.2f s)" % (
                    r.name, r.data["total"], r.elapsed_s), flush=True)
            else:
                _print_red("%-12s %s" % (r.name, r.error))
    if not ok:
        raise CheckFailed(text, data)
    ctx.emit(data, text)


def _pull_logs(ctx, args, targets):
    results = ops.pull_logs_all(targets, args.dir, timeout=args.timeout, baud=args.baud,
                                deadline=args.deadline)
    if not ctx.json:
        for r in results:
            if r.reached and not r.error:
                d = r.data
                print("%-12s %s: %d records (%d new), verified" % (
                    r.name, d["file"], d["records"], d["added"]), flush=True)
            else:
                _print_red("%-12s %s" % (r.name, r.error))
    ops.raise_for(results, "fleet pull-logs")
    ctx.emit({"dir": args.dir, "index": os.path.join(args.dir, "index.json"),
              "chairs": [r.to_dict() for r in results]},
             "%d audit logs pulled and verified; index: %s" % (
                 len(results), os.path.join(args.dir, "index.json")))


def _json(obj):
    import json
    return json.dumps(obj, default=str)
