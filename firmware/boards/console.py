"""The host link on the board's console, and the base of the MCU boards.

On a board the host link is the console the REPL uses (USB CDC or a UART):
the hub takes it over while it runs. ``micropython.kbd_intr(-1)`` first, or a
0x03 byte inside a frame would raise KeyboardInterrupt; ``close`` gives
Ctrl-C back. Reads poll stdin and take one byte at a time: a bare-metal
stdin ``readinto`` blocks until the buffer is full. Writes never block either:
a console write waits while the host has the port open but does not read
(USB CDC), and a terminal's write sleeps once the kernel's buffer is full. So
each write first polls the output for POLLOUT and writes at most ``chunk``
bytes: a size the port takes whole once it reports room (a USB packet on a
board; on a Linux tty POLLOUT means room for at least a frame).

``ConsoleBoard`` is a board whose host link is that console (the MCU
boards, and ``unix_tty`` on a terminal). ``McuBoard`` adds the rest from
``machine``, wired by the board module's ``WIRING`` dict: the bot bus on a
second UART, the watchdog (started at the first feed, so a slow boot such as
a long audit-log check cannot cause a reset loop), the reset cause mapped to
``wire.RESET_*``, a status LED blinking at 1 Hz while the loop runs, and the
store on the board filesystem. Nothing touches hardware at import time.

``WIRING`` keys: ``bus_uart`` (None: no bot bus wired; the bots then read as
LOST, the hub stays SAFE), ``bus_baud``, ``bus_rxbuf``, ``bus_txbuf``;
``bus_tx``/``bus_rx`` are GPIO numbers where the port lets pins be chosen
(rp2), None keeps the UART's fixed pins; ``led`` is a ``machine.Pin`` name
(None: no LED); ``store`` is the absolute directory of the hub's files on the
board filesystem (the module's ``STORE``, where ``nanohub flash`` writes
``hub.key``); ``wdt_ms`` is the watchdog timeout, started at the first feed.
A board lists what differs from ``MCU_WIRING``; a variant changes numbers
there, not code.
"""
import select
import sys

from boards.base import BaseBoard
from hub import wire
from hub.compat import ticks_diff, ticks_ms
from hub.frame import Views
from hub.store import Store

_POLLIN = select.POLLIN
_POLLOUT = select.POLLOUT
_BLINK_MS = 500
_CHUNK = 64             # a full-speed USB packet
_WRITES = 16            # chunks per call at most: a fast link is still a bounded step


class Console:
    """Frames over stdin/stdout (or any pollable stream pair given)."""

    def __init__(self, inp=None, out=None, poll_with=None, chunk=_CHUNK):
        import micropython
        self._kbd = micropython.kbd_intr
        self._kbd(-1)
        self._in = inp if inp is not None else sys.stdin.buffer
        self._out = out if out is not None else sys.stdout.buffer
        self._src = poll_with if poll_with is not None else (inp if inp is not None else sys.stdin)
        self.poll = select.poll()
        self.poll.register(self._src, _POLLIN)
        self._wpoll = select.poll()
        self._wpoll.register(out if out is not None else sys.stdout, _POLLOUT)
        self._chunk = chunk
        self._one = bytearray(1)
        self.eof = False

    def register(self, poll):
        """Also wake ``poll`` (a board's wait) on console input."""
        poll.register(self._src, _POLLIN)

    def ready(self):
        for _, ev in self.poll.ipoll(0):
            if ev & _POLLIN:
                return True
            self.eof = True     # hang-up or error without data
        return False

    def read(self, buf):
        one = self._one
        n = 0
        cap = len(buf)
        while n < cap and self.ready():
            r = self._in.readinto(one)
            if not r:
                if r == 0:
                    self.eof = True
                break
            buf[n] = one[0]
            n += 1
        return n

    def writable(self):
        for _, ev in self._wpoll.ipoll(0):
            return bool(ev & _POLLOUT)
        return False

    def write(self, buf, off, n):
        """Up to ``n`` bytes of ``buf`` from ``off``, as far as the output
        has room now; returns the count written (0: no room)."""
        done = 0
        chunk = self._chunk
        out = self._out
        for _ in range(_WRITES):
            if done >= n or not self.writable():
                break
            k = n - done
            if k > chunk:
                k = chunk
            try:
                w = out.write(buf, off + done, k)
            except OSError:
                break           # nobody listening: the caller keeps the frame, never waits
            if not w:
                break
            done += w
            if w < k:
                break
        return done

    def close(self):
        self._kbd(3)


def reset_cause(machine):
    """machine.reset_cause() as wire.RESET_* (unknown causes count as HARD)."""
    c = machine.reset_cause()
    if c == getattr(machine, "WDT_RESET", -100):
        return wire.RESET_WATCHDOG
    if c == getattr(machine, "PWRON_RESET", -100):
        return wire.RESET_POWER
    if c == getattr(machine, "SOFT_RESET", -100):
        return wire.RESET_SOFT
    return wire.RESET_HARD


