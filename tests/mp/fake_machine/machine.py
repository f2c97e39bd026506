"""A fake ``machine`` module for board tests on the unix VM: it records what a
board did (UART, Pin, WDT, reset_cause, reset) and lets the test play the
hardware (bytes arriving on a UART, the cause of the last reset).

    sys.path.insert(0, ".../tests/mp/fake_machine")
    import machine          # this file: the unix port's machine is extensible
    machine.clear(cause=machine.WDT_RESET)
    board = Board(...)
    machine.calls           # [("reset_cause",), ("UART", 0, {...}), ("Pin", "LED", 1)]
    machine.made["UART"][0].feed(b"...")
"""

PWRON_RESET = 1
HARD_RESET = 2
WDT_RESET = 3
DEEPSLEEP_RESET = 4
SOFT_RESET = 5

calls = []
made = {"UART": [], "Pin": [], "WDT": []}
missing_pins = []          # Pin ids that raise ValueError, as on a board without them
_cause = [PWRON_RESET]


def clear(cause=PWRON_RESET):
    del calls[:]
    for k in made:
        del made[k][:]
    del missing_pins[:]
    _cause[0] = cause


def reset_cause():
    calls.append(("reset_cause",))
    return _cause[0]


def reset():
    calls.append(("reset",))


class Pin:
    IN = 0
    OUT = 1

    def __init__(self, id, mode=-1, value=None):
        if id in missing_pins:
            raise ValueError("invalid pin")
        self.id = id
        self.mode = mode
        self.v = 0 if value is None else value
        self.history = []
        calls.append(("Pin", id, mode))
        made["Pin"].append(self)

    def value(self, v=None):
        if v is None:
            return self.v
        self.v = v
        self.history.append(v)

    def on(self):
        self.value(1)

    def off(self):
        self.value(0)


class UART:
    def __init__(self, id, baudrate=9600, **kw):
        self.id = id
        self.baudrate = baudrate
        self.kw = kw
        self.rx = bytearray()      # bytes the wire brought, not yet read
        self.tx = bytearray()      # bytes the board wrote
        calls.append(("UART", id, baudrate, kw))
        made["UART"].append(self)

    def feed(self, data):
        self.rx.extend(data)

    def any(self):
        return len(self.rx)

    def readinto(self, buf, n=None):
        if n is None or n > len(buf):
            n = len(buf)
        if n > len(self.rx):
            n = len(self.rx)
        if n == 0:
            return None            # timeout=0 and nothing there, as on a board
        for k in range(n):
            buf[k] = self.rx[k]
        self.rx[0:n] = b""
        return n

    def write(self, data):
        self.tx.extend(data)
        return len(data)


class WDT:
    def __init__(self, id=0, timeout=5000):
        self.timeout = timeout
        self.fed = 0
        calls.append(("WDT", timeout))
        made["WDT"].append(self)

    def feed(self):
        self.fed += 1
