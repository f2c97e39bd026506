"""The audit log: append-only, hash-chained, in bounded rotating segments.

A record is ``wire.LOG_FMT`` (index u32, t ms u32, event u8, a u8, b u16,
c i32, chain 8 B), ``wire.LOG_SIZE`` bytes. Its chain is
``sha256(prev_chain + record[:LOG_CHAIN]).digest()[:8]``; the chain before
index 0 is 8 zero bytes.

Segment files ``log.NNNNNNNNNN`` (the first record's index, 10 decimal
digits) hold an 8-byte anchor (the chain before their first record, written
atomically when the segment is created) followed by up to ``per_seg``
records. At most ``max_segs`` segments are kept; the oldest is removed when a
new one starts, and the anchor lets what remains verify on its own.

Each append opens, writes, syncs and closes the segment: a power cut loses at
most the record being written, which ``open()`` at the next boot finds (file
size not a whole number of records), truncates and logs as EV_TORN.

With ``hold`` (the hub sets it), a segment holding a record the host has not
acknowledged (LOG_ACK: ``ack``, persisted in ``log.ack``) is never rotated
away: the log grows into ``reserve`` extra segments, and when those are full
too an append writes nothing, returns -1 and counts the record in ``unwritten``
(the hub latches ALARM_LOG_FULL and writes EV_LOG_LOST once there is room).
The log cannot be pushed out unpulled; what could not be written is said.

The chain itself is unkeyed: it lets the hub check its own storage, whatever
key it had when each record was written. What makes the log tamper-evident to
a reader is the keyed EV_CHECKPOINT record the hub writes after every
``wire.LOG_CHECKPOINT_EVERY`` records (``Hub.record``): its ``c`` is 31 bits of
HMAC-SHA256(key, "log" + its index + the chain before it), so a file rewritten
without some records, with the unkeyed chain recomputed, fails at the next
checkpoint; the newest records are covered by the head the hub reports in
HUB_STATUS (``log_next``, ``log_head``), which ``log pull`` keeps beside the file.
"""
import struct

from hub import wire
from hub.compat import const, sha256

PREFIX = "log."
ACK_FILE = "log.ack"     # u32: every record below it was stored by the host
_DIGITS = const(10)
_ANCHOR = const(8)  # = LOG_SIZE - LOG_CHAIN, checked by the tests
_CHUNK = const(8)   # records per read while verifying
_ZERO = bytes(_ANCHOR)
_I32_MAX = 0x7FFFFFFF  # not const: beyond a small int on 32-bit ports
_I32_MIN = -0x80000000
_U32 = 0xFFFFFFFF


def seg_name(first):
    return PREFIX + "%010d" % first


def chain_of(prev, head):
    """Chain of a record: prev chain (8 B) and the record's first LOG_CHAIN bytes."""
    h = sha256(prev)
    h.update(head)
    return h.digest()[:_ANCHOR]


def _clamp(v, lo, hi):
    return lo if v < lo else hi if v > hi else v


