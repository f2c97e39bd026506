"""Emergency-stop tracking: which bots have confirmed the stop.

DISABLE is broadcast before anything is written (a slow flash must not delay
the stop), then the latch, then each bot must report DISABLED after the stop.
Unconfirmed bots get DISABLE again every ``_RETRY_MS``; after
``_DEADLINE_MS`` the hub reports which bots are unconfirmed and keeps
retrying every ``_LATE_RETRY_MS``, so a bot that comes back later is still
confirmed. The state change itself is the supervisor's.
"""
from hub import commands, telemetry, wire
from hub.compat import const, ticks_add, ticks_diff

_RETRY_MS = const(100)
_LATE_RETRY_MS = const(500)
_DEADLINE_MS = const(3000)


class EStop:
    def __init__(self):
        self.at = 0                     # when the stop began
        self.pending = bytearray(32)    # bit per bot not yet confirmed
        self.done = True                # all confirmed, or the deadline passed
        self.next = 0                   # next DISABLE retry
        self.source = 0                 # who asked (ESTOP payload), for the log
        self.reported = -1              # unconfirmed count last reported, -1 report now

    def begin(self, hub, now, reason, sent=False):
        """Broadcast DISABLE (unless ``sent``: the caller has), latch, confirm."""
        if not sent:
            commands.disable_all(hub, now)
        hub.state_store.latch_estop(reason)
        n = hub.swarm.n
        pend = self.pending
        for k in range(32):
            pend[k] = 0
        for i in range(n):
            pend[i >> 3] |= 1 << (i & 7)
        self.at = now
        self.next = ticks_add(now, _RETRY_MS)
        self.done = False
        self.reported = -1
        hub.record(wire.EV_ESTOP, self.source, 0, n)
        self.progress(hub, now)

    def progress(self, hub, now):
        """Confirm bots that reported DISABLED, retry the others, report."""
        if hub.state != wire.HUB_ESTOP:
            return
        sw = hub.swarm
        pend = self.pending
        at = self.at
        said = sw.said
        heard = sw.heard
        left = 0
        for i in range(sw.n):
            bit = 1 << (i & 7)
            if pend[i >> 3] & bit:
                if said[i] == wire.BOT_DISABLED and ticks_diff(heard[i], at) >= 0:
                    pend[i >> 3] &= ~bit
                else:
                    left += 1
        if left and ticks_diff(now, self.next) >= 0:
            commands.disable_pending(hub, now)
            self.next = ticks_add(now, _RETRY_MS if not self.done else _LATE_RETRY_MS)
        if not self.done and (left == 0 or ticks_diff(now, at) >= _DEADLINE_MS):
            self.done = True
            hub.record(wire.EV_ESTOP_DONE, 0, left, sw.n - left)
            self.reported = -1
        if left != self.reported:
            self.reported = left
            telemetry.estop_report(hub, left)

    def report_now(self, hub, now):
        """The operator wants the report (again) now."""
        self.reported = -1
        self.progress(hub, now)
