"""The parameter table: the one truth for every tunable limit of the hub.

Each entry is (name <= 16 chars, unit <= 6 chars, default, min, max), all
ints (fixed point where needed: permille, centi-degrees C). The firmware's
hard bounds are the min and max here; a value outside them, or one that breaks
a cross-check, is refused and the old value stays. Other modules read values
with ``params.get(params.P_...)``; the index constants below follow TABLE.

File ``params.bin`` (little-endian), written atomically::

    magic "NHPA" | version u16 | count u16 | layout crc32 u32 |
    count x value i32 | crc32 u32 of everything before it

The layout CRC covers the names in order: a firmware with a different table
does not map stale values onto the wrong parameters (it loads defaults and
reports LOAD_STALE).
"""
import struct
from array import array

from hub import wire
from hub.compat import const, crc32

P_TICK_HZ = const(0)
P_HB_PAUSE_MS = const(1)
P_HB_RECALL_MS = const(2)
P_BOT_LOST_MS = const(3)
P_BOT_QUAR_MS = const(4)
P_RUNAWAY_TICKS = const(5)
P_RUNAWAY_MARGIN = const(6)
P_SYSTEMIC_PCT = const(7)
P_BUS_LOSS_PCT = const(8)
P_LEASE_MS = const(9)
P_SITE_CAP = const(10)
P_SESSION_CAP = const(11)
P_RATE_CAP = const(12)
P_SENS_THROTTLE = const(13)
P_SENS_PAUSE = const(14)
P_HEAT_THROTTLE = const(15)
P_HEAT_QUAR = const(16)
P_WDT_MS = const(17)
P_CHECK_TTL_MS = const(18)
P_TLM_STATUS_HZ = const(19)
P_TLM_BOTS_HZ = const(20)
P_TLM_SITES_HZ = const(21)
P_RUNAWAY_GRACE = const(22)
P_FRESH_MS = const(23)

# name, unit, default, min, max
TABLE = (
    ("tick_hz", "Hz", 50, 10, 100),                # control loop rate
    ("hb_pause_ms", "ms", 1000, 200, 5000),        # host silent: pause
    ("hb_recall_ms", "ms", 30000, 2000, 120000),   # host silent: recall
    ("bot_lost_ms", "ms", 500, 100, 5000),         # bot silent: LOST
    ("bot_quar_ms", "ms", 2000, 200, 20000),       # bot silent: quarantine
    ("runaway_ticks", "tick", 1, 1, 10),           # runaway seen: quarantine
    ("runaway_margin", "%", 10, 2, 50),            # output above command
    ("systemic_pct", "%", 20, 5, 50),              # deployed bots misbehaving
    ("bus_loss_pct", "%", 30, 5, 90),              # bus frame loss over 1 s
    ("lease_ms", "ms", 2000, 100, 5000),           # dose command lifetime
    ("site_cap", "udu", 200000, 0, 1000000),       # hard cap per site
    ("session_cap", "udu", 2000000, 0, 10000000),  # hard cap per session
    ("rate_cap", "udu/s", 5000, 1, 10000),         # hard dose rate per site
    ("sens_throttle", "permil", 600, 300, 900),    # of the sensitivity limit
    ("sens_pause", "permil", 800, 400, 1000),
    ("heat_throttle", "cdegC", 4100, 3800, 4200),  # tissue temp, C x 100
    ("heat_quar", "cdegC", 4200, 3900, 4300),
    ("wdt_ms", "ms", 2000, 500, 8000),             # hardware watchdog
    ("check_ttl_ms", "ms", 30000, 5000, 300000),   # pre-treatment check age
    ("tlm_status_hz", "Hz", 5, 1, 10),
    ("tlm_bots_hz", "Hz", 5, 0, 25),
    ("tlm_sites_hz", "Hz", 2, 0, 10),
    ("runaway_grace", "ms", 700, 100, 3000),       # output lags a lowered command
    ("fresh_ms", "ms", 1000, 100, 5000),           # a signed frame expires at most this far ahead
)
COUNT = const(24)

# cross-checks: value of the first must stay strictly below the second
LESS = (
    (P_SENS_THROTTLE, P_SENS_PAUSE),
    (P_HEAT_THROTTLE, P_HEAT_QUAR),
    (P_HB_PAUSE_MS, P_HB_RECALL_MS),
    (P_BOT_LOST_MS, P_BOT_QUAR_MS),
)

LOAD_OK = const(0)        # loaded from the file
LOAD_MISSING = const(1)   # no file: defaults
LOAD_CORRUPT = const(2)   # bad size, magic or CRC: defaults
LOAD_STALE = const(3)     # written by a firmware with another table: defaults
LOAD_INVALID = const(4)   # CRC fine but a value breaks a bound: defaults

