"""``nanohub watch``: a live terminal dashboard, or JSON lines of telemetry.

Plain ANSI, no curses: the screen is redrawn about 5 times a second from the
hub's latest-value caches, and the terminal is in cbreak mode (restored on
exit, whatever happens) so that single keys act at once:
``p`` pause, ``r`` resume, ``e`` or space EMERGENCY STOP, ``q`` quit.
The connection keeps sending heartbeats the whole time.
"""
import os
import select
import sys
import threading
import time

from .errors import NanohubError
from .plan import site_name
from .views import frame_dict, status_dict

REDRAW_S = 0.2
BOT_MARK = {"DOCKED": ".", "DEPLOYED": "o", "ACTIVE": "A", "RETURNING": "<",
            "QUARANTINED": "Q", "DISABLED": "X", "LOST": "?"}
STATE_COLOR = {"SAFE": "32", "ARMED": "36", "TREATING": "1;32", "PAUSED": "1;33",
               "ESTOP": "1;41;97"}
PRIO_COLOR = {"HIGH": "1;31", "MEDIUM": "33", "LOW": "37"}


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


def _c(code, text):
    return "\x1b[%sm%s\x1b[0m" % (code, text)


class Dashboard:
    def __init__(self, hub, out=None, inp=None):
        self.hub = hub
        self.out = out or sys.stdout
        self.inp = inp or sys.stdin
        self.message = "connected to %s" % hub.url
        self.estop_text = None
        self.busy = 0

    # ---------------------------------------------------------- terminal --

    def run(self, duration=None):
        import termios
        import tty
        fd = self.inp.fileno()
        saved = termios.tcgetattr(fd)
        try:
            tty.setcbreak(fd)
            self.out.write("\x1b[?1049h\x1b[?25l")
            self._prime()
            self._loop(fd, duration)
        finally:
            self.out.write("\x1b[0m\x1b[?25h\x1b[?1049l")
            self.out.flush()
            termios.tcsetattr(fd, termios.TCSADRAIN, saved)
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
                self.message = str(e)

    def _loop(self, fd, duration):
        end = time.monotonic() + duration if duration else None
        while end is None or time.monotonic() < end:
            if self.hub.error is not None:
                raise self.hub.error
            self.draw()
            ready, _, _ = select.select([fd], [], [], REDRAW_S)
            if ready:
                key = os.read(fd, 1).decode("latin-1")
                if key in "qQ":
                    return
                self.key(key)

    def key(self, key):
        if key in "eE ":
            self.message = _c("1;31", "EMERGENCY STOP sent: confirming each bot...")
            self._act(self._estop)
        elif key in "pP":
            self.message = "pausing..."
            self._act(lambda: "paused: " + self.hub.pause().status)
        elif key in "rR":
            self.message = "resuming..."
            self._act(lambda: "resumed: " + self.hub.resume().status)

    def _estop(self):
        from .cli_hub import estop_text
        result = self.hub.estop()
        self.estop_text = estop_text(result)
        return _c("1;32" if result.ok else "1;31", self.estop_text)

    def _act(self, call):
        def work():
            self.busy += 1
            try:
                self.message = call()
            except NanohubError as e:
                self.message = _c("1;31", str(e))
            finally:
                self.busy -= 1
        threading.Thread(target=work, daemon=True).start()

    # ------------------------------------------------------------ screen --

    def lines(self, cols=80, rows=24):
        hub = self.hub
        out = ["%s  hub 0x%08x  %s  %s" % (_c("1", "nanohub watch"), hub.hub_id or 0, hub.url,
                                           time.strftime("%H:%M:%S"))]
        f = hub.latest.get("HUB_STATUS")
        age = time.monotonic() - hub.last_rx if hub.last_rx else None
        link = "link ok" if age is not None and age < 1.5 else _c("1;31", "LINK SILENT %.1f s"
                                                                   % (age or 0))
        if f is None:
            out.append("waiting for hub status...   %s" % link)
        else:
            s = status_dict(f)
            state = _c(STATE_COLOR.get(s["state"], "0"), " %s " % s["state"])
            reason = "" if s["reason"] == "NONE" else "  reason: %s" % s["reason"]
            out.append("STATE %s%s   %s, bot bus %d %%" % (state, reason, link,
                                                        s["bus_link_percent"]))
            b = s["bots"]
            out.append("bots  %d: " % b["total"] + "  ".join(
                "%s %d" % (k, b[k]) for k in ("docked", "deployed", "active", "returning",
                                              "quarantined", "disabled", "lost")))
            d = s["dose"]
            sens = s["sens_permille"] / 1000
            bar = "#" * min(10, int(sens * 10)) + "-" * (10 - min(10, int(sens * 10)))
            out.append("dose  %d / %d udu (%.1f %%)  scale %d %%   sensitivity %.3f [%s]"
                       % (d["used"], d["cap"], d["percent"], s["scale_percent"], sens, bar))
            if s["failing_checks"]:
                out.append("checks failing: " + ", ".join(s["failing_checks"]))
        out.append("")
        out.append(_c("4", "%-14s %6s %9s %7s %9s %9s" % ("site", "pH", "bacteria", "temp C",
                                                          "depth um", "dose")))
        sites = [hub.site_table[k] for k in sorted(hub.site_table)]
        for r in sites[:max(1, rows // 3)]:
            hot = r["temp_c"] >= 41
            line = "%-14s %6.2f %9.2f %7.2f %9d %9d" % (site_name(r["site"]), r["ph"],
                                                        r["bacteria_log10"], r["temp_c"],
                                                        r["depth_um"], r["dose"])
            out.append(_c("1;31", line) if hot else line)
        if not sites:
            out.append("(no plan sites yet)")
        out.append("")
        alarms = [a for a in hub.alarm_table.values() if a["state"] != "CLEARED"]
        out.append(_c("4", "alarms (%d)" % len(alarms)))
        for a in alarms[:5]:
            out.append(_c(PRIO_COLOR.get(a["prio"], "0"), "%-6s %-16s %-7s bot %s site %s value %d"
                          % (a["prio"], a["code"], a["state"],
                             "-" if a["bot"] == 255 else a["bot"],
                             "-" if a["site"] == 255 else a["site"], a["value"])))
        out.append("")
        bots = [hub.bot_table[k] for k in sorted(hub.bot_table)]
        marks = "".join(BOT_MARK.get(b["state"], "?") for b in bots)
        out.append("swarm " + (marks or "(no bot states yet)"))
        out.append("      . docked  o deployed  A active  < returning  Q quarantined  "
                   "X disabled  ? lost")
        out.append("")
        out.append(_c("7", " keys: p pause  r resume  e/space EMERGENCY STOP  q quit "))
        out.append("> " + self.message)
        return out

    def draw(self):
        try:
            size = os.get_terminal_size(self.out.fileno())
            cols, rows = size.columns, size.lines
        except (OSError, ValueError):
            cols, rows = 0, 0
        cols, rows = cols or 80, rows or 24         # a pty nobody sized says 0x0
        lines = self.lines(cols, rows)[:rows]
        self.out.write("\x1b[H" + "\x1b[K\n".join(lines) + "\x1b[K\x1b[J")
        self.out.flush()
