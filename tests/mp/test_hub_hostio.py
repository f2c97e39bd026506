# heap: 512k
"""A host that reads slowly or not at all (hub/hostout.py): the hub never
waits for it, telemetry goes first, ACKs, alarms and reports wait in a small
queue, whatever is dropped is counted and audited once per episode, a frame
is never torn, and a silent host is given a few frames, not a backlog.

The null board's ``room`` is what the host link takes: 0 is a host that
stopped reading, a small number a host that reads a few bytes per tick."""
import struct
import time

from mptest import eq, true

from boards.null import Board
from hub import wire
from hub.core import Hub
from hubkit import Rig

SLOTS = 8


def _treating():
    rig = Rig(bots=8)
    rig.treating(((10, 4),))
    eq(rig.state(), wire.HUB_TREATING)
    return rig


def _alarm_acks(rig, k):
    return [rig.send(wire.M_ALARM_ACK, struct.pack(wire.ALARM_ACK_FMT, 0)) for _ in range(k)]


def test_a_host_that_stops_reading_gets_every_ack_when_it_reads_again_and_no_telemetry_backlog():
    rig = _treating()
    rig.board.room = 0
    reqs = _alarm_acks(rig, 5)
    rig.run(3000)
    eq(rig.state(), wire.HUB_TREATING)          # the loop ran on: heartbeats heard, bots led
    eq([r for r in reqs if r in rig.acks], [])
    true(rig.hub.out.skipped > 20, "periodic telemetry dropped while unread: %d"
         % rig.hub.out.skipped)
    n = len(rig.statuses)
    rig.board.room = None
    rig.run(100)
    eq([a[0] for a in rig.ack_log if a[0] in reqs], reqs)      # each once, in order
    eq(rig.host_bad, 0)
    true(len(rig.statuses) - n <= 3, "a backlog of statuses: %d" % (len(rig.statuses) - n))
    eq(rig.hub.out.lost, 0)
    drops = rig.events(wire.EV_HOST_DROP)
    eq(len(drops), 1)                           # the episode, once, nothing important lost
    true(drops[0][4] > 20 and drops[0][5] == 0, repr(drops))


def test_a_full_queue_drops_the_oldest_frames_counts_them_and_audits_the_episode_once():
    rig = _treating()
    rig.board.room = 0
    reqs = _alarm_acks(rig, SLOTS + 4)
    rig.run(500)
    reqs += _alarm_acks(rig, 2)
    rig.run(500)
    eq(rig.hub.out.lost, 6)
    rig.board.room = None
    rig.run(200)
    got = [a[0] for a in rig.ack_log if a[0] in reqs]
    eq(got, reqs[6:])                           # the newest kept, in order
    eq(rig.host_bad, 0)
    drops = rig.events(wire.EV_HOST_DROP)
    eq(len(drops), 1)
    eq(drops[0][5], 6)
    eq(rig.statuses[-1]["host_lost"], 6)
    rig.board.room = 0                          # a second episode: a second record
    _alarm_acks(rig, SLOTS + 1)
    rig.run(200)
    rig.board.room = None
    rig.run(200)
    eq([d[5] for d in rig.events(wire.EV_HOST_DROP)], [6, 1])
    eq(rig.statuses[-1]["host_lost"], 7)


def test_a_host_that_reads_a_few_bytes_a_tick_gets_whole_frames_only():
    rig = _treating()
    reqs = []
    for k in range(100):                        # 5 bytes per 20 ms tick: 250 B/s
        rig.board.room = 5
        if k % 10 == 0:
            reqs += _alarm_acks(rig, 1)
        rig.step()
    rig.board.room = None
    rig.run(200)
    eq(rig.host_bad, 0)                         # not one torn frame
    eq([a[0] for a in rig.ack_log if a[0] in reqs], reqs)
    eq(rig.state(), wire.HUB_TREATING)


def test_an_estop_is_acknowledged_first_when_the_host_reads_again():
    rig = _treating()
    rig.board.room = 0
    rig.run(500)
    req = rig.send(wire.M_ESTOP, struct.pack(wire.ESTOP_FMT, 0))
    rig.run(500)
    eq(rig.state(), wire.HUB_ESTOP)             # stopping never waits for the host
    rig.board.room = None
    first = len(rig.ack_log)
    rig.run(100)
    eq(rig.ack_log[first][0], req)
    eq(rig.ack_log[first][2], wire.ACKS_ACCEPTED)
    true(rig.estop_reports, "ESTOP_REPORT delivered")


def test_a_silent_host_is_given_a_few_frames_not_a_backlog():
    rig = _treating()
    rig.heartbeat = False                       # the reader went away (ser2net between clients)
    rig.board.room = None                       # and the kernel would buffer everything
    rig._collect = lambda: None                 # nobody decodes: bytes pile up
    rig.run(10000)
    backlog = len(rig.board.host_out)
    true(backlog <= 1024 + wire.MAX_WIRE, "%d bytes waiting for the next reader" % backlog)
    true(rig.state() != wire.HUB_TREATING, "the operator-gone rule acted")
    del rig._collect                            # the next reader: stale frames, then HELLO
    rig.heartbeat = True
    reply = rig.hello()
    true(reply is not None, "HELLO answered at once")


