"""Frames on a byte stream: COBS, header, auth block, CRC-32.

Both directions work in buffers allocated once. The receiver decodes COBS as
bytes arrive, straight into its frame buffer, so a frame is checked the moment
its delimiter lands and garbage costs only the frame it falls in. Layouts and
error codes come from the generated ``hub.wire``.
"""
import struct

from hub import wire
from hub.compat import const, crc32

_HDR = const(5)         # wire.HEADER_SIZE
_VIEWS = const(24)      # buffer views kept, one per frame length


class Views:
    """``view(n)`` is ``memoryview(buf)[:n]`` without allocating each time.

    CRC and hash functions take whole buffers, not (buffer, length); slicing a
    memoryview allocates. Each length's view is made the first time a frame
    of that length passes and kept, so the steady state (a handful of frame
    lengths) allocates nothing; an evicting cache would thrash when two
    lengths in use collide. The cache is bounded: past ``_VIEWS`` lengths (a
    flood of garbage of every length) views are made and dropped, costing
    garbage, never a growing heap.
    """

    def __init__(self, buf):
        self._mv = memoryview(buf)
        self._views = {}

    def view(self, n):
        v = self._views.get(n)
        if v is None:
            v = self._mv[:n]
            if len(self._views) < _VIEWS:
                self._views[n] = v
        return v


class Rx:
    """Streaming receiver: feed bytes, get checked frames in ``buf``.

    After ``feed`` returns with ``ready`` set, the frame is in ``buf``:
    ``msg``, ``seq``, ``addr``, ``flags``, payload in ``buf[5:pend]``
    (``plen`` bytes) and, for a signed frame, the counter in ``counter``, the
    expiry in ``expires`` and the tag at ``buf[pend + 8:pend + 16]``; or ``err`` holds the ERR_* code
    of a dropped frame. ``bad[code]`` counts drops by class.
    """

    def __init__(self):
        self.buf = bytearray(wire.MAX_FRAME)
        self.views = Views(self.buf)
        self.bad = [0] * 16
        self.frames = 0
        self._n = 0
        self._left = 0
        self._zero = False
        self._err = 0
        self.ready = False
        self.err = 0
        self.size = 0
        self.msg = self.seq = self.addr = self.flags = 0
        self.plen = self.pend = self.counter = self.expires = 0

    def feed(self, data, i, n):
        """Consume ``data[i:n]`` up to and including the first delimiter.

        Returns the index after what was consumed. ``ready`` tells whether a
        frame (or ``err``) is complete: the caller handles it, then calls
        ``feed`` again from the returned index.
        """
        self.ready = False
        buf = self.buf
        cap = wire.MAX_FRAME
        while i < n:
            b = data[i]
            i += 1
            if b == 0:
                if self._n or self._left or self._err or self._zero:
                    self._end()
                    return i
                continue            # empty frame: a sync delimiter
            if self._err:
                continue            # skip to the next delimiter
            if self._left == 0:
                if self._zero:
                    if self._n >= cap:
                        self._err = wire.ERR_OVERSIZE
                        continue
                    buf[self._n] = 0
                    self._n += 1
                self._left = b - 1
                self._zero = b < 0xFF
            else:
                if self._n >= cap:
                    self._err = wire.ERR_OVERSIZE
                    continue
                buf[self._n] = b
                self._n += 1
                self._left -= 1
        return i

    def _end(self):
        n, err = self._n, self._err
        if not err and self._left:
            err = wire.ERR_COBS
        self._n = self._left = self._err = 0
        self._zero = False
        if not err:
            err = self.check(n)
        self.ready = True
        self.err = err
        if err:
            self.bad[err] += 1
        else:
            self.frames += 1

    def check(self, n):
        """Validate ``n`` decoded bytes in ``buf``; 0 or an ERR_* code."""
        buf = self.buf
        if n > wire.MAX_FRAME:
            return wire.ERR_OVERSIZE
        if n < _HDR + wire.CRC_SIZE:
            return wire.ERR_SHORT
        e = n - wire.CRC_SIZE
        crc = buf[e] | (buf[e + 1] << 8) | (buf[e + 2] << 16) | (buf[e + 3] << 24)
        if crc32(self.views.view(e)) != crc:
            return wire.ERR_CRC
        vf = buf[0]
        if vf >> 4 != wire.VERSION:
            return wire.ERR_VERSION
        msg = buf[3]
        info = wire.MSGS.get(msg)
        if info is None:
            return wire.ERR_MSGID
        self.size = n
        self.msg = msg
        self.seq = buf[1] | (buf[2] << 8)
        self.addr = buf[4]
        self.flags = vf & 0xF
        if self.flags & wire.F_AUTH:
            e -= wire.AUTH_SIZE
            if e < _HDR:
                return wire.ERR_LENGTH
            self.counter = buf[e] | (buf[e + 1] << 8) | (buf[e + 2] << 16) | (buf[e + 3] << 24)
            # hub time is below 2**30: the top bits never make a big int here
            self.expires = buf[e + 4] | (buf[e + 5] << 8) | (buf[e + 6] << 16) | \
                ((buf[e + 7] & 0x3F) << 24)
        else:
            self.counter = self.expires = 0
        self.pend = e
        plen = e - _HDR
        self.plen = plen
        size = info[2]
        if plen < size:
            return wire.ERR_LENGTH
        rsize = info[4]
        if rsize:
            count = buf[_HDR + size - 1]
            if plen != size + count * rsize:
                return wire.ERR_LENGTH
        elif not info[5] & wire.MF_BYTES and plen != size:
            return wire.ERR_LENGTH
        if msg == wire.M_HELLO or msg == wire.M_BUS_HELLO:
            s = _HDR
            if buf[s] | (buf[s + 1] << 8) | (buf[s + 2] << 16) | (buf[s + 3] << 24) != wire.SCHEMA:
                return wire.ERR_SCHEMA
        return 0

    def signed_view(self):
        """Header + payload + counter + expires: what the tag covers."""
        return self.views.view(self.pend + 8)

    def tag_at(self):
        return self.pend + 8

    def fields(self):
        """The payload's fixed fields as a tuple (allocates: cold path)."""
        return struct.unpack_from(wire.MSGS[self.msg][1], self.buf, _HDR)

    def records(self):
        """Tail records as a list of tuples (allocates: tests and cold path)."""
        info = wire.MSGS[self.msg]
        rsize = info[4]
        if not rsize:
            return []
        fmt = info[3]
        out = []
        off = _HDR + info[2]
        while off < self.pend:
            out.append(struct.unpack_from(fmt, self.buf, off))
            off += rsize
        return out


