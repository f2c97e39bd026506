"""Persistent identity and safety state: key, replay counter, estop, consent."""
from mptest import eq, raises, true

from hub import hmac, state, wire
from hub.state import State
from tmpstore import TmpStore

KEY = bytes(range(1, 33))


def keyed_store(st, key=KEY):
    st.write_atomic(state.KEY_FILE, key)
    return st


def booted(st, cause=wire.RESET_POWER, hub_id=0x1234):
    s = State(st, hub_id)
    s.boot(cause)
    return s


class BrokenWrites:
    """A store whose reads work and whose writes fail."""

    def __init__(self, st):
        self.st = st

    def read(self, name):
        return self.st.read(name)

    def write_atomic(self, name, data):
        raise OSError(5)


def test_fresh_hub_boots_unkeyed_and_refuses_auth():
    with TmpStore() as st:
        s = State(st, 0x1234)
        eq(s.boot(wire.RESET_POWER), state.LOAD_FRESH)
        eq((s.hub_id, s.boots, s.keyed, s.estop, s.counter), (0x1234, 1, False, False, 0))
        eq(s.authorize(b"frame", 1, bytes(8)), wire.WHY_NO_KEY)
        true(not s.verify_tag(b"frame", bytes(8)))


def test_boot_counts_and_records_reset_cause():
    with TmpStore() as st:
        booted(st)
        s = booted(st, wire.RESET_WATCHDOG, hub_id=99)
        eq((s.hub_id, s.boots, s.reset_cause), (0x1234, 2, wire.RESET_WATCHDOG))
        eq(s.loaded, state.LOAD_OK)


def test_fresh_hub_without_an_id_gets_a_nonzero_one():
    with TmpStore() as st:
        s = booted(st, hub_id=0)
        true(s.hub_id != 0)
        eq(booted(st, hub_id=0).hub_id, s.hub_id)


def test_key_file_makes_the_hub_keyed_only_if_well_formed():
    with TmpStore() as st:
        true(booted(keyed_store(st)).keyed)
        for bad in (KEY[:31], KEY + b"x", bytes(32)):
            keyed_store(st, bad)
            true(not booted(st).keyed, "key %r" % (bad,))


def test_key_is_not_exposed_by_any_public_attribute():
    with TmpStore() as st:
        s = booted(keyed_store(st))
        for name in dir(s):
            if not name.startswith("_"):
                v = getattr(s, name)
                true(not (isinstance(v, (bytes, bytearray)) and KEY in bytes(v)), name)


def test_tags_verify_in_constant_time_compare():
    with TmpStore() as st:
        s = booted(keyed_store(st))
        t = hmac.tag(KEY, b"frame", wire.TAG_SIZE)
        true(s.verify_tag(b"frame", t))
        true(s.verify_tag(memoryview(b"xframe")[1:], t))
        true(not s.verify_tag(b"framf", t))
        true(not s.verify_tag(b"frame", t[:7]))
        true(not s.verify_tag(b"frame", hmac.tag(KEY, b"frame", 16)))


def test_replayed_or_old_counter_is_rejected():
    with TmpStore() as st:
        s = booted(keyed_store(st))
        t = hmac.tag(KEY, b"cmd")
        eq(s.authorize(b"cmd", 5, t), wire.WHY_NONE)
        eq(s.authorize(b"cmd", 5, t), wire.WHY_AUTH_REPLAY)
        eq(s.authorize(b"cmd", 4, t), wire.WHY_AUTH_REPLAY)
        eq(s.authorize(b"cmd", 6, t), wire.WHY_NONE)
        true(not s.check_counter(2 ** 32))
        true(not s.accept_counter(6))


def test_bad_tag_does_not_move_the_counter():
    with TmpStore() as st:
        s = booted(keyed_store(st))
        eq(s.authorize(b"cmd", 9, bytes(8)), wire.WHY_AUTH_BAD)
        eq(s.counter, 0)


