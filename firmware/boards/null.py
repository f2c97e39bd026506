"""A board with nothing attached: links are silent, storage is in RAM.

It proves the board interface complete (the hub runs on it) and gives tests a
board whose links they feed by hand: ``host_in``/``bus_in`` queue bytes for
the hub, ``host_out``/``bus_out`` collect what it wrote. The queues are
edited in place (drain them with ``q[:] = b""``), so once they have grown to
their working size the links allocate nothing.
"""
from boards.base import BaseBoard
from hub import wire


_EMPTY = b""


def _take(src, buf):
    # Move bytes from the queue into buf in place: slicing would allocate, and
    # the hub's steady-state tick (board included) allocates nothing.
    n = len(src)
    if n > len(buf):
        n = len(buf)
    for k in range(n):
        buf[k] = src[k]
    src[0:n] = _EMPTY
    return n


def _put(dst, buf, n, off=0):
    for k in range(off, off + n):
        dst.append(buf[k])


class MemStore:
    """Store API over a dict (for tests and boards without a filesystem)."""

    def __init__(self):
        self.files = {}

    def read(self, name):
        d = self.files.get(name)
        return None if d is None else bytes(d)

    def read_at(self, name, offset, buf):
        d = self.files.get(name)
        if d is None:
            return 0
        n = min(len(buf), max(0, len(d) - offset))
        buf[:n] = d[offset:offset + n]
        return n

    def write_atomic(self, name, data):
        self.files[name] = bytearray(data)

    def append(self, name, data):
        self.files.setdefault(name, bytearray()).extend(data)

    def truncate(self, name, size):
        d = self.files.get(name)
        if d is not None:
            self.files[name] = d[:size]

    def size(self, name):
        d = self.files.get(name)
        return None if d is None else len(d)

    def remove(self, name):
        self.files.pop(name, None)

    def names(self):
        return list(self.files)


class Board(BaseBoard):
    name = "null"

    def __init__(self, store=None, reset=None):
        self._store = store if store is not None else MemStore()
        self._reset = wire.RESET_POWER if reset is None else reset
        self.host_in = bytearray()
        self.bus_in = bytearray()
        self.host_out = bytearray()
        self.bus_out = bytearray()
        self.session = 0
        self.connected = True
        self.room = None            # bytes the host will still take; None: no limit
        self.fed = 0
        self.clock = 0

    def ticks_ms(self):
        return self.clock

    def wait(self, ms):
        self.clock += ms

    def host_session(self):
        return self.session

    def host_connected(self):
        return self.connected

    def host_read(self, buf):
        return _take(self.host_in, buf)

    def host_write(self, buf, off, n):
        """All of it, or at most ``room`` bytes while a test sets it (a host that
        reads slowly, or not at all with 0)."""
        if not self.connected:
            return 0
        room = self.room
        if room is not None:
            if n > room:
                n = room
            self.room = room - n
        _put(self.host_out, buf, n, off)
        return n

    def bus_read(self, buf):
        return _take(self.bus_in, buf)

    def bus_write(self, buf, n):
        _put(self.bus_out, buf, n)

    def wdt_feed(self):
        self.fed += 1

    def reset_cause(self):
        return self._reset

    def store(self):
        return self._store
