"""SITL board: the MicroPython unix port with sockets for links.

The host link is a TCP server (pyserial opens it as ``socket://HOST:PORT``)
with one client at a time, like the serial port it stands for: a new
connection waits in the listen queue until the current one closes, so a
second client can never take the link from the first (``nanohub serve``
shares one link between many clients). Its socket is non-blocking: a client
that stops reading costs frames (``hub.hostout``), never a wait. The bot bus
connects out to the swarm gateway and reconnects if it drops
(``boards/tcpbus.py``). Storage is a directory. The watchdog is a
thread that kills the process when the loop stops feeding it, after writing
the reset cause that the next boot reads, as a hardware watchdog would.
"""
import os
import select
import socket
import time

from boards.base import BaseBoard
from boards.tcpbus import TcpBus, addr, forget, recv_into
from hub import wire
from hub.compat import ticks_diff, ticks_ms
from hub.store import Store

_SO_RCVBUF = 8          # Linux; MicroPython's socket module does not name it
_RCVBUF = 16384         # what the host link may hold unread, like a serial driver's buffer


class Board(BaseBoard):
    name = "unix"

    @classmethod
    def from_opts(cls, o):
        host = o.pop("host", "127.0.0.1:7700")
        bus = o.pop("bus", None)
        store = o.pop("store", "hubdata")
        hang = int(o.pop("hang-after-ms", "0"))
        cls.refuse(o)
        return cls(host, bus, store, hang_after_ms=hang)

    def __init__(self, host="127.0.0.1:7700", bus=None, store="hubdata", wdt_ms=2000,
                 hang_after_ms=0):
        self._root = store
        try:
            os.mkdir(store)
        except OSError:
            pass
        self._store = Store(store)
        self._srv = socket.socket()
        self._srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            # a fixed receive buffer (inherited by accepted sockets): a flooding
            # peer cannot park megabytes in front of an emergency stop, as
            # TCP's buffer autotuning would let it (up to tcp_rmem's maximum)
            self._srv.setsockopt(socket.SOL_SOCKET, _SO_RCVBUF, _RCVBUF)
        except OSError:
            pass
        self._srv.bind(addr(host))
        self._srv.listen(1)
        self._srv.setblocking(False)
        self._poll = select.poll()
        self._poll.register(self._srv, select.POLLIN)
        self._cli = None
        self._session = 0
        self._bus = TcpBus(bus, self._poll)
        self._wdt_ms = wdt_ms
        self._fed = ticks_ms()
        # test hook: the loop really hangs after this long, for the watchdog to catch
        self._hang_at = ticks_ms() + hang_after_ms if hang_after_ms else 0
        self._stop = False
        self._cause = self._read_cause()
        self._start_watchdog()

    # ------------------------------------------------------------ watchdog --
    def _read_cause(self):
        d = self._store.read("reset.cause")
        if d is None:
            return wire.RESET_POWER
        self._store.remove("reset.cause")
        return wire.RESET_WATCHDOG if d == b"watchdog" else wire.RESET_HARD

    def _start_watchdog(self):
        try:
            import _thread
        except ImportError:
            return
        _thread.start_new_thread(self._watch, ())

    def _watch(self):
        while not self._stop:
            time.sleep_ms(100)
            if ticks_diff(ticks_ms(), self._fed) > self._wdt_ms:
                self._store.write_atomic("reset.cause", b"watchdog")
                with open("/proc/self/stat") as f:
                    pid = f.read().split()[0]
                os.system("kill -9 " + pid)

    def wdt_feed(self):
        self._fed = ticks_ms()

    def reset_cause(self):
        return self._cause

    def store(self):
        return self._store

    def stopping(self):
        return self._stop

    # --------------------------------------------------------------- links --
    def wait(self, ms):
        if self._hang_at and ticks_diff(ticks_ms(), self._hang_at) >= 0:
            while True:
                pass
        srv = self._srv
        for obj, _ in self._poll.ipoll(ms):
            if obj is srv:
                self._accept()

    def _accept(self):
        if self._cli is not None:
            return                      # the link is taken: the newcomer waits
        try:
            cli, _ = self._srv.accept()
        except OSError:
            return
        try:
            self._poll.unregister(self._srv)    # no wake-ups for waiting clients
        except (OSError, ValueError):
            pass
        cli.setblocking(False)
        try:
            # IPPROTO_TCP, TCP_NODELAY: an ACK written behind a frame the host has not
            # acknowledged yet would otherwise wait for its delayed ACK (up to 40 ms)
            cli.setsockopt(6, 1, 1)
        except OSError:
            pass
        self._cli = cli
        self._session += 1
        self._poll.register(cli, select.POLLIN)

    def _drop_host(self):
        forget(self._poll, self._cli)
        self._cli = None
        self._poll.register(self._srv, select.POLLIN)   # the next client may come in

    def host_session(self):
        return self._session

    def host_connected(self):
        return self._cli is not None

    def host_read(self, buf):
        cli = self._cli
        n = recv_into(cli, buf) if cli is not None else 0
        if n < 0:
            self._drop_host()   # the host hung up: the next client may come in
            n = 0
        return n

    def host_write(self, buf, off, n):
        """A non-blocking send: what the socket takes now (the hub keeps the rest)."""
        if self._cli is None:
            return 0
        try:
            w = self._cli.write(buf, off, n)
        except OSError:
            return 0            # reset by the peer: the next read sees it and drops the host
        return w or 0

    def bus_read(self, buf):
        return self._bus.read(buf)

    def bus_write(self, buf, n):
        self._bus.write(buf, n)