class Tx:
    """Frame builder: header, payload via ``pack_into``, auth, CRC, COBS.

    ``begin`` writes the header into ``raw`` and returns the payload offset;
    the caller packs the payload into ``raw``; ``finish`` appends the auth
    block and CRC and COBS-encodes into ``out``, returning the wire length.
    """

    def __init__(self):
        self.raw = bytearray(wire.MAX_FRAME)
        self.out = bytearray(wire.MAX_WIRE)
        self.views = Views(self.raw)
        self.seq = 0

    def begin(self, msg, seq=-1, addr=0, flags=0):
        if seq < 0:
            self.seq = (self.seq + 1) & 0xFFFF
            seq = self.seq
        raw = self.raw
        raw[0] = (wire.VERSION << 4) | (flags & 0xF)
        raw[1] = seq & 0xFF
        raw[2] = seq >> 8
        raw[3] = msg
        raw[4] = addr
        return _HDR

    def finish(self, plen, tagger=None, counter=0, expires=0):
        """Complete the frame of ``plen`` payload bytes; returns wire length.

        ``tagger(view, out, off)`` writes the tag for a signed frame (only
        the host signs in practice; kept for tests and key rotation).
        """
        raw = self.raw
        n = _HDR + plen
        if tagger is not None:
            raw[0] |= wire.F_AUTH
            struct.pack_into("<II", raw, n, counter, expires)
            n += 8
            tagger(self.views.view(n), raw, n)
            n += wire.TAG_SIZE
        struct.pack_into("<I", raw, n, crc32(self.views.view(n)))
        n += wire.CRC_SIZE
        return cobs_encode(raw, n, self.out)


def cobs_encode(src, n, dst):
    """COBS-encode ``src[:n]`` into ``dst`` and append the delimiter."""
    code_at = 0
    o = 1
    code = 1
    i = 0
    while i < n:
        b = src[i]
        i += 1
        if b == 0:
            dst[code_at] = code
            code_at = o
            o += 1
            code = 1
        else:
            dst[o] = b
            o += 1
            code += 1
            if code == 0xFF and i < n:
                dst[code_at] = code
                code_at = o
                o += 1
                code = 1
    dst[code_at] = code
    dst[o] = 0
    return o + 1
