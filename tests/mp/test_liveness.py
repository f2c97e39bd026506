# heap: 1m
"""Liveness that means the operator, and fresh commands (issue 14).

Only a signed heartbeat (fresh, expiring later than the last one taken)
keeps a treatment running; unsigned heartbeats keep the link up, not the
energy. A signed command carries the hub time by which it must arrive and is
refused as STALE when it comes later, or claims to expire further ahead than
the fresh_ms parameter allows."""
import struct

from mptest import eq, true

from hub import params as P
from hub import wire
from hubkit import Rig

SITE = 10


def _treating():
    rig = Rig(bots=4)
    rig.treating(((SITE, 4),))
    rig.run(500)
    eq(rig.state(), wire.HUB_TREATING)
    return rig


def test_signed_heartbeats_keep_a_treatment_running():
    rig = _treating()
    rig.run(3000)
    eq(rig.state(), wire.HUB_TREATING)


def test_unsigned_heartbeats_do_not_keep_a_treatment_running():
    rig = _treating()
    rig.sign_hb = False                       # someone on the link, not the operator
    rig.run(1500)
    eq(rig.state(), wire.HUB_PAUSED)
    eq(rig.hub.reason, wire.ALARM_LINK_LOST)


def test_a_replayed_signed_heartbeat_does_not_keep_a_treatment_running():
    rig = _treating()
    _, hb = rig.frame(wire.M_HEARTBEAT, struct.pack(wire.HEARTBEAT_FMT, rig.now), sign=True,
                      counter=rig.counter, expires=rig.now + 900)
    rig.heartbeat = False
    for _ in range(8):                         # the captured frame, again and again
        rig.send_raw(hb)
        rig.run(250)
    eq(rig.state(), wire.HUB_PAUSED)


def test_a_heartbeat_signed_with_another_key_does_not_count():
    rig = _treating()
    rig.heartbeat = False
    for _ in range(8):
        rig.send(wire.M_HEARTBEAT, struct.pack(wire.HEARTBEAT_FMT, rig.now),
                 key=bytes(range(1, 33)), counter=rig.counter)
        rig.run(250)
    eq(rig.state(), wire.HUB_PAUSED)


def test_a_signed_resume_held_back_3_s_is_refused_as_stale():
    rig = _treating()
    rig.pause()
    req, held = rig.frame(wire.M_TREAT_RESUME)   # signed now, held by a man in the middle
    rig.run(3000)
    counter = rig.hub.state_store.counter
    rig.send_raw(held)
    rig.poll()
    eq(rig.acks[req][:2], (wire.ACKS_REJECTED, wire.WHY_STALE))
    eq(rig.state(), wire.HUB_PAUSED)
    eq(rig.hub.state_store.counter, counter, "a stale frame burns no counter")
    true([r for r in rig.events(wire.EV_REJECT) if r[4] == req], "on record")


def test_a_command_expiring_too_far_ahead_is_refused():
    rig = Rig()
    fresh = rig.hub.params.get(P.P_FRESH_MS)
    ack = rig.cmd(wire.M_DOSE_SCALE, b"\x32", expires=rig.now + fresh + 50)
    eq(ack[:2], (wire.ACKS_REJECTED, wire.WHY_STALE))
    ack = rig.cmd(wire.M_DOSE_SCALE, b"\x32", expires=rig.now + fresh - 50)
    eq(ack[0], wire.ACKS_DONE)


def test_the_freshness_bound_is_a_parameter():
    rig = Rig()
    eq(rig.hub.params.get(P.P_FRESH_MS), 1000)
    eq(rig.param_set(P.P_FRESH_MS, 300)[0], wire.ACKS_DONE)
    ack = rig.cmd(wire.M_DOSE_SCALE, b"\x32", expires=rig.now + 500)
    eq(ack[:2], (wire.ACKS_REJECTED, wire.WHY_STALE))
    eq(rig.last[wire.M_HELLO_REPLY]["fresh_ms"], 1000)       # told at the handshake
    rig.hello()
    eq(rig.last[wire.M_HELLO_REPLY]["fresh_ms"], 300)
