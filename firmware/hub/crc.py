"""CRC-32 (IEEE 802.3, as zlib) in portable Python, in 16-bit halves.

On a 32-bit port a small int holds 31 bits: any CRC-32 value of 2**30 or more
is a heap object. ``crc`` keeps the register as two 16-bit halves
looked up in two 16-bit tables, so it allocates nothing on any port: it is
what the frame layer uses where ``@micropython.viper`` is missing (the viper
path in ``hub.viperbytes`` does the same in machine words). ``crc32`` returns
the value as one int, for ports without ``binascii.crc32`` (cold paths:
parameter and state files).

One lookup per byte in bytecode: slow, but only ports without a native
emitter run it on the tick.
"""
from array import array

from hub.compat import const

# crc32(data + le32(crc32(data))) for any data: a valid frame's CRC covers
# itself to this constant (below 2**30, a small int everywhere)
_RESIDUE = const(0x2144DF1C)
_POLY_LO = const(0x8320)        # the polynomial 0xEDB88320 in halves: a small int each
_POLY_HI = const(0xEDB8)

_LO = None
_HI = None


def _tables():
    # in halves too: the polynomial is above 2**30, and 2048 steps on one int
    # would leave ~130 KB of garbage on a 32-bit port
    global _LO, _HI
    lo_t = array("H", bytes(512))
    hi_t = array("H", bytes(512))
    for i in range(256):
        lo, hi = i, 0
        for _ in range(8):
            odd = lo & 1
            lo = (lo >> 1) | ((hi & 1) << 15)
            hi >>= 1
            if odd:
                lo ^= _POLY_LO
                hi ^= _POLY_HI
        lo_t[i] = lo
        hi_t[i] = hi
    _LO, _HI = lo_t, hi_t
    return lo_t, hi_t


def crc(buf, n, put):
    """The CRC-32 of ``buf[:n]``: with ``put`` written little-endian into
    ``buf[n:n + 4]`` (returns 1), else whether ``buf[:n]`` ends in the CRC
    of what precedes it (over data and its CRC the register ends at the
    residue). One loop for both: two halves returned would be a tuple."""
    tl, th = _LO or _tables()[0], _HI
    lo = hi = 0xFFFF
    i = 0
    while i < n:
        k = (lo ^ buf[i]) & 0xFF
        lo = ((lo >> 8) | ((hi & 0xFF) << 8)) ^ tl[k]
        hi = (hi >> 8) ^ th[k]
        i += 1
    lo ^= 0xFFFF
    hi ^= 0xFFFF
    if not put:
        return lo == _RESIDUE & 0xFFFF and hi == _RESIDUE >> 16
    buf[n] = lo & 0xFF
    buf[n + 1] = lo >> 8
    buf[n + 2] = hi & 0xFF
    buf[n + 3] = hi >> 8
    return 1


def crc32(data, crc=0):
    """``binascii.crc32(data, crc)``: the value as one int (may allocate)."""
    tl, th = _LO or _tables()[0], _HI
    c = crc ^ 0xFFFFFFFF
    for b in data:
        k = (c ^ b) & 0xFF
        c = (tl[k] | (th[k] << 16)) ^ (c >> 8)
    return c ^ 0xFFFFFFFF
