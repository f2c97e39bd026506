"""Audit log: chain, tamper detection, torn tails, rotation, resumable reads."""
import struct

from mptest import eq, true

from hub import audit, wire
from hub.audit import AuditLog, seg_name
from hub.compat import sha256
from tmpstore import TmpStore

R = wire.LOG_SIZE


class CountingStore:
    """Wraps a store and counts the reads (to show appends read nothing)."""

    def __init__(self, st):
        self.st, self.reads = st, 0

    def __getattr__(self, name):
        return getattr(self.st, name)

    def read(self, name):
        self.reads += 1
        return self.st.read(name)

    def read_at(self, name, offset, buf):
        self.reads += 1
        return self.st.read_at(name, offset, buf)


def filled(st, n, per_seg=256, max_segs=8):
    log = AuditLog(st, per_seg, max_segs)
    eq(log.open(), 0)
    for i in range(n):
        eq(log.append(1000 + i, wire.EV_CMD, i & 0xFF, i, -i), i)
    return log


def reopened(st, per_seg=256, max_segs=8):
    log = AuditLog(st, per_seg, max_segs)
    dropped = log.open(t_ms=5)
    return log, dropped


def records(st, first):
    data = st.read(seg_name(first))
    return data[:8], [data[o:o + R] for o in range(8, len(data), R)]


def rewrite(st, first, anchor, recs):
    st.write_atomic(seg_name(first), anchor + b"".join(recs))


def test_layout_comes_from_the_schema():
    eq(struct.calcsize(wire.LOG_FMT), wire.LOG_SIZE)
    eq(wire.LOG_SIZE - wire.LOG_CHAIN, 8)


def test_chain_is_sha256_of_previous_chain_and_record_head():
    with TmpStore() as st:
        filled(st, 3)
        anchor, recs = records(st, 0)
        eq(anchor, bytes(8))
        prev = anchor
        for i, rec in enumerate(recs):
            eq(struct.unpack(wire.LOG_FMT, rec)[:6], (i, 1000 + i, wire.EV_CMD, i, i, -i))
            want = sha256(prev + rec[:wire.LOG_CHAIN]).digest()[:8]
            eq(rec[wire.LOG_CHAIN:], want)
            prev = want


def test_a_fresh_log_verifies_and_reopens_where_it_left_off():
    with TmpStore() as st:
        log = filled(st, 20)
        eq(log.verify(), (True, -1))
        again, dropped = reopened(st)
        eq(dropped, 0)
        eq((again.first_index, again.next_index), (0, 20))
        eq(bytes(again.head_chain), bytes(log.head_chain))
        true(again.tail_ok)
        eq(again.append(0, wire.EV_BOOT), 20)
        eq(again.verify(), (True, -1))


def test_an_empty_log_verifies():
    with TmpStore() as st:
        log, _ = reopened(st)
        eq(log.verify(), (True, -1))
        eq(log.read_into(0, 5, bytearray(5 * R), 0), (0, 0, 0))


def test_a_flipped_byte_is_found_at_its_record():
    with TmpStore() as st:
        filled(st, 10)
        anchor, good = records(st, 0)
        for k, pos in ((0, 0), (3, 8), (6, 12), (9, 20)):  # index, event, c, chain
            recs = list(good)
            bad = bytearray(recs[k])
            bad[pos] ^= 0x01
            recs[k] = bytes(bad)
            rewrite(st, 0, anchor, recs)
            log, _ = reopened(st)
            eq(log.verify(), (False, k), "record %d byte %d" % (k, pos))
            true(not log.tail_ok)


def test_a_removed_record_is_found():
    with TmpStore() as st:
        filled(st, 10)
        anchor, recs = records(st, 0)
        rewrite(st, 0, anchor, recs[:4] + recs[5:])
        log, _ = reopened(st)
        eq(log.verify(), (False, 4))


def test_a_removed_last_record_is_found_against_the_head():
    with TmpStore() as st:
        log = filled(st, 10)
        anchor, recs = records(st, 0)
        rewrite(st, 0, anchor, recs[:9])
        eq(log.verify(), (False, 9))


def test_a_torn_tail_is_found_then_dropped_at_open_and_logged():
    with TmpStore() as st:
        log = filled(st, 7)
        st.append(seg_name(0), b"\x07" * 10)  # power cut mid-record
        eq(log.verify(), (False, 7))
        log, dropped = reopened(st)
        eq(dropped, 10)
        eq(log.next_index, 8)
        eq(log.verify(), (True, -1))
        buf = bytearray(R)
        eq(log.read_into(7, 1, buf, 0), (1, 0, 8))
        eq(struct.unpack(wire.LOG_FMT, buf)[:6], (7, 5, wire.EV_TORN, 0, 0, 10))
        log, dropped = reopened(st)
        eq(dropped, 0)


