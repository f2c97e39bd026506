"""The few things that differ between MicroPython and CPython.

Firmware logic imports on CPython too (property tests, fuzzing), but the
MicroPython VM is the truth: everything here is a thin shim, never logic.
"""
try:
    from micropython import const
except ImportError:  # CPython
    def const(x):
        return x

try:
    from time import ticks_add, ticks_diff, ticks_ms, ticks_us
except ImportError:  # CPython
    import time as _time

    _PERIOD = 1 << 30

    def ticks_ms():
        return int(_time.monotonic() * 1000) & (_PERIOD - 1)

    def ticks_us():
        return int(_time.monotonic() * 1000000) & (_PERIOD - 1)

    def ticks_add(t, delta):
        return (t + delta) & (_PERIOD - 1)

    def ticks_diff(a, b):
        d = (a - b) & (_PERIOD - 1)
        return d - _PERIOD if d >= _PERIOD // 2 else d

try:
    from binascii import crc32
except ImportError:  # ports built without it (esp8266): see crc.py
    crc32 = None
if crc32 is None:
    try:
        from zlib import crc32
    except ImportError:
        from hub.crc import crc32

try:
    from hashlib import sha256
except ImportError:  # pragma: no cover - every supported port has it
    sha256 = None
