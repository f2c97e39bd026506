"""``nanohub watch``: a live terminal dashboard, or JSON lines of telemetry.

The dashboard is a ``rich.live`` screen redrawn about 5 times a second from
the hub's latest-value caches. Single keys act at once (the terminal is in
cbreak mode on POSIX, restored on exit whatever happens; ``msvcrt`` on Windows):
``p`` pause, ``r`` resume, ``e`` or space EMERGENCY STOP, ``q`` quit.
The connection keeps sending heartbeats the whole time.
"""
import os
import sys
import threading
import time

from ..errors import NanohubError
from .keyboard import Keys
from ..plan import site_name
from ..views import frame_dict, status_dict

REDRAW_S = 0.2
BOT_MARK = {"DOCKED": ".", "DEPLOYED": "o", "ACTIVE": "A", "RETURNING": "<",
            "QUARANTINED": "Q", "DISABLED": "X", "LOST": "?"}
STATE_STYLE = {"SAFE": "green", "ARMED": "cyan", "TREATING": "bold green",
               "PAUSED": "bold yellow", "ESTOP": "bold bright_white on red"}
PRIO_STYLE = {"HIGH": "bold red", "MEDIUM": "yellow", "LOW": "white"}


def streams(ctx):
    """True when ``run`` prints JSON lines (with --json or when piped), not the dashboard."""
    return ctx.json or not sys.stdout.isatty() or not sys.stdin.isatty()


def run(ctx, hub, duration=None):
    """The dashboard on a terminal; JSON lines with --json or when piped."""
    if streams(ctx):
        return stream(ctx, hub, duration)
    return Dashboard(hub).run(duration)


def stream(ctx, hub, duration=None):
    end = time.monotonic() + duration if duration else None
    sub = hub.subscribe()
    try:
        while end is None or time.monotonic() < end:
            wait = 0.5 if end is None else max(0.0, min(0.5, end - time.monotonic()))
            f = sub.get(wait)
            if f is not None:
                ctx.line(dict(frame_dict(f), time=round(time.time(), 3)))
    finally:
        hub.unsubscribe(sub)
    return 0


