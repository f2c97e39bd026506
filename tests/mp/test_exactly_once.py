# heap: 1m
"""Exactly-once for real (issue 14): request ids of one host session rise,
and the hub refuses an id at or below its high-water mark instead of running
it again, however many commands came in between; one signed command may raise
the counter by at most COUNTER_JUMP_MAX, so the key cannot burn it."""
import struct

from mptest import eq, true

from hub import wire
from hubkit import Rig

SITE = 10


def _deployed(rig):
    return [r for r in rig.events(wire.EV_CMD) if r[3] == wire.M_DEPLOY]


def test_a_deploy_resent_after_100_other_commands_does_not_run_again():
    rig = Rig()
    rig.run(200)
    req, data = rig.frame(wire.M_DEPLOY, struct.pack(wire.DEPLOY_FMT, SITE, 1))
    rig.send_raw(data)
    rig.poll()
    eq(rig.acks[req][0], wire.ACKS_DONE)
    for _ in range(100):
        rig.cmd(wire.M_HOLD, b"\xff")
    rig.run(1100)                            # a new second of the record budget
    rig.send_raw(data)                       # the same bytes, long out of the ACK cache
    rig.poll()
    eq(rig.acks[req][:2], (wire.ACKS_REJECTED, wire.WHY_DUPLICATE))
    eq(len(_deployed(rig)), 1)
    true([r for r in rig.events(wire.EV_REJECT) if r[4] == req and r[5] == wire.WHY_DUPLICATE],
         "the refused duplicate is on record")


def test_ids_that_wrap_past_0xffff_still_rise():
    rig = Rig()
    rig.run(200)
    eq(rig.deploy(SITE, 1, req=0xFFFE)[0], wire.ACKS_DONE)
    eq(rig.deploy(SITE, 1, req=0x0003)[0], wire.ACKS_DONE)
    eq(rig.deploy(SITE, 1, req=0xFFFF)[1], wire.WHY_DUPLICATE)


def test_a_new_session_starts_its_ids_anywhere():
    rig = Rig()
    rig.run(200)
    eq(rig.deploy(SITE, 1, req=5000)[0], wire.ACKS_DONE)
    eq(rig.deploy(SITE, 1, req=100)[1], wire.WHY_DUPLICATE)
    rig.hello()
    eq(rig.deploy(SITE, 1, req=100)[0], wire.ACKS_DONE)


def test_an_estop_with_an_old_id_still_stops():
    rig = Rig()
    rig.run(200)
    rig.deploy(SITE, 1, req=9000)
    ack = rig.estop(req=10)
    eq(ack[0], wire.ACKS_ACCEPTED)
    eq(rig.state(), wire.HUB_ESTOP)


def test_one_signed_command_cannot_burn_the_counter():
    rig = Rig()
    before = rig.hub.state_store.counter
    for c in (before + wire.COUNTER_JUMP_MAX + 1, 0xFFFFFFFF):
        ack = rig.cmd(wire.M_DOSE_SCALE, b"\x32", counter=c)
        eq(ack[:2], (wire.ACKS_REJECTED, wire.WHY_AUTH_JUMP))
        eq(rig.hub.state_store.counter, before)
    rig.counter = before
    eq(rig.cmd(wire.M_DOSE_SCALE, b"\x32", counter=before + wire.COUNTER_JUMP_MAX)[0],
       wire.ACKS_DONE)
    eq(rig.hub.state_store.counter, before + wire.COUNTER_JUMP_MAX)
