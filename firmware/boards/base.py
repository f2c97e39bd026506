"""What a board gives the hub: two links, a clock, a watchdog, storage.

Every board implements these methods; ``null`` implements them with nothing
behind them, which proves the interface complete. Nothing here or in a board
module touches hardware at import time: only ``Board(...)`` does.
"""
from hub.compat import ticks_ms


class BaseBoard:
    name = "base"

    @classmethod
    def from_opts(cls, o):
        """The board for ``main.py``'s options (a dict of "--name value" pairs
        the hub did not take); each board takes its own and refuses the rest."""
        cls.refuse(o)
        return cls()

    @staticmethod
    def refuse(o):
        for k in o:
            raise ValueError("bad argument for this board: --" + k)

    def ticks_ms(self):
        return ticks_ms()

    def wait(self, ms):
        """Sleep up to ``ms`` ms, waking early when a link has data."""
        raise NotImplementedError

    def host_session(self):
        """A number that changes whenever a new host connects."""
        return 0

    def host_connected(self):
        return False

    def host_read(self, buf):
        """Bytes into ``buf`` without blocking; returns the count (0: none)."""
        return 0

    def host_write(self, buf, off, n):
        """Write up to ``n`` bytes of ``buf`` from ``off`` without ever blocking;
        returns how many the link took (0: none now). ``hub.hostout`` keeps
        the rest of a frame for later, so a short count never tears one."""
        return n

    def bus_read(self, buf):
        return 0

    def bus_write(self, buf, n):
        pass

    def wdt_set(self, ms):
        """The watchdog timeout: the hub passes its ``wdt_ms`` parameter at boot,
        before the first feed starts the watchdog."""
        self._wdt_ms = ms

    def wdt_feed(self):
        pass

    def reset_cause(self):
        from hub import wire
        return wire.RESET_POWER

    def store(self):
        raise NotImplementedError

    def led(self, on):
        pass

    def stopping(self):
        return False
