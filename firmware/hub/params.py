"""The hub's parameters: values, bounds checks, persistence.

The table (``hub.paramtab``) is generated from ``protocol/facts.py``, the one
truth for every tunable limit; its meanings are in docs/parameters.md. Each
entry is (name <= 16 chars, unit <= 6 chars, default, min, max), all ints
(fixed point where needed: permille, centi-degrees C). The firmware's hard
bounds are the min and max there; a value outside them, or one that breaks a
cross-check, is refused and the old value stays. Other modules read values
with ``params.get(params.P_...)``.

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

# The table is generated from protocol/facts.py (docs/parameters.md):
# P_* index constants, TABLE ((name, unit, default, min, max) per index),
# COUNT, and LESS (cross-checks: the first value stays strictly below the second).
from hub.paramtab import *  # noqa: F401,F403

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
    count = COUNT                   # a class attribute: each field is a slot of the instance's map

    def __init__(self, store=None):
        self.store = store
        self._v = array("l", [e[2] for e in TABLE])
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
        body = struct.pack(_HDR, _MAGIC, _VERSION, COUNT, _layout_crc())
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
        if version != _VERSION or count != COUNT or layout != _layout_crc():
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