class AuditLog:
    def __init__(self, store, per_seg=256, max_segs=8, hold=False, reserve=1):
        self.store = store
        self.per_seg = per_seg
        self.max_segs = max_segs
        self.hold = hold         # never rotate away records the host has not acknowledged
        self.reserve = reserve   # extra segments for those
        self.acked = 0           # records below this index are stored by the host
        self.unwritten = 0       # appends refused since the log became full (hold)
        self.first_index = 0     # oldest record still stored
        self.next_index = 0      # index the next record gets
        self.head_chain = bytearray(_ANCHOR)
        self.tail_ok = True      # last segment verified at open()
        self._segs = []          # first index of each segment, ascending
        self._last_n = 0         # records in the last segment
        # the record, then room for the whole digest its chain is cut from
        # (written in place: no slice of it is made); views of its parts
        r = self._rec = bytearray(wire.LOG_CHAIN + 32)
        self._head = memoryview(r)[:wire.LOG_CHAIN]                 # what the chain covers
        self._whole = memoryview(r)[:wire.LOG_SIZE]                 # what is stored
        self._link = memoryview(r)[wire.LOG_CHAIN:wire.LOG_SIZE]    # its chain
        self._seg_first = -1     # the last segment's first index and its file name,
        self._seg_name = None    # made once per segment, not once per append
        self.dropped_first = -1  # the last rotation removed records from here
        self.dropped_n = 0
        self.since_ckpt = 0      # records appended since the last checkpoint (or boot)
        self._anc = bytearray(_ANCHOR)

    # ------------------------------------------------------------- opening --
    def _scan(self):
        segs = []
        n = len(PREFIX)
        for name in self.store.names():
            if name.startswith(PREFIX) and len(name) == n + _DIGITS and name[n:].isdigit():
                segs.append(int(name[n:]))
        segs.sort()
        return segs

    def open(self, t_ms=0):
        """Find the segments, drop a torn tail, verify the last segment.
        Returns the bytes dropped (and then logs EV_TORN with c = bytes)."""
        segs = self._scan()
        while len(segs) > self.max_segs + (self.reserve if self.hold else 0):
            self.store.remove(seg_name(segs.pop(0)))  # a cut during rotation
        self._segs = segs
        dropped = self._load_tail()
        a = self.store.read(ACK_FILE)
        if a is not None and len(a) == 4:
            self.acked = min(struct.unpack("<I", a)[0], self.next_index)
        if dropped:
            self.append(t_ms, wire.EV_TORN, 0, 0, dropped)
        return dropped

    def _load_tail(self):
        # Cut a torn last record; set next_index, head_chain, _last_n from disk.
        segs, dropped = self._segs, 0
        while segs:
            name = seg_name(segs[-1])
            size = self.store.size(name) or 0
            if size >= _ANCHOR:
                rem = (size - _ANCHOR) % wire.LOG_SIZE
                if rem:
                    self.store.truncate(name, size - rem)
                    dropped += rem
                break
            self.store.remove(name)  # anchor itself torn: never written whole
            dropped += size
            last = segs.pop()
            if not segs:
                self.next_index = last
                self.first_index = last
                self.head_chain[:] = _ZERO
        if not segs:
            self._last_n = 0
            return dropped
        first = segs[-1]
        ok, _, n, _ = self._verify_seg(first, None)
        self.tail_ok = ok
        name = seg_name(first)
        if n:  # continue from what is stored, even after a break
            self.store.read_at(name, _ANCHOR + (n - 1) * wire.LOG_SIZE + wire.LOG_CHAIN,
                               self.head_chain)
        else:
            self.store.read_at(name, 0, self.head_chain)
        self._last_n = n
        self.first_index = segs[0]
        self.next_index = first + n
        return dropped

    # ----------------------------------------------------------- appending --
    def _last_name(self):
        first = self._segs[-1]
        if first != self._seg_first:
            self._seg_name = seg_name(first)
            self._seg_first = first
        return self._seg_name

    def _held(self):
        # the oldest segment holds a record the host has not acknowledged
        return self.hold and len(self._segs) > 1 and self.acked < self._segs[1]

    def ack(self, upto):
        """LOG_ACK: the host stored every record below ``upto``. Persisted
        first (OSError); the next rotation may then drop those. Returns the mark."""
        upto = min(upto, self.next_index)
        if upto > self.acked:
            self.store.write_atomic(ACK_FILE, struct.pack("<I", upto))
            self.acked = upto
        return self.acked

    def full(self):
        """The next append would need a rotation that hold forbids."""
        return (self._segs and self._last_n >= self.per_seg
                and len(self._segs) >= self.max_segs + self.reserve and self._held())

    def _rotate(self):
        first = self.next_index
        self.store.write_atomic(seg_name(first), self.head_chain)
        self._segs.append(first)
        self._last_n = 0
        while len(self._segs) > self.max_segs and not self._held():
            gone = self._segs.pop(0)
            self.store.remove(seg_name(gone))
            # said plainly in the log itself (Hub.record writes it next)
            self.dropped_first = gone
            self.dropped_n = self._segs[0] - gone
        self.first_index = self._segs[0]

    def append(self, t_ms, event, a=0, b=0, c=0):
        """Append one record and sync it to storage; returns its index, or -1
        when ``hold`` finds the log full (counted in ``unwritten``).
        Fields are clamped to their widths (t wraps). Raises OSError."""
        if self.hold and self.full():
            self.unwritten += 1
            return -1
        if not self._segs or self._last_n >= self.per_seg:
            self._rotate()
        index = self.next_index
        r = self._rec
        # & _U32 would make a big-int temporary on a 32-bit port: only when needed
        struct.pack_into(wire.LOG_FMT, r, 0, index if index < 0x40000000 else index & _U32,
                         t_ms if 0 <= t_ms < 0x40000000 else t_ms & _U32,
                         _clamp(event, 0, 0xFF), _clamp(a, 0, 0xFF),
                         _clamp(b, 0, 0xFFFF), _clamp(c, _I32_MIN, _I32_MAX), _ZERO)
        h = sha256(self.head_chain)         # chain_of, without its slice
        h.update(self._head)
        r[wire.LOG_CHAIN:] = h.digest()
        try:
            self.store.append(self._last_name(), self._whole)
        except OSError:
            try:  # resynchronise with whatever reached the medium
                self._load_tail()
            except OSError:
                pass
            raise
        self.head_chain[:] = self._link
        self.next_index = index + 1
        self._last_n += 1
        self.since_ckpt = 0 if event == wire.EV_CHECKPOINT else self.since_ckpt + 1
        return index

    def checkpoint_due(self):
        """A keyed checkpoint is written after every CHECKPOINT_EVERY records."""
        return self.since_ckpt >= wire.LOG_CHECKPOINT_EVERY

    # ------------------------------------------------------------- reading --
    def read_into(self, start, max_count, buf, off=0):
        """Copy whole records from index max(start, first_index) into buf at off.
        Returns (count, first_index, next_index)."""
        first, nxt = self.first_index, self.next_index
        if start < first:
            start = first
        n = min(max_count, nxt - start, (len(buf) - off) // wire.LOG_SIZE)
        if n <= 0:
            return 0, first, nxt
        segs = self._segs
        si = len(segs) - 1
        while si > 0 and segs[si] > start:
            si -= 1
        mv = memoryview(buf)
        done = 0
        while done < n and si < len(segs):
            at = start + done
            end = segs[si + 1] if si + 1 < len(segs) else nxt
            k = min(n - done, end - at)
            o = off + done * wire.LOG_SIZE
            got = self.store.read_at(seg_name(segs[si]),
                                     _ANCHOR + (at - segs[si]) * wire.LOG_SIZE,
                                     mv[o:o + k * wire.LOG_SIZE])
            done += got // wire.LOG_SIZE
            if got < k * wire.LOG_SIZE:
                break
            si += 1
        return done, first, nxt

    # ----------------------------------------------------------- verifying --
    def _verify_seg(self, first, anchor):
        # (ok, first bad index or -1, whole records, chain after the last)
        name = seg_name(first)
        size = self.store.size(name)
        if size is None or size < _ANCHOR:
            return False, first, 0, None
        a = self._anc
        self.store.read_at(name, 0, a)
        if anchor is not None and a != anchor:
            return False, first, 0, None
        chain = bytes(a)
        n = (size - _ANCHOR) // wire.LOG_SIZE
        # made per check (at boot, or after a failed write), not kept
        buf = bytearray(wire.LOG_SIZE * _CHUNK)
        mv, pos = memoryview(buf), 0
        while pos < n:
            k = min(_CHUNK, n - pos)
            got = self.store.read_at(name, _ANCHOR + pos * wire.LOG_SIZE,
                                     mv[:k * wire.LOG_SIZE]) // wire.LOG_SIZE
            for j in range(got):
                o = j * wire.LOG_SIZE
                rec = struct.unpack_from(wire.LOG_FMT, buf, o)
                if rec[0] != first + pos + j:
                    return False, first + pos + j, n, chain
                if chain_of(chain, mv[o:o + wire.LOG_CHAIN]) != rec[-1]:
                    return False, first + pos + j, n, chain
                chain = rec[-1]
            if got < k:
                return False, first + pos + got, n, chain
            pos += k
        if (size - _ANCHOR) % wire.LOG_SIZE:
            return False, first + n, n, chain
        return True, -1, n, chain

    def verify(self):
        """Check everything stored: anchors, indexes, chains, continuity between
        segments and with the head kept in RAM. Returns (ok, first bad index or -1)."""
        segs = self._scan()
        chain, expect = None, None
        for first in segs:
            if expect is not None and first != expect:
                return False, expect  # a segment is missing
            anchor = _ZERO if first == 0 else chain
            ok, bad, n, chain = self._verify_seg(first, anchor)
            if not ok:
                return False, bad
            expect = first + n
        if expect is None:
            expect, chain = self.first_index, self.head_chain
        if expect != self.next_index or chain != self.head_chain:
            return False, min(expect, self.next_index)  # tail cut or rewritten
        return True, -1
