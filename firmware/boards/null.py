"""A board with nothing attached: links are silent, storage is in RAM.

It proves the board interface complete (the hub runs on it) and gives tests a
board whose links they feed by hand: ``host_in``/``bus_in`` queue bytes for
the hub, ``host_out``/``bus_out`` collect what it wrote.
"""
from boards.base import BaseBoard
from hub import wire


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
        n = min(len(buf), len(self.host_in))
        buf[:n] = self.host_in[:n]
        self.host_in = self.host_in[n:]
        return n

    def host_write(self, buf, n):
        if self.connected:
            self.host_out.extend(buf[:n])

    def bus_read(self, buf):
        n = min(len(buf), len(self.bus_in))
        buf[:n] = self.bus_in[:n]
        self.bus_in = self.bus_in[n:]
        return n

    def bus_write(self, buf, n):
        self.bus_out.extend(buf[:n])

    def wdt_feed(self):
        self.fed += 1

    def reset_cause(self):
        return self._reset

    def store(self):
        return self._store