def test_hub_status_reports_the_worst_tick_lateness_then_measures_afresh():
    rig = _treating()
    rig.hub.late = 37
    rig.request(wire.REQ_STATUS)
    eq(rig.last[wire.M_HUB_STATUS]["late_ms"], 37)
    rig.request(wire.REQ_STATUS)
    eq(rig.last[wire.M_HUB_STATUS]["late_ms"], 0)
    rig.hub.late = 70000                        # saturates, never wraps
    rig.request(wire.REQ_STATUS)
    eq(rig.last[wire.M_HUB_STATUS]["late_ms"], 0xFFFF)


def _busy(us):
    t = time.ticks_us()
    while time.ticks_diff(time.ticks_us(), t) < us:
        pass


def test_hub_status_reports_the_time_the_host_writes_took_then_measures_afresh():
    rig = _treating()
    fast = rig.board.host_write

    def slow(buf, off, n):
        _busy(8000)                             # a link whose write call blocks for 8 ms
        return fast(buf, off, n)

    rig.board.host_write = slow
    rig.request(wire.REQ_STATUS)
    rig.board.host_write = fast
    rig.request(wire.REQ_STATUS)                # carries the slow write before it
    took = rig.last[wire.M_HUB_STATUS]["host_us"]
    true(took >= 8000, "host_us %d after an 8 ms write" % took)
    rig.run(200)                                # passes of the loop later (a pass is one ms)
    rig.request(wire.REQ_STATUS)
    true(rig.last[wire.M_HUB_STATUS]["host_us"] < 8000, "measured afresh: %d"
         % rig.last[wire.M_HUB_STATUS]["host_us"])

    def stuck(buf, off, n):
        _busy(70000)
        return fast(buf, off, n)

    rig.board.host_write = stuck
    rig.request(wire.REQ_STATUS)
    rig.board.host_write = fast
    rig.request(wire.REQ_STATUS)
    eq(rig.last[wire.M_HUB_STATUS]["host_us"], 0xFFFF)      # saturates, never wraps


class _StallingBoard(Board):
    """Sleeps exactly as asked, except once: tick 20 takes 50 ms of a 20 ms period,
    so the next tick starts 30 ms past its due time."""

    def __init__(self):
        Board.__init__(self)
        self.ticks = 0

    def wdt_feed(self):
        Board.wdt_feed(self)
        self.ticks += 1
        if self.ticks == 20:
            self.clock += 50

    def stopping(self):
        return self.ticks >= 40


def test_the_loop_measures_how_late_a_tick_started():
    b = _StallingBoard()
    hub = Hub(b, 4)
    hub.run()
    eq(hub.late, 30)
    eq(hub.late_n, 1)                           # over 5 ms (a quarter of 20 ms) late: once
    hub2 = Hub(_OnTime(), 4)
    hub2.run()
    eq((hub2.late, hub2.late_n), (0, 0))


class _OnTime(_StallingBoard):
    def wdt_feed(self):
        Board.wdt_feed(self)
        self.ticks += 1


def test_a_flood_of_telemetry_requests_drops_replies_not_the_ack_of_a_command():
    rig = _treating()
    rig.board.room = 0
    req = _alarm_acks(rig, 1)[0]
    for _ in range(SLOTS + 3):
        rig.send(wire.M_REQUEST, struct.pack(wire.REQUEST_FMT, wire.REQ_BOTS))
    rig.run(500)
    eq(rig.hub.out.lost, 4)                     # 1 ACK + 11 replies in 8 slots
    n = len(rig.ack_log)
    rig.board.room = None
    rig.run(200)
    eq([a[0] for a in rig.ack_log[n:] if a[0] == req], [req])   # the ACK outlived them
    eq(rig.host_bad, 0)


def test_large_replies_fill_the_pool_in_bytes_and_still_never_push_out_an_ack():
    rig = Rig(bots=64)
    rig.board.room = 0
    req = _alarm_acks(rig, 1)[0]
    for _ in range(5):                          # 64-bot BOT_STATES replies: a few fit
        rig.send(wire.M_REQUEST, struct.pack(wire.REQUEST_FMT, wire.REQ_BOTS))
    rig.run(200)
    out = rig.hub.out
    true(out.count < SLOTS and out.lost > 0, "dropped for bytes: %d waiting, %d lost"
         % (out.count, out.lost))
    true(out.used <= len(out.pool), "%d bytes waiting" % out.used)
    n = len(rig.ack_log)
    rig.board.room = None
    rig.run(200)
    eq([a[0] for a in rig.ack_log[n:] if a[0] == req], [req])   # the ACK outlived them
    eq(rig.host_bad, 0)                         # every frame whole
