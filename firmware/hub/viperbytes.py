"""The frame layer's byte loops in ``@micropython.viper``: machine words, no boxing.

Importing this module fails on ports without a native emitter (SyntaxError
from source, ValueError for a .mpy of another architecture); ``hub.frame``
then runs the portable loops, which these must match byte for byte (the
golden-vector tests run both). Every function works in place on buffers the
caller owns and returns small ints only: a CRC-32 never exists as an object.
"""
import micropython
from array import array

# Rx decoder state (Rx.state), an array("i") shared with hub.frame
# 0 bytes decoded, 1 bytes left in the COBS block, 2 a zero is due before
# the next block, 3 error code (0 none), 4 capacity, 5 ERR_OVERSIZE


@micropython.viper
def _fill(t):
    # machine words: on a 32-bit port the same loop in bytecode would box
    # every value of 2**30 or more (~130 KB of garbage at import)
    p = ptr32(t)
    i = 0
    while i < 256:
        c = uint(i)
        k = 0
        while k < 8:
            if c & 1:
                c = (c >> 1) ^ uint(0xEDB88320)
            else:
                c = c >> 1
            k += 1
        p[i] = c
        i += 1


def table():
    """The CRC-32 lookup table as 32-bit words (built once, at import)."""
    t = array("I", bytes(1024))
    _fill(t)
    return t


TABLE = table()


@micropython.viper
def feed(data, i: int, n: int, buf, st) -> int:
    """COBS-decode ``data[i:n]`` into ``buf`` up to the first delimiter.

    Returns the index after what was consumed, negated minus one when a
    delimiter ended a frame (so the caller learns both in one small int).
    """
    d = ptr8(data)
    out = ptr8(buf)
    s = ptr32(st)
    cnt = s[0]
    left = s[1]
    zero = s[2]
    err = s[3]
    cap = s[4]
    end = 0
    while i < n:
        b = d[i]
        i += 1
        if b == 0:
            if cnt or left or err or zero:
                end = 1
                break
            continue
        if err:
            continue
        if left == 0:
            if zero:
                if cnt >= cap:
                    err = s[5]
                    continue
                out[cnt] = 0
                cnt += 1
            left = b - 1
            zero = 1 if b < 0xFF else 0
        else:
            if cnt >= cap:
                err = s[5]
                continue
            out[cnt] = b
            cnt += 1
            left -= 1
    s[0] = cnt
    s[1] = left
    s[2] = zero
    s[3] = err
    if end:
        return -1 - i
    return i


@micropython.viper
def cobs_encode(src, n: int, dst) -> int:
    """COBS-encode ``src[:n]`` into ``dst`` with the delimiter; the wire length."""
    s = ptr8(src)
    d = ptr8(dst)
    code_at = 0
    o = 1
    code = 1
    i = 0
    while i < n:
        b = s[i]
        i += 1
        if b == 0:
            d[code_at] = code
            code_at = o
            o += 1
            code = 1
        else:
            d[o] = b
            o += 1
            code += 1
            if code == 0xFF and i < n:
                d[code_at] = code
                code_at = o
                o += 1
                code = 1
    d[code_at] = code
    d[o] = 0
    return o + 1


# put and check each run the CRC loop inline: a call between viper functions
# goes through objects, and a CRC-32 returned that way would be boxed.


@micropython.viper
def put(buf, n: int):
    """Write the CRC-32 of ``buf[:n]`` little-endian into ``buf[n:n + 4]``."""
    p = ptr8(buf)
    t = ptr32(TABLE)
    c = uint(0xFFFFFFFF)
    i = 0
    while i < n:
        c = uint(t[(c ^ p[i]) & 0xFF]) ^ (c >> 8)
        i += 1
    c = c ^ uint(0xFFFFFFFF)
    p[n] = c & 0xFF
    p[n + 1] = (c >> 8) & 0xFF
    p[n + 2] = (c >> 16) & 0xFF
    p[n + 3] = (c >> 24) & 0xFF


@micropython.viper
def check(buf, n: int) -> bool:
    """Whether ``buf[:n]`` ends in the CRC-32 of what precedes it."""
    if n < 4:
        return False
    p = ptr8(buf)
    t = ptr32(TABLE)
    e = n - 4
    c = uint(0xFFFFFFFF)
    i = 0
    while i < e:
        c = uint(t[(c ^ p[i]) & 0xFF]) ^ (c >> 8)
        i += 1
    c = c ^ uint(0xFFFFFFFF)
    return (p[e] == int(c & 0xFF) and p[e + 1] == int((c >> 8) & 0xFF)
            and p[e + 2] == int((c >> 16) & 0xFF) and p[e + 3] == int((c >> 24) & 0xFF))
