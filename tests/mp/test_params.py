"""The parameter table: bounds, cross-checks, persistence, corruption."""
import gc
import struct

from mptest import eq, true

from hub import params, wire
from hub.compat import crc32
from hub.params import Params
from tmpstore import TmpStore


class FailingStore:
    def read(self, name):
        return None

    def write_atomic(self, name, data):
        raise OSError(5)


def test_index_constants_name_their_entries():
    # from source; a build folds the names into the code that reads them (protocol/fold.py)
    names = [n for n in dir(params) if n.startswith("P_")]
    if names:
        eq(len(names), params.COUNT)
    for n in names:
        i = getattr(params, n)
        eq(params.TABLE[i][0], n[2:].lower())
    eq(len(params.TABLE), params.COUNT)
    eq(Params().count, params.COUNT)


def test_entries_fit_the_wire_and_defaults_sit_inside_bounds():
    p = Params()
    true(p.valid())
    true(params.COUNT <= 255)
    for i in range(p.count):
        name, unit, value, lo, hi, default = p.info(i)
        true(len(name) <= 16 and len(unit) <= 6, name)
        for v in (value, lo, hi, default):
            true(isinstance(v, int) and -2 ** 31 <= v < 2 ** 31, name)
        true(lo <= default <= hi, name)
        eq(value, default)


def test_defaults_follow_the_design():
    p = Params()
    want = {"tick_hz": 50, "hb_pause_ms": 1000, "hb_recall_ms": 30000,
            "bot_lost_ms": 500, "bot_quar_ms": 2000, "runaway_ticks": 1,
            "systemic_pct": 20, "bus_loss_pct": 30, "lease_ms": 2000,
            "sens_throttle": 600, "sens_pause": 800, "heat_throttle": 4100,
            "heat_quar": 4200, "wdt_ms": 2000}
    for name, value in want.items():
        eq(p.get(p.find(name)), value, name)


def test_find_takes_str_or_padded_bytes():
    p = Params()
    eq(p.find("lease_ms"), params.P_LEASE_MS)
    eq(p.find(b"lease_ms\0\0\0\0\0\0\0\0"), params.P_LEASE_MS)
    eq(p.find("nope"), -1)


def test_out_of_bounds_is_refused_naming_the_bound():
    p = Params()
    eq(p.set(params.P_TICK_HZ, 9), (False, wire.WHY_BOUNDS, 10))
    eq(p.set(params.P_TICK_HZ, 101), (False, wire.WHY_BOUNDS, 100))
    eq(p.get(params.P_TICK_HZ), 50)
    eq(p.set(params.P_TICK_HZ, 100), (True, wire.WHY_NONE, 100))
    eq(p.set(params.P_TICK_HZ, 10), (True, wire.WHY_NONE, 10))
    eq(p.get(params.P_TICK_HZ), 10)


def test_unknown_index_or_non_int_is_a_bad_argument():
    p = Params()
    eq(p.set(params.COUNT, 1)[:2], (False, wire.WHY_BAD_ARG))
    eq(p.set(-1, 1)[:2], (False, wire.WHY_BAD_ARG))
    eq(p.set(params.P_TICK_HZ, "50")[:2], (False, wire.WHY_BAD_ARG))


def test_cross_checks_refuse_a_set_that_breaks_one():
    for lo, hi in params.LESS:
        p = Params()
        name = params.TABLE[lo][0]
        # bring hi down so that lo can reach it inside its own bounds
        vhi = max(params.TABLE[hi][3], p.get(lo) + 1)
        true(p.set(hi, vhi)[0], name)
        vlo = p.get(lo)
        true(vhi <= params.TABLE[lo][4], name)
        eq(p.set(lo, vhi), (False, wire.WHY_BOUNDS, vhi), name)
        eq(p.set(lo, vhi + 1)[:2], (False, wire.WHY_BOUNDS), name)
        want = vlo if vlo >= params.TABLE[hi][3] else params.TABLE[hi][3]
        eq(p.set(hi, vlo), (False, wire.WHY_BOUNDS, want), name)
        eq((p.get(lo), p.get(hi)), (vlo, vhi), name)
        true(p.valid())


def test_cross_checks_cover_the_named_pairs():
    pairs = [(params.TABLE[a][0], params.TABLE[b][0]) for a, b in params.LESS]
    for pair in (("sens_throttle", "sens_pause"), ("heat_throttle", "heat_quar"),
                 ("hb_pause_ms", "hb_recall_ms"), ("bot_lost_ms", "bot_quar_ms")):
        true(pair in pairs, pair)


def test_set_persists_and_load_restores():
    with TmpStore() as st:
        p = Params(st)
        eq(p.load(), params.LOAD_MISSING)
        eq(p.set(params.P_LEASE_MS, 1500), (True, wire.WHY_NONE, 1500))
        q = Params(st)
        eq(q.load(), params.LOAD_OK)
        eq(q.get(params.P_LEASE_MS), 1500)
        eq(q.loaded, params.LOAD_OK)


def test_failed_save_keeps_the_old_value():
    p = Params(FailingStore())
    eq(p.set(params.P_LEASE_MS, 1500), (False, wire.WHY_STORAGE, 0))
    eq(p.get(params.P_LEASE_MS), 2000)


def _saved(st, value=1500):
    p = Params(st)
    p.set(params.P_LEASE_MS, value)
    return bytearray(st.read(params.FILE))


def test_corrupt_file_loads_defaults_and_says_so():
    with TmpStore() as st:
        good = _saved(st)
        for pos in range(len(good)):
            bad = bytearray(good)
            bad[pos] ^= 0x40
            st.write_atomic(params.FILE, bad)
            p = Params(st)
            p._v[params.P_LEASE_MS] = 999  # make sure load resets it
            eq(p.load(), params.LOAD_CORRUPT, "flipped byte %d" % pos)
            eq(p.get(params.P_LEASE_MS), 2000)
        for data in (good[:-1], good + b"x", b"", b"NHPA"):
            st.write_atomic(params.FILE, data)
            eq(Params(st).load(), params.LOAD_CORRUPT)


def _resealed(data):
    data = bytearray(data)
    struct.pack_into("<I", data, len(data) - 4, crc32(data[:-4]))
    return data


def test_file_from_another_table_loads_defaults():
    with TmpStore() as st:
        data = _saved(st)
        data[8] ^= 1  # layout CRC
        st.write_atomic(params.FILE, _resealed(data))
        p = Params(st)
        eq(p.load(), params.LOAD_STALE)
        eq(p.get(params.P_LEASE_MS), 2000)


def test_out_of_bounds_values_in_a_sealed_file_load_defaults():
    with TmpStore() as st:
        data = _saved(st)
        off = 12 + 4 * params.P_SENS_THROTTLE
        for bad in (params.TABLE[params.P_SENS_THROTTLE][4] + 1, 850):  # bound, cross-check
            struct.pack_into("<i", data, off, bad)
            st.write_atomic(params.FILE, _resealed(data))
            p = Params(st)
            eq(p.load(), params.LOAD_INVALID)
            eq(p.get(params.P_SENS_THROTTLE), 600)
            eq(p.get(params.P_LEASE_MS), 2000)
            true(p.valid())


def test_get_allocates_nothing():
    if not hasattr(gc, "mem_alloc"):
        return
    p = Params()
    gc.collect()
    before = gc.mem_alloc()
    total = 0
    for _ in range(100):
        for i in range(params.COUNT):
            total += p.get(i) & 1
    eq(gc.mem_alloc() - before, 0)