class Dashboard:
    def __init__(self, hub, out=None, inp=None):
        self.hub = hub
        self.out = out or sys.stdout
        self.inp = inp or sys.stdin
        self.message = ("connected to %s" % hub.url, "")
        self.estop_text = None
        self.busy = 0

    # ---------------------------------------------------------- terminal --

    def run(self, duration=None):
        from rich.live import Live

        from ..tui import console
        with Keys(self.inp) as keys, Live(console=console(self.out), screen=True,
                                          auto_refresh=False, redirect_stdout=False,
                                          redirect_stderr=False) as live:
            self._prime()
            self._loop(keys, live, duration)
        if self.estop_text:
            print(self.estop_text)
        st = self.hub.latest.get("HUB_STATUS")
        if st is not None:
            s = status_dict(st)
            print("watch ended: hub %s (%s)" % (s["state"], s["reason"]))
        return 0

    def _prime(self):
        for call in (self.hub.status, self.hub.alarms):
            try:
                call()
            except NanohubError as e:
                self.message = (str(e), "")

    def _loop(self, keys, live, duration):
        end = time.monotonic() + duration if duration else None
        while end is None or time.monotonic() < end:
            if self.hub.error is not None:
                raise self.hub.error
            live.update(self.screen(), refresh=True)
            key = keys.get(REDRAW_S)
            if key is None:
                continue
            if key in "qQ":
                return
            self.key(key)

    def key(self, key):
        if key in "eE ":
            self.message = ("EMERGENCY STOP sent: confirming each bot...", "bold red")
            self._act(self._estop)
        elif key in "pP":
            self.message = ("pausing...", "")
            self._act(lambda: ("paused: " + self.hub.pause().status, ""))
        elif key in "rR":
            self.message = ("resuming...", "")
            self._act(lambda: ("resumed: " + self.hub.resume().status, ""))

    def _estop(self):
        from ..views import estop_text
        result = self.hub.estop()
        self.estop_text = estop_text(result)
        return (self.estop_text, "bold green" if result.ok else "bold red")

    def _act(self, call):
        def work():
            self.busy += 1
            try:
                self.message = call()
            except NanohubError as e:
                self.message = (str(e), "bold red")
            finally:
                self.busy -= 1
        threading.Thread(target=work, daemon=True).start()

    # ------------------------------------------------------------ screen --

    def lines(self, rows=24):
        """The screen as (text, style) lines, newest values first."""
        hub = self.hub
        out = [[("nanohub watch", "bold"), ("  hub 0x%08x  %s  %s" % (
            hub.hub_id or 0, hub.url, time.strftime("%H:%M:%S")), "")]]
        f = hub.latest.get("HUB_STATUS")
        age = time.monotonic() - hub.last_rx if hub.last_rx else None
        link = ("link ok", "") if age is not None and age < 1.5 else \
            ("LINK SILENT %.1f s" % (age or 0), "bold red")
        if f is None:
            out.append([("waiting for hub status...   ", ""), link])
        else:
            s = status_dict(f)
            reason = "" if s["reason"] == "NONE" else "  reason: %s" % s["reason"]
            out.append([("STATE ", ""), (" %s " % s["state"], STATE_STYLE.get(s["state"], "")),
                        ("%s   " % reason, ""), link,
                        (", bot bus %d %%" % s["bus_link_percent"], "")])
            b = s["bots"]
            out.append([("bots  %d: " % b["total"] + "  ".join(
                "%s %d" % (k, b[k]) for k in ("docked", "deployed", "active", "returning",
                                              "quarantined", "disabled", "lost")), "")])
            d = s["dose"]
            sens = s["sens_permille"] / 1000
            fill = min(10, int(sens * 10))
            out.append([("dose  %d / %d udu (%.1f %%)  scale %d %%   sensitivity %.3f [%s]"
                         % (d["used"], d["cap"], d["percent"], s["scale_percent"], sens,
                            "#" * fill + "-" * (10 - fill)), "")])
            if s["failing_checks"]:
                out.append([("checks failing: " + ", ".join(s["failing_checks"]), "")])
        out.append([])
        out.append([("%-14s %6s %9s %7s %9s %9s" % ("site", "pH", "bacteria", "temp C",
                                                   "depth um", "dose"), "underline")])
        sites = [hub.site_table[k] for k in sorted(hub.site_table)]
        for r in sites[:max(1, rows // 3)]:
            out.append([("%-14s %6.2f %9.2f %7.2f %9d %9d" % (
                site_name(r["site"]), r["ph"], r["bacteria_log10"], r["temp_c"], r["depth_um"],
                r["dose"]), "bold red" if r["temp_c"] >= 41 else "")])
        if not sites:
            out.append([("(no plan sites yet)", "")])
        out.append([])
        alarms = [a for a in hub.alarm_table.values() if a["state"] != "CLEARED"]
        out.append([("alarms (%d)" % len(alarms), "underline")])
        for a in alarms[:5]:
            out.append([("%-6s %-16s %-7s bot %s site %s value %d" % (
                a["prio"], a["code"], a["state"], "-" if a["bot"] == 255 else a["bot"],
                "-" if a["site"] == 255 else a["site"], a["value"]),
                PRIO_STYLE.get(a["prio"], ""))])
        out.append([])
        bots = [hub.bot_table[k] for k in sorted(hub.bot_table)]
        marks = "".join(BOT_MARK.get(b["state"], "?") for b in bots)
        out.append([("swarm " + (marks or "(no bot states yet)"), "")])
        out.append([("      . docked  o deployed  A active  < returning  Q quarantined  "
                     "X disabled  ? lost", "")])
        out.append([])
        out.append([(" keys: p pause  r resume  e/space EMERGENCY STOP  q quit ", "reverse")])
        out.append([("> ", ""), self.message])
        return out

    def screen(self):
        from rich.text import Text
        try:
            rows = os.get_terminal_size(self.out.fileno()).lines
        except (OSError, ValueError):
            rows = 0
        rows = rows or 24                   # a pty nobody sized says 0x0
        text = Text(no_wrap=True, overflow="crop")
        for i, parts in enumerate(self.lines(rows)[:rows]):
            if i:
                text.append("\n")
            for part, style in parts:
                text.append(part, style=style or None)
        return text
