"""Emergency stops first: find ESTOP frames in raw host-link bytes.

A flood on the host link (garbage, or valid frames faster than the hub can
parse them) must never hold a stop back. Every read from the host link is
searched for complete ESTOP frames before the frame parser sees it, and each
one found is acted on at once. Past the parse budget of a poll the hub keeps
reading, but only searches and drops, so the bytes queued in front of a stop
leave the link at memory speed (``drained`` counts them).

Why a search is cheap and exact: an ESTOP frame has a fixed size (header 5,
source 1, CRC 4: 10 bytes, 11 after COBS, then the 0x00 delimiter), and COBS
keeps every non-zero byte in place shifted by one, so the message id (never
zero) is always the fifth encoded byte. The search looks for that byte with
``bytearray.find`` (C speed), then checks the delimiters on both sides,
decodes the 11 bytes and checks version, flags, id and CRC: a candidate that
passes is a valid ESTOP frame, nothing less. A frame cut between two reads
is found through ``seam``, the last 12 bytes of one read followed by the
first 12 of the next; the bytes are carried only when they hold a
delimiter, and searched only when a message id can sit where a frame would
cross the boundary, so most reads cost two C-speed searches.
"""
from hub import wire
from hub.compat import const, crc32

_RAW = const(10)        # ESTOP frame before COBS
_ENC = const(11)        # after COBS, without the delimiter
_MSG_AT = const(4)      # encoded offset of the message id
_TAIL = const(12)       # bytes carried from one read to the next
_PAT = bytes((wire.M_ESTOP,))
_ZERO = b"\0"
_VF = wire.VERSION << 4


class StopScan:
    def __init__(self):
        self.raw = bytearray(_RAW)
        self._crcv = memoryview(self.raw)[:_RAW - 4]
        self.seam = bytearray(2 * _TAIL)
        self._carry = False     # seam[:_TAIL] holds the previous read's last bytes
        self._tail_hit = False  # and a message id could sit in them
        self.found = 0          # ESTOP frames found by the search
        self.drained = 0        # bytes read and dropped unparsed (flood)

    def scan(self, buf, n, act):
        """Call ``act(seq, source, crc31)`` for each ESTOP frame completed in buf[:n]."""
        if n <= 0:
            return
        seam = self.seam
        m = n if n < _TAIL else _TAIL
        if n < _TAIL or (self._carry and (self._tail_hit or buf.find(_PAT, 0, 5) >= 0)):
            # a frame may start in the carried bytes (message id before buf[5])
            for k in range(m):
                seam[_TAIL + k] = buf[k]
            self._search(seam, 5, _TAIL + m, _TAIL + 5, act)
        # frames whose leading delimiter is inside this read
        self._search(buf, 5, n, n, act)
        # carry the last _TAIL bytes, if a frame can start in them at all
        if n >= _TAIL:
            self._carry = buf.find(_ZERO, n - _TAIL, n) >= 0
            if self._carry:
                for k in range(_TAIL):
                    seam[k] = buf[n - _TAIL + k]
                self._tail_hit = buf.find(_PAT, n - 7, n) >= 0
        else:
            for k in range(_TAIL):
                seam[k] = seam[n + k]
            self._carry = True
            self._tail_hit = seam.find(_PAT, 5, _TAIL) >= 0

    def _search(self, buf, lo, hi, imax, act):
        """Candidates with the message id at i in [lo, imax) and the frame inside buf[:hi]."""
        i = buf.find(_PAT, lo, hi)
        while 0 <= i < imax:
            d = i + _ENC - _MSG_AT           # the closing delimiter
            if d >= hi:
                return
            s = i - _MSG_AT
            if buf[d] == 0 and buf[s - 1] == 0 and self._decode(buf, s, d):
                r = self.raw
                if r[0] == _VF and r[3] == wire.M_ESTOP:
                    crc = r[6] | (r[7] << 8) | (r[8] << 16) | (r[9] << 24)
                    if crc32(self._crcv) & 0xFFFFFFFF == crc:
                        self.found += 1
                        act(r[1] | (r[2] << 8), r[5], crc & 0x7FFFFFFF)
            i = buf.find(_PAT, i + 1, hi)

    def _decode(self, buf, s, d):
        """COBS-decode buf[s:d] into raw; True if it is exactly an ESTOP's length."""
        raw = self.raw
        j = s
        o = 0
        while j < d:
            code = buf[j]
            j += 1
            e = j + code - 1
            if code == 0 or e > d:
                return False
            while j < e:
                c = buf[j]
                if c == 0 or o >= _RAW:
                    return False
                raw[o] = c
                o += 1
                j += 1
            if j < d:
                if o >= _RAW:
                    return False
                raw[o] = 0
                o += 1
        return o == _RAW
