"""SITL board on a terminal: the unix port with the console as the host link.

Like a real board: the hub owns stdin/stdout (``kbd_intr(-1)``), so the host
reaches it through whatever terminal the process has: a pseudo-terminal
made by socat or Python's pty, which pyserial opens like a USB port. This is
what ``nanohub flash --board unix`` installs and starts over a PTY.

    micropython main.py --board unix_tty --store nanohub --hub-id 1
        [--bus 127.0.0.1:7701]

Bot bus: optional, a TCP connection out to the swarm gateway (reconnects).
No watchdog (the socket ``unix`` board has one); the reset cause is POWER.
Host writes never block: the terminal is switched to O_NONBLOCK and
``Console.write`` polls for room first, then keeps what a short write left
(``hub.hostout``). Polling alone is not enough on a Linux PTY: at the edge
of its buffer it reports room, takes part of a frame and then sleeps until
the other side reads. The unix port has no ``fcntl``; ``dd oflag=nonblock``
run with the hub's stdout sets the flag on the open terminal they share (it
stays set after the hub exits, as for any program that sets it).
"""
import select
import socket

from boards.base import BaseBoard
from boards.console import Console
from hub import wire
from hub.compat import ticks_diff, ticks_ms
from hub.frame import Views
from hub.store import Store

_RECONNECT_MS = 500


def _nonblocking_stdout():
    """O_NONBLOCK on the terminal behind stdout; True if it was set."""
    import os
    try:
        return os.system("dd if=/dev/null count=0 oflag=nonblock 2>/dev/null") == 0
    except (OSError, AttributeError):
        return False            # no shell: POLLOUT before each write still guards most of it


class Board(BaseBoard):
    name = "unix_tty"

    def __init__(self, bus=None, store="hubdata", console=None):
        self._store = Store(store)
        # a tty that reports POLLOUT takes a whole frame (pty: below its 64 KB
        # limit; UART: under 256 bytes queued of 4 KB): write frames in one piece
        self.nonblocking = False
        if console is None:
            self.nonblocking = _nonblocking_stdout()
        self._con = console if console is not None else Console(chunk=wire.MAX_WIRE)
        self._poll = select.poll()
        self._con.register(self._poll)
        self._bus_addr = None
        if bus:
            host, port = bus.rsplit(":", 1)
            self._bus_addr = socket.getaddrinfo(host, int(port))[0][-1]
        self._bus = None
        self._bus_try = 0
        self._wbuf = None
        self._wviews = None

    def wait(self, ms):
        for _ in self._poll.ipoll(ms):
            break

    def store(self):
        return self._store

    def stopping(self):
        return self._con.eof    # the terminal hung up: nobody can reach the hub

    def close(self):
        self._con.close()

    # --------------------------------------------------------------- links --
    def host_session(self):
        return 1

    def host_connected(self):
        return True

    def host_read(self, buf):
        return self._con.read(buf)

    def host_write(self, buf, off, n):
        return self._con.write(buf, off, n)

    def bus_read(self, buf):
        if self._bus is None:
            self._connect()
            if self._bus is None:
                return 0
        try:
            n = self._bus.readinto(buf)
        except OSError:
            n = 0
        if n is None:
            return 0
        if n == 0:
            self._drop()
        return n

    def bus_write(self, buf, n):
        if self._bus is None:
            return
        if buf is not self._wbuf:
            self._wbuf = buf
            self._wviews = Views(buf)     # one view per frame length: no garbage per write
        try:
            self._bus.write(self._wviews.view(n))   # a short write loses a frame: COBS resyncs
        except OSError:
            self._drop()

    def _connect(self):
        if self._bus_addr is None:
            return
        now = ticks_ms()
        if self._bus_try and ticks_diff(now, self._bus_try) < _RECONNECT_MS:
            return
        self._bus_try = now
        s = socket.socket()
        try:
            s.connect(self._bus_addr)
        except OSError:
            s.close()
            return
        s.setblocking(False)
        self._bus = s
        self._poll.register(s, select.POLLIN)

    def _drop(self):
        try:
            self._poll.unregister(self._bus)
        except (OSError, ValueError):
            pass
        self._bus.close()
        self._bus = None