def test_a_torn_anchor_segment_is_dropped():
    with TmpStore() as st:
        filled(st, 4, per_seg=4)
        st.append(seg_name(4), b"\1\2\3")  # cut while creating the next segment
        log, dropped = reopened(st, per_seg=4)
        eq(dropped, 3)
        eq(log.next_index, 5)
        eq(log.verify(), (True, -1))


def test_rotation_keeps_a_bounded_log_that_verifies():
    with TmpStore() as st:
        log = filled(st, 50, per_seg=4, max_segs=3)
        eq(st.names(), [seg_name(40), seg_name(44), seg_name(48)])
        eq((log.first_index, log.next_index), (40, 50))
        anchor, _ = records(st, 40)
        true(anchor != bytes(8))
        eq(log.verify(), (True, -1))
        log, _ = reopened(st, per_seg=4, max_segs=3)
        eq((log.first_index, log.next_index), (40, 50))
        eq(log.verify(), (True, -1))
        for i in range(10):
            log.append(i, wire.EV_ALARM)
        eq(log.verify(), (True, -1))
        eq(len(st.names()), 3)


def test_rotation_links_segments_through_their_anchors():
    with TmpStore() as st:
        filled(st, 12, per_seg=4, max_segs=3)
        anchor, recs = records(st, 8)
        rewrite(st, 8, b"\0" * 8, recs)
        log, _ = reopened(st, per_seg=4, max_segs=3)
        eq(log.verify(), (False, 8))
        st.remove(seg_name(4))  # a missing middle segment is a gap
        rewrite(st, 8, anchor, recs)
        log, _ = reopened(st, per_seg=4, max_segs=3)
        eq(log.verify(), (False, 4))


def test_log_that_starts_at_zero_needs_the_zero_anchor():
    with TmpStore() as st:
        filled(st, 3)
        _, recs = records(st, 0)
        rewrite(st, 0, b"\1" * 8, recs)
        log, _ = reopened(st)
        eq(log.verify(), (False, 0))


def test_an_extra_segment_left_by_a_cut_rotation_is_trimmed():
    with TmpStore() as st:
        filled(st, 12, per_seg=4, max_segs=3)
        log, _ = reopened(st, per_seg=4, max_segs=2)
        eq(st.names(), [seg_name(4), seg_name(8)])
        eq(log.first_index, 4)
        eq(log.verify(), (True, -1))


def test_read_into_resumes_by_index_across_segments():
    with TmpStore() as st:
        log = filled(st, 30, per_seg=4, max_segs=5)
        eq(log.first_index, 12)
        buf = bytearray(2 + 7 * R)
        got, start = [], 0
        while True:
            n, first, nxt = log.read_into(start, 7, buf, 2)
            eq((first, nxt), (12, 30))
            if n == 0:
                break
            for j in range(n):
                got.append(struct.unpack_from(wire.LOG_FMT, buf, 2 + j * R)[0])
            start = got[-1] + 1
        eq(got, list(range(12, 30)))
        eq(log.read_into(30, 7, buf, 2)[0], 0)
        eq(log.read_into(28, 7, buf, 2)[0], 2)
        eq(log.read_into(12, 100, bytearray(3 * R + 5), 0)[0], 3)


def test_read_into_returns_the_stored_bytes():
    with TmpStore() as st:
        log = filled(st, 9, per_seg=4)
        buf = bytearray(9 * R)
        eq(log.read_into(0, 9, buf, 0), (9, 0, 9))
        stored = b"".join(records(st, f)[1][i] for f in (0, 4, 8)
                          for i in range(len(records(st, f)[1])))
        eq(bytes(buf), stored)


def test_fields_are_clamped_to_their_widths():
    with TmpStore() as st:
        log = filled(st, 0)
        log.append(2 ** 32 + 5, 300, 256, -1, 2 ** 40)
        log.append(0, -1, -5, 70000, -2 ** 40)
        buf = bytearray(2 * R)
        log.read_into(0, 2, buf, 0)
        eq(struct.unpack_from(wire.LOG_FMT, buf, 0)[1:6], (5, 255, 255, 0, 2 ** 31 - 1))
        eq(struct.unpack_from(wire.LOG_FMT, buf, R)[1:6], (0, 0, 0, 65535, -2 ** 31))
        eq(log.verify(), (True, -1))


def test_append_reads_nothing_back():
    with TmpStore() as st:
        filled(st, 5, per_seg=4)
        counting = CountingStore(st)
        log = AuditLog(counting, 4, 8)
        log.open()
        counting.reads = 0
        for i in range(10):
            log.append(i, wire.EV_STATE, 1, 0)
        eq(counting.reads, 0)
        eq(log.verify(), (True, -1))


def test_segment_names_sort_by_index():
    eq(seg_name(7), audit.PREFIX + "0000000007")
    true(seg_name(99) < seg_name(100))
