"""Alarms with priorities: HIGH alarms latch until the operator acknowledges.

One slot per alarm code, allocated once. Raising an active alarm updates
its value but is not a new event. A HIGH alarm whose condition has gone stays
RAISED (latched) until acknowledged; lower priorities clear by themselves.
"""
from array import array

from hub import wire
from hub.compat import const

_N = const(18)          # the ALARM_* codes are 1..17 (0 is none): one slot each
_FREE = const(255)
CODES = _N              # codes below this: what a scan of every code loops over

# priority per alarm code: the hazard table's view of each alarm
PRIO = bytearray(_N)
for _code, _prio in (
    (wire.ALARM_LINK_LOST, wire.PRIO_MEDIUM),
    (wire.ALARM_LINK_RECALL, wire.PRIO_HIGH),
    (wire.ALARM_BOT_LOST, wire.PRIO_MEDIUM),
    (wire.ALARM_BOT_QUARANTINE, wire.PRIO_MEDIUM),
    (wire.ALARM_RUNAWAY, wire.PRIO_HIGH),
    (wire.ALARM_SYSTEMIC, wire.PRIO_HIGH),
    (wire.ALARM_DOSE_CAP, wire.PRIO_LOW),
    (wire.ALARM_SENS_THROTTLE, wire.PRIO_MEDIUM),
    (wire.ALARM_SENS_PAUSE, wire.PRIO_HIGH),
    (wire.ALARM_HEAT_THROTTLE, wire.PRIO_MEDIUM),
    (wire.ALARM_HEAT_QUARANTINE, wire.PRIO_HIGH),
    (wire.ALARM_WATCHDOG, wire.PRIO_HIGH),
    (wire.ALARM_ESTOP, wire.PRIO_HIGH),
    (wire.ALARM_BUS_LOSS, wire.PRIO_HIGH),
    (wire.ALARM_UNAUTHORIZED, wire.PRIO_MEDIUM),
    (wire.ALARM_LOG_TORN, wire.PRIO_LOW),
    (wire.ALARM_LOG_FULL, wire.PRIO_HIGH),
):
    PRIO[_code] = _prio


class Alarms:
    def __init__(self):
        self.state = bytearray(_N)          # ALST_* or _FREE
        for i in range(_N):
            self.state[i] = _FREE
        self.where = bytearray(2 * _N)      # the bot, then (at _N + code) the site
        self.value = array("l", [0] * (2 * _N))     # the value, then (_N + code) when raised
        self.changed = 0                    # bit per code with news for the host
        # kept as states change, so a status frame does not scan the codes
        self.n_active = 0                   # RAISED or ACKED
        self.n_high = 0                     # HIGH and RAISED (unacknowledged)

    def raise_(self, code, now, bot=255, site=255, value=0):
        """Raise ``code``; True if it was not already active (a new event)."""
        st = self.state[code]
        new = st != wire.ALST_RAISED and st != wire.ALST_ACKED
        if new:
            self.state[code] = wire.ALST_RAISED
            self.value[_N + code] = now
            self.changed |= 1 << code
            self.n_active += 1
            if PRIO[code] == wire.PRIO_HIGH:
                self.n_high += 1
        self.where[code] = bot
        self.where[_N + code] = site
        self.value[code] = value
        return new

    def clear(self, code):
        """The condition went away. HIGH alarms stay until acknowledged."""
        st = self.state[code]
        if st == _FREE or st == wire.ALST_CLEARED:
            return
        if PRIO[code] == wire.PRIO_HIGH and st == wire.ALST_RAISED:
            return
        self.n_active -= 1                  # it was RAISED (not HIGH) or ACKED
        self.state[code] = wire.ALST_CLEARED
        self.changed |= 1 << code

    def ack(self, code=0, high=True):
        """Acknowledge one code (0: all); returns how many were acknowledged.
        ``high`` False leaves HIGH alarms raised (an unsigned acknowledgement)."""
        n = 0
        for c in range(1, _N):
            if not high and PRIO[c] == wire.PRIO_HIGH:
                continue
            if (code == 0 or c == code) and self.state[c] == wire.ALST_RAISED:
                self.state[c] = wire.ALST_ACKED
                self.changed |= 1 << c
                if PRIO[c] == wire.PRIO_HIGH:
                    self.n_high -= 1
                n += 1
        return n

    def active(self, code):
        st = self.state[code]
        return st == wire.ALST_RAISED or st == wire.ALST_ACKED

    def count(self):
        """Active alarms (RAISED or ACKED): kept as they change."""
        return self.n_active

    def unacked_high(self):
        """HIGH alarms not yet acknowledged: kept as they change."""
        return self.n_high

    def recount(self):
        """``count()`` and ``unacked_high()`` by scanning every code (tests
        check the kept counts against it)."""
        n = h = 0
        for c in range(1, _N):
            st = self.state[c]
            if st == wire.ALST_RAISED or st == wire.ALST_ACKED:
                n += 1
            if st == wire.ALST_RAISED and PRIO[c] == wire.PRIO_HIGH:
                h += 1
        return n, h

    def forget_cleared(self):
        for c in range(1, _N):
            if self.state[c] == wire.ALST_CLEARED:
                self.state[c] = _FREE