FILE = "params.bin"
_MAGIC = b"NHPA"
_VERSION = const(1)
_HDR = "<4sHHI"
_HDR_SIZE = const(12)


def _layout_crc():
    c = 0
    for e in TABLE:
        c = crc32(e[0].encode() + b",", c)
    return c


class Params:
    def __init__(self, store=None):
        self.store = store
        self.count = COUNT
        self._v = array("l", [e[2] for e in TABLE])
        self._layout = _layout_crc()
        self.loaded = LOAD_MISSING  # outcome of the last load()

    def get(self, i):
        return self._v[i]

    def find(self, name):
        """Index of the parameter called name (str or bytes), or -1."""
        if not isinstance(name, str):
            name = bytes(name).rstrip(b"\0").decode()
        for i in range(COUNT):
            if TABLE[i][0] == name:
                return i
        return -1

    def info(self, i):
        """(name, unit, value, min, max, default)."""
        e = TABLE[i]
        return e[0], e[1], self._v[i], e[3], e[4], e[2]

    def check(self, i, value):
        """(ok, why, bound) for setting parameter i to value; changes nothing."""
        if not isinstance(i, int) or not 0 <= i < COUNT or not isinstance(value, int):
            return False, wire.WHY_BAD_ARG, 0
        e = TABLE[i]
        if value < e[3]:
            return False, wire.WHY_BOUNDS, e[3]
        if value > e[4]:
            return False, wire.WHY_BOUNDS, e[4]
        for lo, hi in LESS:
            if i == lo and value >= self._v[hi]:
                return False, wire.WHY_BOUNDS, self._v[hi]
            if i == hi and value <= self._v[lo]:
                return False, wire.WHY_BOUNDS, self._v[lo]
        return True, wire.WHY_NONE, value

    def set(self, i, value):
        """Set and persist. (True, WHY_NONE, value) or (False, why, bound):
        WHY_BOUNDS names the violated bound (a hard limit, or the other
        parameter's value for a cross-check), WHY_BAD_ARG an unknown index,
        WHY_STORAGE a failed save (the old value is kept)."""
        ok, why, bound = self.check(i, value)
        if not ok:
            return ok, why, bound
        old = self._v[i]
        self._v[i] = value
        if self.store is not None:
            try:
                self.save()
            except OSError:
                self._v[i] = old
                return False, wire.WHY_STORAGE, 0
        return True, wire.WHY_NONE, value

    def valid(self):
        """True if every value is inside its bounds and every cross-check holds."""
        v = self._v
        for i in range(COUNT):
            if not TABLE[i][3] <= v[i] <= TABLE[i][4]:
                return False
        for lo, hi in LESS:
            if v[lo] >= v[hi]:
                return False
        return True

    def defaults(self):
        for i in range(COUNT):
            self._v[i] = TABLE[i][2]

    def pack(self):
        """The file image of the current values."""
        body = struct.pack(_HDR, _MAGIC, _VERSION, COUNT, self._layout)
        body += struct.pack("<%di" % COUNT, *self._v)
        return body + struct.pack("<I", crc32(body))

    def load(self):
        """Read the file; on any problem keep defaults. Returns a LOAD_* code
        (also kept in .loaded); the caller logs anything but LOAD_OK.
        Storage errors raise OSError (values are then the defaults)."""
        self.defaults()
        self.loaded = code = self._load()
        if code != LOAD_OK:
            self.defaults()
        return code

    def _load(self):
        data = None if self.store is None else self.store.read(FILE)
        if data is None:
            return LOAD_MISSING
        if len(data) < _HDR_SIZE + 4:
            return LOAD_CORRUPT
        magic, version, count, layout = struct.unpack_from(_HDR, data, 0)
        if magic != _MAGIC or len(data) != _HDR_SIZE + 4 * count + 4:
            return LOAD_CORRUPT
        if struct.unpack_from("<I", data, len(data) - 4)[0] != crc32(data[:-4]):
            return LOAD_CORRUPT
        if version != _VERSION or count != COUNT or layout != self._layout:
            return LOAD_STALE
        vals = struct.unpack_from("<%di" % COUNT, data, _HDR_SIZE)
        for i in range(COUNT):
            self._v[i] = vals[i]
        return LOAD_OK if self.valid() else LOAD_INVALID

    def save(self):
        """Write the values atomically; raises OSError."""
        if self.store is None:
            raise OSError(19)  # ENODEV: no storage attached
        self.store.write_atomic(FILE, self.pack())
