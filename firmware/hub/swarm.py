"""What the hub believes about each bot: tables allocated once.

``state`` is the hub's view (BOT_*), which can differ from what a bot says
about itself: a bot the hub quarantined stays QUARANTINED whatever it reports,
a bot not heard from is LOST. Reports are read straight out of the receive
buffer by offset, without unpacking into objects.

The tables of times and doses are 32-bit ``"i"`` arrays on every port
(``"l"`` is 64-bit on some): the viper report bookkeeping
(``hub.viperbytes.book``) addresses them as 32-bit words. Times are ticks
(below 2**30), doses saturate far below 2**30.
"""
from array import array

from hub import dose as _dose
from hub import frame as _frame
from hub import wire
from hub.compat import const, ticks_diff

_NONE = const(255)
_R = const(5)            # wire.HEADER_SIZE: payload offset of a frame
_EVERY = const(3)        # the host link is read every 4 reports of a frame
_EVERY_V = const(15)     # ... every 16 with the loop in viper (~1 k instructions each)
_SIZE = const(15)        # wire.BOT_REPORTS_REC_SIZE


class Swarm:
    def __init__(self, n):
        self.n = n
        self.state = bytearray(n)          # hub's view, BOT_*
        self.said = bytearray(n)           # last state the bot reported
        self.site = bytearray(n)
        self.activity = bytearray(n)       # measured output, percent
        self.battery = bytearray(n)
        self.health = bytearray(n)
        self.temp = array("h", [0] * n)    # C x 100
        self.ph = array("H", [0] * n)
        self.depth = array("H", [0] * n)
        self.bacteria = array("H", [0] * n)
        self.heard = array("i", [0] * n)   # ms of the last report
        self.heard_ever = bytearray(n)
        self.cmd_op = bytearray(n)         # last operation sent
        self.cmd_rate = bytearray(n)       # rate the hub wants now
        self.sent_rate = bytearray(n)      # rate last sent
        self.sent_op = bytearray(n)
        self.sent_at = array("i", [0] * n)
        self.dec_at = array("i", [0] * n)  # when the command last went down
        self.dec_n = bytearray(n)          # retries of that decrease that reset the grace
        self.target = bytearray(n)         # site the bot was sent to
        self.runaway = bytearray(n)        # consecutive ticks over command
        self.cause = bytearray(n)          # why the hub quarantined it (ALARM_*)
        # dose accounting (hub/dose.py): confirmed from the bots' counters, plus
        # a provisional part between reports
        self.dose = array("i", [0] * n)    # udu confirmed this treatment
        self.ctr = array("H", [0] * n)     # the bot's counter at its last report
        self.ctr_ok = bytearray(n)         # a counter has been heard
        self.prate = bytearray(n)          # provisional rate, percent (with margin)
        self.prev_rate = bytearray(n)      # rate sent before the last decrease, live
                                           # for a lease after it (dec_at): a bot that
                                           # missed the decrease still follows it
        self.pt = array("i", [0] * n)      # provisional accrues from this time, ms
        self.pdose = array("i", [0] * n)   # provisional udu already folded
        self.pk = bytearray(n)             # plan index the bot's dose counts for
        self.conf_total = 0
        self.pset_total = 0
        self.pfine_total = 0               # pct x ms
        self.prs_total = 0                 # sum of provisional rates
        self.acc_t = 0                     # provisional accrued up to here, ms
        # work only when something changed (control, safety)
        self.dirty = 1                     # readings or membership changed
        self.changed = 1                   # a hub-view state or target changed
        self.send_all = 1                  # hub/commands.bus_send: 1 look at every bot,
        self.send_due = 0                  # 2 do so on the next report; else at send_due
        self.send_key = -1                 # (ms); lease and hub state of the last look
        self.mid = 0                       # a bus read is being consumed (hub core)
        self.sweep_at = 0                  # next silent-bot sweep (hub/safety.py), ms
        self.mouth = 0                     # bots in the mouth, and how many of them
        self.bad = 0                       # are LOST or QUARANTINED (recounted on change)
        self.reports = 0
        # what hub.viperbytes.book hands back (0-2), and what it is handed: the
        # host-link cadence it stops at (3), the runaway margin and heat limit
        # (4, 5: set by the safety rules each tick, they screen reports) and
        # the lease parameter, ms (6, set with them). In an array, not fields:
        # each field is a slot of the instance's map.
        self.io = array("i", [0] * 7)
        for i in range(n):
            self.site[i] = _NONE
            self.target[i] = _NONE
            self.health[i] = 100
            self.pk[i] = _NONE

    def ingest(self, hub, buf, pend, now, check):
        """Apply a BOT_REPORTS frame whose payload starts at buf[5]: each
        report's fields and dose (``hub.viperbytes.book``, or its bytecode
        build ``hub.loops.book``: the hub's hottest loop), then
        ``check(hub, i, now)`` for a report that could trip a safety rule.
        The host link is read between reports: an emergency stop waits for a
        few reports, not a frame of them (a host command run there is one
        that arrived between two shorter report frames)."""
        count = buf[_R + 1]
        i = buf[_R]
        off = _R + wire.BOT_REPORTS_SIZE
        plan = hub.plan
        _dose.accrue(self, plan, now)
        t0 = hub.bus.held if hub.bus.held >= 0 else now
        book = _frame._IMPL[5]
        v = _frame.viperbytes
        every = _EVERY_V if v is not None and book is v.book else _EVERY
        io = self.io
        io[3] = every
        seen = 0
        while count > 0 and off + _SIZE <= pend:
            k = book(self, plan, buf, off, count, i, pend, now, t0, io)
            i += k
            off += k * _SIZE
            count -= k
            seen += io[0]
            why = io[2]
            if why:
                if why & 2:
                    hub.record(wire.EV_DOSE_RESTART, i - 1, 0, io[1])
                if why & 1:
                    check(hub, i - 1, now)
            if count & every == 0 and self.mid:
                hub._poll_host(now)
        self.reports += seen
        self.dirty = 1
        if self.send_all:
            self.send_all = 1              # a bot waited on a report to be sent

    def silent_ms(self, i, now):
        if not self.heard_ever[i]:
            return 0x3FFFFFFF
        return ticks_diff(now, self.heard[i])

    def counts(self, out):
        """Bots by hub-view state into ``out`` (a bytearray of 7)."""
        _frame._IMPL[8](self.state, self.n, out)

    def in_mouth(self, i):
        """Deployed somewhere (counts for the systemic rule)."""
        return self.target[i] != _NONE

    def usable(self, i):
        """May receive dose commands."""
        s = self.state[i]
        return s == wire.BOT_DEPLOYED or s == wire.BOT_ACTIVE