def test_counter_high_water_survives_a_reboot():
    with TmpStore() as st:
        s = booted(keyed_store(st))
        true(s.accept_counter(41))
        s = booted(st)
        eq(s.counter, 41)
        true(not s.check_counter(41))
        eq(s.authorize(b"cmd", 41, hmac.tag(KEY, b"cmd")), wire.WHY_AUTH_REPLAY)
        true(s.check_counter(42))


def test_counter_that_cannot_be_persisted_is_refused_but_stays_burnt():
    with TmpStore() as st:
        booted(keyed_store(st))
        s = State(BrokenWrites(st))
        s.load()
        raises(OSError, s.accept_counter, 3)
        true(not s.check_counter(3))
        eq(s.authorize(b"c", 4, hmac.tag(KEY, b"c")), wire.WHY_STORAGE)


def test_estop_latch_survives_reboot_and_keeps_the_first_reason():
    with TmpStore() as st:
        s = booted(st)
        true(s.latch_estop(wire.ALARM_SYSTEMIC))
        true(s.latch_estop(wire.ALARM_ESTOP))
        s = booted(st, wire.RESET_WATCHDOG)
        eq((s.estop, s.estop_reason), (True, wire.ALARM_SYSTEMIC))
        s.clear_estop()
        s = booted(st)
        eq((s.estop, s.estop_reason), (False, 0))


def test_estop_latches_in_ram_even_when_storage_fails():
    with TmpStore() as st:
        booted(st)
        s = State(BrokenWrites(st))
        s.load()
        true(not s.latch_estop(wire.ALARM_ESTOP))
        true(s.estop)
        raises(OSError, s.clear_estop)
        eq((s.estop, s.estop_reason), (True, wire.ALARM_ESTOP))


def test_consent_is_cleared_at_boot():
    with TmpStore() as st:
        s = booted(st)
        s.set_consent(123456)
        eq(s.consent, 123456)
        s.save()
        eq(booted(st).consent, None)
        s.clear_consent()
        eq(s.consent, None)


def test_corrupt_primary_falls_back_to_the_mirror():
    with TmpStore() as st:
        s = booted(keyed_store(st))
        s.accept_counter(77)
        s.latch_estop(wire.ALARM_RUNAWAY)
        data = bytearray(st.read(state.FILE))
        data[12] ^= 0xFF
        st.write_atomic(state.FILE, data)
        s = State(st)
        eq(s.load(), state.LOAD_MIRROR)
        eq((s.counter, s.estop, s.estop_reason, s.hub_id), (77, True, wire.ALARM_RUNAWAY, 0x1234))
        st.remove(state.FILE)
        eq(State(st).load(), state.LOAD_MIRROR)


def test_newer_copy_wins_when_both_are_valid():
    with TmpStore() as st:
        s = booted(st)
        s.accept_counter(1)
        older = st.read(state.FILE)
        s.accept_counter(2)
        st.write_atomic(state.MIRROR, older)  # a cut between the two writes
        s = State(st)
        eq(s.load(), state.LOAD_OK)
        eq(s.counter, 2)


def test_no_valid_copy_comes_up_latched():
    with TmpStore() as st:
        booted(st)
        st.write_atomic(state.FILE, b"garbage")
        st.remove(state.MIRROR)
        s = State(st)
        eq(s.load(), state.LOAD_CORRUPT)
        eq((s.estop, s.estop_reason), (True, wire.ALARM_ESTOP))


def test_key_rotation_unwraps_persists_and_retires_the_old_key():
    import struct
    with TmpStore() as st:
        s = booted(keyed_store(st))
        new = bytes(range(100, 132))
        pad = hmac.hmac_sha256(KEY, struct.pack("<I", 7))
        wrapped = bytes(new[i] ^ pad[i] for i in range(32))
        s.accept_counter(7)
        s.rotate_key(wrapped, 7)
        eq(st.read(state.KEY_FILE), new)
        s = booted(st)
        eq(s.counter, 0)  # a fresh key starts a fresh counter
        true(s.verify_tag(b"m", hmac.tag(new, b"m")))
        true(not s.verify_tag(b"m", hmac.tag(KEY, b"m")))
        raises(ValueError, s.rotate_key, wrapped[:31], 8)
