"""CRC-32 (IEEE 802.3, as zlib) in Python, for ports without binascii.crc32.

Slow (a table lookup per byte) but allocation-free; the port's C version is
used whenever it exists.
"""
from array import array

_TABLE = None


def _table():
    global _TABLE
    t = array("L", [0] * 256)
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0xEDB88320 if c & 1 else c >> 1
        t[i] = c
    _TABLE = t
    return t


def crc32(data, crc=0):
    t = _TABLE or _table()
    c = crc ^ 0xFFFFFFFF
    for b in data:
        c = t[(c ^ b) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF
