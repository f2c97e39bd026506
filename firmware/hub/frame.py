"""Frames on a byte stream: COBS, header, auth block, CRC-32.

Both directions work in buffers allocated once. The receiver decodes COBS as
bytes arrive, straight into its frame buffer, so a frame is checked the moment
its delimiter lands and garbage costs only the frame it falls in. Layouts and
error codes come from the generated ``hub.wire``.

The byte loops (COBS both ways, the CRC) run in ``@micropython.viper``
(``hub.viperbytes``) where the port has a native emitter, else as bytecode
(``hub.loops``, generated from the viper source; the CRC in ``hub.crc``);
``select`` switches between them (tests run both). Neither path
makes an int of 2**30 or more on a 32-bit port, which would box it: a frame's
CRC is checked over the frame with its CRC (a constant residue, a small int:
in viper, in 16-bit halves by ``hub.crc``, or by ``binascii.crc32``), and
written byte by byte (in viper, or by ``hub.crc``; a 64-bit port keeps the C
CRC's value).
"""
import struct
import sys
from array import array

from hub import wire
from hub.compat import const

try:
    from hub import viperbytes
except (ImportError, SyntaxError, ValueError):  # no native emitter, or another arch
    viperbytes = None

_HDR = const(5)         # wire.HEADER_SIZE
_VIEWS = const(24)      # buffer views kept, one per frame length
_SPARE = const(3)       # where Tx.raw starts in Tx.out: MAX_WIRE - MAX_FRAME (hub.wire)


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


_SPLITS = []


def split(buf, at):
    """``(buf, memoryview(buf)[:at], memoryview(buf)[at:])``, made the first
    time and kept: two links can share one read buffer without allocating
    (a board fills a view; the bytes are then read from ``buf``)."""
    for s in _SPLITS:
        if s[0] is buf and len(s[1]) == at:
            return s
    mv = memoryview(buf)
    s = (buf, mv[:at], mv[at:])
    _SPLITS.append(s)
    return s


_RESIDUE = const(0x2144DF1C)    # crc32 over a frame and its CRC: below 2**30
# The loops in use, set by ``select``: COBS decode, COBS encode, CRC put,
# CRC check, the port's C CRC-32 (binascii), and four per-bot table loops
# (``Swarm.ingest``'s per-report work, ``control.gather``,
# ``telemetry.bot_states``' records, ``Swarm.counts``). A None CRC slot means
# the C CRC does that job. One list, not nine globals: every new name is a qstr,
# and loaded from .mpy a handful more grow the qstr pool by a 7 KB step.
_IMPL = [None, None, None, None, None, None, None, None, None]


def select(viper=True):
    """Use the viper loops (if this port has them) or the portable ones.

    Returns whether viper is in use. Runs at import with ``viper=True``.
    """
    impl = _IMPL
    try:
        from binascii import crc32 as c
    except ImportError:
        try:
            from zlib import crc32 as c
        except ImportError:
            c = None
    impl[4] = c
    if viper and viperbytes is not None:
        v = viperbytes
    else:                       # imported only where used: a board with viper never loads it
        from hub import loops as v
    impl[0] = v.feed
    impl[1] = v.cobs_encode
    impl[5] = v.book
    impl[6] = v.gather
    impl[7] = v.states
    impl[8] = v.counts
    if v is viperbytes:
        impl[2] = impl[3] = v.crc
        return True
    impl[2] = impl[3] = None
    if c is None or sys.maxsize <= 0xFFFFFFFF:
        # a CRC-32 value would be boxed (32-bit) or there is no C CRC: write
        # it in 16-bit halves (hub.crc, tables of 1 KB)
        from hub import crc
        impl[2] = crc.crc
        if c is None:
            impl[3] = crc.crc
    return False


class Rx:
    """Streaming receiver: feed bytes, get checked frames in ``buf``.

    After ``feed`` returns with ``ready`` set, the frame is in ``buf``:
    ``msg``, ``seq``, the address in ``buf[4]`` and the flags (F_*) in
    ``buf[0] & 0xF``, payload in ``buf[5:pend]``, the CRC after it (and after
    the auth block) and, for a signed frame, the counter in ``counter``, the
    expiry in ``expires`` and the tag at ``buf[pend + 8:pend + 16]``; or ``err`` holds the ERR_* code
    of a dropped frame. ``bad[code]`` counts drops by class (``Rx(False)``:
    not counted, ``bad`` is None).
    """

    def __init__(self, count_bad=True):
        self.buf = bytearray(wire.MAX_FRAME)
        self.views = Views(self.buf)
        self.bad = [0] * 16 if count_bad else None
        self.frames = 0
        # decoder state (layout in hub.viperbytes): decoded, left, zero due,
        # error, capacity, the oversize code
        self.state = array("i", (0, 0, 0, 0, wire.MAX_FRAME, wire.ERR_OVERSIZE))
        self.ready = False
        self.err = 0
        self.msg = self.seq = 0
        self.pend = self.counter = self.expires = 0

    def feed(self, data, i, n):
        """Consume ``data[i:n]`` up to and including the first delimiter.

        Returns the index after what was consumed. ``ready`` tells whether a
        frame (or ``err``) is complete: the caller handles it, then calls
        ``feed`` again from the returned index.
        """
        self.ready = False
        i = _IMPL[0](data, i, n, self.buf, self.state)
        if i < 0:
            self._end()
            return -1 - i
        return i

    def _end(self):
        st = self.state
        n, err = st[0], st[3]
        if not err and st[1]:
            err = wire.ERR_COBS
        st[0] = st[1] = st[2] = st[3] = 0
        if not err:
            err = self.check(n)
        self.ready = True
        self.err = err
        if err:
            if self.bad is not None:
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
        impl = _IMPL
        if impl[3] is not None:
            ok = impl[3](buf, n, 0)
        else:   # over the frame and its CRC: the residue (a small int) or not
            ok = impl[4](self.views.view(n)) == _RESIDUE
        if not ok:
            return wire.ERR_CRC
        e = n - wire.CRC_SIZE
        vf = buf[0]
        if vf >> 4 != wire.VERSION:
            return wire.ERR_VERSION
        msg = buf[3]
        info = wire.MSGS.get(msg)
        if info is None:
            return wire.ERR_MSGID
        self.msg = msg
        self.seq = buf[1] | (buf[2] << 8)
        if vf & wire.F_AUTH:
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
        size = info[1]
        if plen < size:
            return wire.ERR_LENGTH
        rsize = info[3]
        if rsize:
            count = buf[_HDR + size - 1]
            if plen != size + count * rsize:
                return wire.ERR_LENGTH
        elif not info[4] & wire.MF_BYTES and plen != size:
            return wire.ERR_LENGTH
        if msg == wire.M_HELLO or msg == wire.M_BUS_HELLO:
            s = _HDR
            # two 16-bit halves: the schema hash may be 2**30 or more
            if (buf[s] | (buf[s + 1] << 8) != wire.SCHEMA & 0xFFFF
                    or buf[s + 2] | (buf[s + 3] << 8) != wire.SCHEMA >> 16):
                return wire.ERR_SCHEMA
        return 0

    def signed_view(self):
        """Header + payload + counter + expires: what the tag covers."""
        return self.views.view(self.pend + 8)

    def tag_at(self):
        return self.pend + 8


class Tx:
    """Frame builder: header, payload via ``pack_into``, auth, CRC, COBS.

    ``begin`` writes the header into ``raw`` and returns the payload offset;
    the caller packs the payload into ``raw``; ``finish`` appends the auth
    block and CRC and COBS-encodes into ``out``, returning the wire length.

    ``Tx(other)`` builds in ``other``'s buffers with its own sequence
    numbers: for a second link whose frames are each built and written out
    before the other link's next one begins.

    One buffer: ``raw`` is ``out`` past its first ``_SPARE`` bytes, and
    ``finish`` encodes forward in place. The encoder writes the byte it read
    at ``raw[i]`` to ``out[i + 1 + e]`` (``e``: the extra code bytes of runs
    of 254, at most 1 in a frame), never on a byte it has still to read
    (``out[_SPARE + i]`` on). So after ``finish`` ``raw`` no longer holds the
    frame: ``out`` does (COBS keeps positions: a byte that is not 0 is at
    ``out[1 + i]``, as the version and flags and the message id always are).
    """

    def __init__(self, share=None):
        if share is None:
            self.out = bytearray(wire.MAX_WIRE)
            self.raw = memoryview(self.out)[_SPARE:]
            self.views = Views(self.raw)
        else:
            self.raw, self.out, self.views = share.raw, share.out, share.views
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
        impl = _IMPL
        if impl[2] is not None:
            impl[2](raw, n, 1)
        else:
            struct.pack_into("<I", raw, n, impl[4](self.views.view(n)))
        n += wire.CRC_SIZE
        return impl[1](raw, n, self.out)


select()
