"""Frames to the host without ever waiting for it.

The board takes what its link can take now (``host_write`` returns the
count, possibly 0). What it refuses is handled here, in buffers allocated
once:

- A frame is never torn: the rest of a partly written frame stays at the
  head of the queue and goes out first at the next poll. Only a new host
  session (a new connection on a socket board) abandons it, and that host
  starts reading from its own first byte.
- Periodic telemetry (HUB_STATUS, BOT_STATES, SITE_READINGS not sent as a
  reply) goes out only straight away; while anything waits it is dropped,
  counted: the next one carries fresher numbers anyway.
- Everything else (ACKs, replies, alarms, ESTOP reports) waits in a small
  queue of whole frames: up to ``_SLOTS`` frames, kept one after the other
  in a pool of two of the largest frames (an ACK takes a few dozen bytes of
  it, not a whole frame's slot). When the queue is full (in frames or in
  bytes) the oldest waiting telemetry reply is dropped (the host can ask
  again), else the oldest waiting frame: a flood of requests never pushes
  out an ACK, an alarm or an ESTOP report while a reply could go instead.
  Drops are counted, and the episode is audited once (EV_HOST_DROP) when
  the host reads again.
- A host that has said nothing for ``_QUIET_MS`` gets at most ``_BUDGET``
  more bytes: a console nobody reads (a pseudo-terminal between ser2net
  clients) holds a few frames for the next reader, not minutes of stale
  telemetry in the kernel's buffers.

``wr_us`` is the most time the board's write calls took in one pass (a tick
or a poll) since the last HUB_STATUS: what the host link cost the loop.
"""
from array import array

from hub import wire
from hub.compat import const, ticks_diff, ticks_us

_SLOTS = const(8)          # frames waiting for the host
_POOL = 2 * wire.MAX_WIRE  # their bytes: a frame half out and the largest next to it
_QUIET_MS = const(1000)    # the host heartbeats at 4 Hz: silent this long, it may be gone
_BUDGET = const(1024)      # bytes a silent host may still be given
_EPISODE_MS = const(1000)  # shorter hiccups with nothing but telemetry lost are not audited
_SAT = const(0xFFFF)


def _periodic(out):
    """The frame COBS-encoded in ``out`` is periodic telemetry: its flags
    and message id (never 0) are one byte on from where they were built."""
    msg = out[4]
    if out[1] & wire.F_REPLY:
        return False
    return msg == wire.M_HUB_STATUS or msg == wire.M_BOT_STATES or msg == wire.M_SITE_READINGS


class HostOut:
    def __init__(self, hub):
        self.hub = hub
        self.board = hub.board
        self.pool = bytearray(_POOL)
        self.slot_at = array("H", [0] * _SLOTS)   # where each waiting frame starts
        self.slot_n = array("H", [0] * _SLOTS)
        self.head = 0
        self.count = 0
        self.used = 0              # pool bytes the waiting frames take, from slot_at[head]
        self.off = 0               # bytes of the head frame already written
        self.session = -1
        self.heard = 0             # hub.link_heard when last looked at
        self.heard_ever = False
        self.unheard = 0           # bytes written since the host was last heard
        self.skipped = 0           # periodic telemetry dropped, this episode
        self.lost = 0              # other frames dropped, since boot
        self.ep_lost = 0           # ... this episode
        self.ep_at = 0
        self.episode = False
        self.flowing = True        # the host took bytes since the last drop
        self.wr_at = 0             # the pass (its ``now``) whose writes wr_pass sums
        self.wr_pass = 0           # us in host_write in that pass
        self.wr_us = 0             # the worst pass since the last HUB_STATUS, us (saturates)

    # ------------------------------------------------------------ state --
    def _gate(self, now):
        """True while the host may be given more bytes."""
        # link_heard: any good frame from the host (host_heard means the
        # operator's signed heartbeat, which a keyless reader never sends)
        hub = self.hub
        if hub.link_heard != self.heard:
            self.heard = hub.link_heard
            self.heard_ever = True
            self.unheard = 0
        if self.heard_ever and ticks_diff(now, self.heard) < _QUIET_MS:
            return True
        return self.unheard < _BUDGET

    def room(self, now):
        """True if periodic telemetry would go out now."""
        return self.count == 0 and self.board.host_connected() and self._gate(now)

    def _begin(self, now):
        self.flowing = False
        if not self.episode:
            self.episode = True
            self.ep_at = now

    def skip(self, now):
        """Count a periodic frame not sent (not even built) for want of room."""
        self._begin(now)
        if self.skipped < _SAT:
            self.skipped += 1

    def _settle(self, now):
        """The episode ends once the host takes bytes again and nothing waits."""
        if self.episode and self.flowing and self.count == 0:
            self._end(now)

    def _end(self, now):
        self.episode = False
        if self.ep_lost or ticks_diff(now, self.ep_at) >= _EPISODE_MS:
            self.hub.record(wire.EV_HOST_DROP, 0, self.skipped, self.ep_lost)
        self.skipped = 0
        self.ep_lost = 0

    def _write(self, buf, off, n, now):
        t = ticks_us()
        w = self.board.host_write(buf, off, n)
        t = ticks_diff(ticks_us(), t)
        if now != self.wr_at:
            self.wr_at = now
            self.wr_pass = 0
        if self.wr_pass < _SAT:
            self.wr_pass += t if t > 0 else 0
        if self.wr_pass > self.wr_us:
            self.wr_us = self.wr_pass if self.wr_pass < _SAT else _SAT
        if w is None or w < 0:
            w = 0
        elif w:
            self.flowing = True
        self.unheard += w
        return w

    # ------------------------------------------------------------ flow --
    def pump(self, now):
        """Write what waits, oldest first, as far as the link takes it."""
        board = self.board
        s = board.host_session()
        if s != self.session:
            if self.session >= 0 and self.off:
                self._pop()                 # its start went to the previous host
            self.session = s
        if not board.host_connected() or not self._gate(now):
            return
        while self.count:
            k = self.head
            n = self.slot_n[k]
            self.off += self._write(self.pool, self.slot_at[k] + self.off, n - self.off, now)
            if self.off < n:
                return
            self._pop()
        self._settle(now)

    def _pop(self):
        self.used -= self.slot_n[self.head]
        self.head = (self.head + 1) % _SLOTS
        self.count -= 1
        self.off = 0

    def send(self, n, now):
        """Send ``hub.htx.out[:n]``; True if it went out or waits in the queue."""
        periodic = _periodic(self.hub.htx.out)
        self.pump(now)
        if not self.board.host_connected():
            return False                    # nobody to tell: a new host asks afresh
        if self.count == 0 and self._gate(now):
            w = self._write(self.hub.htx.out, 0, n, now)
            if w >= n:
                self._settle(now)
                return True
            if w == 0 and periodic:
                self.skip(now)              # nothing of it left: no need to keep it
                return False
            self._queue(n)
            self.off = w                    # the rest first, at the next poll
            return True
        if periodic:
            self.skip(now)
            return False
        if self.count == _SLOTS:
            self._drop_oldest(now)
        while self.used + n > _POOL:
            self._drop_oldest(now)          # the head frame alone always leaves room
        self._queue(n)
        return True

    def _queue(self, n):
        """Copy ``hub.htx.out[:n]`` behind the waiting frames (byte by byte:
        slicing would allocate), the waiting frames moved to the pool's start
        first if it does not fit after them."""
        at = self.slot_at
        h = self.head
        start = at[h] if self.count else 0
        if start + self.used + n > _POOL:
            _move(self.pool, 0, start, self.used)
            for j in range(self.count):
                at[(h + j) % _SLOTS] -= start
            start = 0
        end = start + self.used
        src = self.hub.htx.out
        dst = self.pool
        for i in range(n):
            dst[end + i] = src[i]
        k = (h + self.count) % _SLOTS
        at[k] = end
        self.slot_n[k] = n
        self.count += 1
        self.used += n

    def _drop_oldest(self, now):
        """Drop one whole frame that has not started on the wire: the oldest
        telemetry (HUB_STATUS, BOT_STATES, SITE_READINGS, replies included:
        the host can ask again) if any waits, else the oldest frame. A flood
        of requests for telemetry must not push out the ACK of a stop."""
        h = self.head
        at = self.slot_at
        sn = self.slot_n
        pool = self.pool
        start = 1 if self.off else 0        # the head half out: keep it
        j = start
        while j < self.count:
            m = pool[at[(h + j) % _SLOTS] + 4]  # the message id: the fifth COBS byte
            if m == wire.M_BOT_STATES or m == wire.M_SITE_READINGS or m == wire.M_HUB_STATUS:
                break
            j += 1
        if j == self.count:
            j = start
        if j == 0:
            self._pop()
        else:                               # close the gap, order kept
            a = (h + j) % _SLOTS
            gone = sn[a]
            tail = at[h] + self.used - at[a] - gone
            _move(pool, at[a], at[a] + gone, tail)
            while j + 1 < self.count:
                a = (h + j) % _SLOTS
                b = (h + j + 1) % _SLOTS
                at[a] = at[b] - gone
                sn[a] = sn[b]
                j += 1
            self.count -= 1
            self.used -= gone
        self._begin(now)
        if self.lost < _SAT:
            self.lost += 1
        self.ep_lost += 1


def _move(buf, dst, src, n):
    """buf[dst:dst + n] = buf[src:src + n] for dst <= src, without a copy."""
    for i in range(n):
        buf[dst + i] = buf[src + i]
