"""The alarm counts a status frame reports are kept as alarms change
(hub.alarms): after any sequence of raises, clears, acknowledgements and
forgetting they equal a scan of every code."""
from mptest import SkipTest, eq, true

from hub import wire
from hub.alarms import CODES, Alarms, PRIO


def test_every_alarm_code_has_a_slot_and_a_priority():
    codes = [getattr(wire, k) for k in dir(wire) if k.startswith("ALARM_")
             and not k.endswith("_SIZE") and isinstance(getattr(wire, k), int)]
    if not codes:
        raise SkipTest("hub.wire from .mpy: its constants are folded into the code")
    for c in codes:
        true(0 < c < CODES, "ALARM code %d has no slot" % c)
        true(PRIO[c] != 0, "ALARM code %d has no priority" % c)
    eq(len(PRIO), CODES)
    eq(len(Alarms().state), CODES)


def test_kept_counts_equal_a_scan_after_every_change():
    al = Alarms()
    eq((al.count(), al.unacked_high()), (0, 0))
    codes = [c for c in range(1, CODES) if PRIO[c]]
    seed = 12345
    steps = 0
    for _ in range(3000):
        seed = (seed * 1103515245 + 12345) & 0x7FFFFFFF
        what = seed % 7
        code = codes[(seed >> 8) % len(codes)]
        if what <= 2:
            al.raise_(code, steps, value=what)
        elif what == 3:
            al.clear(code)
        elif what == 4:
            al.ack(code, high=(seed >> 16) & 1 == 1)
        elif what == 5:
            if (seed >> 12) % 8 == 0:
                al.ack(0, high=(seed >> 16) & 1 == 1)
            else:
                al.forget_cleared()
        else:
            al.clear(code)
            al.forget_cleared()
        steps += 1
        eq((al.count(), al.unacked_high()), al.recount(), "after step %d" % steps)


def test_a_high_alarm_counts_until_acknowledged_and_active_until_cleared():
    al = Alarms()
    al.raise_(wire.ALARM_RUNAWAY, 0)
    al.raise_(wire.ALARM_RUNAWAY, 5)            # again: not a new alarm
    al.raise_(wire.ALARM_DOSE_CAP, 0)
    eq((al.count(), al.unacked_high()), (2, 1))
    al.clear(wire.ALARM_RUNAWAY)                # latched: still raised
    eq((al.count(), al.unacked_high()), (2, 1))
    eq(al.ack(wire.ALARM_RUNAWAY), 1)
    eq((al.count(), al.unacked_high()), (2, 0))
    al.clear(wire.ALARM_RUNAWAY)
    al.clear(wire.ALARM_DOSE_CAP)
    eq((al.count(), al.unacked_high()), (0, 0))
    al.forget_cleared()
    eq((al.count(), al.unacked_high()), (0, 0))