class ConsoleBoard(BaseBoard):
    """A board whose host link is the console: one host, always there."""

    def __init__(self, store, console):
        self._store = Store(store)
        self._con = console
        self._poll = select.poll()
        self._con.register(self._poll)

    def wait(self, ms):
        for _ in self._poll.ipoll(ms):
            break

    def store(self):
        return self._store

    def close(self):
        """Give the console back to the REPL."""
        self._con.close()

    def host_session(self):
        return 1                # one console; a new host says HELLO again

    def host_connected(self):
        return True

    def host_read(self, buf):
        return self._con.read(buf)

    def host_write(self, buf, off, n):
        return self._con.write(buf, off, n)


# what a board's WIRING does not say: the bot bus at 460800 Bd into a 2 KB
# receive buffer, a 2 s watchdog
MCU_WIRING = {"bus_uart": None, "bus_baud": 460800, "bus_rxbuf": 2048, "wdt_ms": 2000}


class McuBoard(ConsoleBoard):
    """A microcontroller board: console host link, UART bot bus, machine.WDT."""

    name = "mcu"
    wiring = None

    def __init__(self, wiring=None, console=None):
        import machine
        self._m = machine
        w = dict(MCU_WIRING)
        w.update(wiring if wiring is not None else self.wiring)
        self.wiring = w
        self._cause = reset_cause(machine)
        ConsoleBoard.__init__(self, w["store"], console if console is not None else Console())
        self._uart = self._open_uart(machine, w)
        self._led = None
        if w.get("led") is not None:
            try:
                self._led = machine.Pin(w["led"], machine.Pin.OUT)
            except (ValueError, TypeError, OSError):
                self._led = None     # no such pin on this variant: run without
        self._wdt = None
        self._wdt_ms = w["wdt_ms"]
        self._blink = ticks_ms()
        self._lit = False
        self._wbuf = None
        self._wviews = None

    @staticmethod
    def _open_uart(machine, w):
        uid = w.get("bus_uart")
        if uid is None:
            return None
        kw = {"baudrate": w["bus_baud"], "timeout": 0}
        if w.get("bus_rxbuf"):
            kw["rxbuf"] = w["bus_rxbuf"]
        if w.get("bus_txbuf"):
            kw["txbuf"] = w["bus_txbuf"]
        if w.get("bus_tx") is not None:
            kw["tx"] = machine.Pin(w["bus_tx"])
            kw["rx"] = machine.Pin(w["bus_rx"])
        return machine.UART(uid, **kw)

    # ------------------------------------------------------------- system --
    def wdt_feed(self):
        if self._wdt is None:
            self._wdt = self._m.WDT(timeout=self._wdt_ms)
        self._wdt.feed()
        now = ticks_ms()
        if ticks_diff(now, self._blink) >= _BLINK_MS:
            self._blink = now
            self.led(not self._lit)

    def reset_cause(self):
        return self._cause

    def led(self, on):
        self._lit = bool(on)
        if self._led is not None:
            self._led.value(1 if on else 0)

    # ------------------------------------------------- bot bus (the UART) --
    def bus_read(self, buf):
        u = self._uart
        if u is None:
            return 0
        n = u.any()
        if not n:
            return 0
        if n > len(buf):
            n = len(buf)
        return u.readinto(buf, n) or 0

    def bus_write(self, buf, n):
        u = self._uart
        if u is None:
            return
        if buf is not self._wbuf:
            self._wbuf = buf
            self._wviews = Views(buf)     # one view per frame length: no garbage per write
        u.write(self._wviews.view(n))


def boot_escape(ms, inp=None):
    """Give the REPL back if Ctrl-C comes three times in a row within ``ms``.

    ``main.py`` calls this before the hub takes the console, so a board can be
    reflashed (``nanohub flash --wait 10``, then reset it). Three in a row,
    read with Ctrl-C disabled: a stray 0x03 (a host already sending frames
    during boot) cannot stop the hub. Other bytes are dropped. True: stay in
    the REPL (Ctrl-C works again); False: Ctrl-C stays off for the hub.
    """
    import micropython
    from hub.compat import ticks_add
    src = inp if inp is not None else sys.stdin
    stream = inp if inp is not None else sys.stdin.buffer
    micropython.kbd_intr(-1)
    p = select.poll()
    p.register(src, _POLLIN)
    one = bytearray(1)
    run = 0
    end = ticks_add(ticks_ms(), ms)
    while ticks_diff(end, ticks_ms()) > 0:
        if not p.poll(10):
            continue
        if not stream.readinto(one):
            continue
        run = run + 1 if one[0] == 3 else 0
        if run >= 3:
            micropython.kbd_intr(3)
            return True
    return False          # Ctrl-C stays off: the hub takes the console next
