# heap: 2m
"""Emergency stops first (issue 14): every host read is searched for ESTOP
frames before the parser sees it, and a flood past the parse budget is
drained at memory speed, so a stop queued behind a flood acts as soon as
its bytes are read, and a link backlogged for 100 ms is drained unparsed."""
import struct

from mptest import eq, true

from hub import wire
from hub.stopscan import StopScan
from hubkit import Rig


def _garbage(n, seed=1):
    out = bytearray(n)
    r = 12345 + seed
    for i in range(n):
        r = (r * 1103515245 + 12345) & 0x7FFFFFFF
        out[i] = (r >> 16) & 0xFF
    return out


def _estop(rig, req=None):
    """An ESTOP as a client sends it: a leading delimiter closes whatever came before."""
    req, f = rig.frame(wire.M_ESTOP, struct.pack(wire.ESTOP_FMT, 0), req=req)
    return req, b"\0" + f


def _found(data, chunk):
    sc = StopScan()
    got = []
    buf = bytearray(chunk)
    for k in range(0, len(data), chunk):
        part = data[k:k + chunk]
        for j in range(len(part)):
            buf[j] = part[j]
        sc.scan(buf, len(part), lambda seq, src, crc: got.append(seq))
    return got


def test_the_search_finds_every_stop_whatever_the_read_boundaries():
    rig = Rig(bots=2)
    data = bytearray()
    want = []
    for k in range(12):
        data += _garbage(37 + 13 * k, k)
        req, f = _estop(rig)
        want.append(req)
        data += f
    for chunk in (1, 5, 11, 12, 13, 64, 512):
        eq(_found(bytes(data), chunk), want, "read size %d" % chunk)


def test_the_search_refuses_look_alikes():
    rig = Rig(bots=2)
    _, f = _estop(rig)
    bad = bytearray(f)
    bad[8] ^= 0x01                                        # CRC no longer matches
    pause = rig.frame(wire.M_TREAT_PAUSE)[1]              # not an ESTOP
    junk = bytes(b"\x00\x05\x10\x01\x02*\x01\x05abcd\x00" * 20)
    eq(_found(bytes(bad) + pause + junk, 64), [])


def _stops_within(rig, ms):
    took = rig.run_until(lambda: rig.state() == wire.HUB_ESTOP, ms, "the stop")
    true(took <= ms, "stopped after %d ms" % took)


def test_a_stop_behind_a_garbage_flood_acts_once_the_flood_is_seen():
    rig = Rig(bots=8)
    rig.send_raw(_garbage(60000))
    req, f = _estop(rig)
    rig.send_raw(f)
    _stops_within(rig, 200)                               # flood seen after 100 ms
    eq(rig.acks[req][0], wire.ACKS_ACCEPTED)
    true(rig.hub.stops.drained > 20000, "the flood was drained, not parsed")


def test_a_burst_below_the_flood_threshold_is_parsed_whole():
    rig = Rig(bots=8)
    reqs = []
    burst = bytearray()
    for k in range(200):                                  # 3 KB in one go: a few polls' worth
        req, fr = rig.frame(wire.M_HOLD, b"\xff")
        reqs.append(req)
        burst += fr
    rig.send_raw(burst)
    rig.run(100)
    eq(len([r for r in reqs if r in rig.acks]), len(reqs))
    eq(rig.hub.stops.drained, 0)


def test_a_stop_behind_a_flood_of_unsigned_commands_acts_once_the_flood_is_seen():
    rig = Rig(bots=8)
    flood = bytearray()
    for k in range(6000):
        flood += rig.frame(wire.M_HOLD, b"\xff")[1]
    rig.send_raw(flood)
    req, f = _estop(rig)
    rig.send_raw(f)
    _stops_within(rig, 200)
    eq(rig.acks[req][0], wire.ACKS_ACCEPTED)
    rig.run(1100)                                         # the once-a-second summary
    recs = rig.events(wire.EV_RX_DRAIN)
    true(recs and recs[-1][5] > 0, "the drained bytes are on record")


def test_a_stop_found_by_the_search_runs_once_and_its_resend_gets_the_same_ack():
    rig = Rig(bots=4)
    req, f = _estop(rig)
    rig.send_raw(f)
    rig.send_raw(f)                                       # the client repeats it
    rig.poll()
    eq(rig.state(), wire.HUB_ESTOP)
    ran = [r for r in rig.events(wire.EV_CMD) if r[3] == wire.M_ESTOP and r[4] == req]
    eq(len(ran), 1)
    acks = [a for a in rig.ack_log if a[0] == req]
    true(acks, "an ACK")
    for a in acks:
        eq(a[1:3], (wire.M_ESTOP, wire.ACKS_ACCEPTED))
