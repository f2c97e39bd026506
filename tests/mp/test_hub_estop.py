# heap: 512k
"""Emergency stop (DESIGN 5): broadcast DISABLE at once, confirm bot by bot,
retry the ones that did not confirm, report which are confirmed and which not;
accepted in every state and without a key; latched across reboots."""
from mptest import eq, true

from hub import wire
from hubkit import Rig

SITE = 10


def _treating(n=8):
    rig = Rig(bots=n)
    rig.treating(((SITE, n),))
    rig.run(500)
    return rig


def _disables(rig, bot):
    return [r for r in rig.bus_log if r[2] == wire.OP_DISABLE and r[1] == bot]


def _final_report(rig):
    reps = [r for r in rig.estop_reports if r["done"]]
    true(reps, "a final ESTOP_REPORT")
    return reps[-1]


def test_estop_broadcasts_disable_in_the_same_poll():
    rig = _treating()
    ack = rig.estop()
    eq(ack[0], wire.ACKS_ACCEPTED)
    eq(rig.state(), wire.HUB_ESTOP)
    cmds = rig.peek_bus()                 # written before any tick ran
    true(cmds, "DISABLE on the bus before the next tick")
    eq(cmds[0][:2], (wire.ADDR_ALL, wire.OP_DISABLE))
    for rec in cmds:
        true(rec[1] != wire.OP_DOSE or rec[3] == 0, "no dose after the stop: %r" % (rec,))


def test_estop_stops_every_bot_and_confirms_each_one():
    rig = _treating()
    rig.estop()
    rig.run(20)
    for i in range(rig.n):
        eq(rig.sw.state[i], wire.BOT_DISABLED)
        eq(rig.sw.act[i], 0)
    rig.run(500)
    rep = _final_report(rig)
    eq((rep["total"], rep["confirmed"], rep["unconfirmed"]), (rig.n, rig.n, 0))
    eq(rig.pending_bots(rep), [])
    for i in range(rig.n):
        eq(rig.bot_state(i), wire.BOT_DISABLED)
    done = rig.events(wire.EV_ESTOP_DONE)[-1]
    eq((done[4], done[5]), (0, rig.n))


def test_the_first_estop_report_comes_with_the_ack():
    rig = _treating()
    rig.estop()
    true(rig.estop_reports, "ESTOP_REPORT at once")
    rep = rig.estop_reports[0]
    eq(rep["done"], 0)
    eq(rep["total"], rig.n)


def test_a_stuck_bot_is_retried_until_it_confirms():
    rig = _treating()
    rig.sw.set_stuck(3, 4)                # its kill path misses the first four
    rig.estop()
    rig.run(100)
    eq(rig.sw.state[3], wire.BOT_ACTIVE)
    rig.run(1500)
    eq(rig.sw.state[3], wire.BOT_DISABLED)
    true(len(_disables(rig, 3)) >= 4, "DISABLE retried to bot 3: %r" % (_disables(rig, 3),))
    rep = _final_report(rig)
    eq((rep["confirmed"], rep["unconfirmed"]), (rig.n, 0))
    eq(rig.pending_bots(rep), [])


def test_retries_go_only_to_the_bots_that_did_not_confirm():
    rig = _treating()
    rig.sw.set_stuck(5, 2)
    rig.estop()
    rig.run(1000)
    for i in range(rig.n):
        if i != 5:
            eq(_disables(rig, i), [], "bot %d confirmed after the broadcast" % i)
    true(_disables(rig, 5), "bot 5 retried by address")


def test_silent_bots_are_named_pending_in_the_estop_report():
    rig = _treating(10)
    rig.sw.set_silent(1)
    rig.sw.set_silent(6)
    rig.estop()
    rig.run(3500)
    rep = _final_report(rig)
    eq((rep["total"], rep["confirmed"], rep["unconfirmed"]), (10, 8, 2))
    eq(rig.pending_bots(rep), [1, 6])
    rig.request(wire.REQ_ESTOP)
    again = rig.estop_reports[-1]
    eq(again["pending"], rep["pending"])
    done = rig.events(wire.EV_ESTOP_DONE)[-1]
    eq((done[4], done[5]), (2, 8))


def test_unconfirmed_bots_keep_being_asked_after_the_deadline():
    rig = _treating()
    rig.sw.set_stuck(2, 255)
    rig.estop()
    rig.run(3500)
    eq(rig.pending_bots(_final_report(rig)), [2])
    rig.sw.set_stuck(2, 0)
    rig.run(1500)
    eq(rig.sw.state[2], wire.BOT_DISABLED)
    rep = rig.estop_reports[-1]
    eq((rep["confirmed"], rep["unconfirmed"]), (rig.n, 0))


def test_estop_is_accepted_in_every_state():
    for setup in ("safe", "armed", "paused", "estop"):
        rig = Rig()
        if setup != "safe":
            rig.lesion(SITE, 300)
            rig.ready(((SITE, 4),))
            rig.arm()
        if setup == "paused":
            rig.start(((SITE, 100, 4),))
            rig.pause()
        if setup == "estop":
            rig.estop()
        ack = rig.estop()
        eq(ack[0], wire.ACKS_ACCEPTED, setup)
        eq(rig.state(), wire.HUB_ESTOP, setup)
        eq(rig.peek_bus()[-1][:2], (wire.ADDR_ALL, wire.OP_DISABLE), setup)


def test_estop_needs_no_signature():
    rig = _treating()
    true(not wire.MSGS[wire.M_ESTOP][4] & wire.MF_AUTH, "ESTOP is not an auth command")
    ack = rig.estop(sign=False)
    eq(ack[0], wire.ACKS_ACCEPTED)
    eq(rig.state(), wire.HUB_ESTOP)


def test_estop_works_on_a_hub_with_no_key_provisioned():
    rig = Rig(key=None)
    eq(rig.last[wire.M_HELLO_REPLY]["keyed"], 0)
    rig.lesion(SITE, 300)
    rig.run(200)
    eq(rig.deploy(SITE, 4)[0], wire.ACKS_DONE)
    rig.run(1500)
    ack = rig.estop()
    eq(ack[0], wire.ACKS_ACCEPTED)
    eq(rig.state(), wire.HUB_ESTOP)
    rig.run(500)
    for i in range(rig.n):
        eq(rig.sw.state[i], wire.BOT_DISABLED)


def test_estop_is_latched_in_storage_at_once():
    rig = _treating()
    rig.estop(source=7)
    rig.reboot()
    eq(rig.state(), wire.HUB_ESTOP)
    eq(rig.hub.reason, wire.ALARM_ESTOP)
    ev = rig.events(wire.EV_ESTOP)[0]
    eq(ev[3], 7)


def test_a_hub_booting_into_a_latched_estop_disables_the_swarm_again():
    rig = _treating()
    rig.sw.set_stuck(4, 100)              # never confirms before the reboot
    rig.estop()
    rig.run(300)
    eq(rig.sw.state[4], wire.BOT_ACTIVE)
    rig.sw.set_stuck(4, 0)
    rig.reboot()
    eq(rig.state(), wire.HUB_ESTOP)
    true([r for r in rig.peek_bus() if r[1] == wire.OP_DISABLE], "DISABLE at boot")
    rig.run(500)
    eq(rig.sw.state[4], wire.BOT_DISABLED)


def test_commands_that_move_toward_energy_are_refused_while_latched():
    rig = _treating()
    rig.estop()
    eq(rig.arm()[1], wire.WHY_ESTOP_LATCHED)
    eq(rig.start(((SITE, 100, 4),))[1], wire.WHY_ESTOP_LATCHED)
    eq(rig.resume()[1], wire.WHY_ESTOP_LATCHED)
    eq(rig.deploy(SITE, 1)[1], wire.WHY_ESTOP_LATCHED)
    rig.bus_log = []
    rig.run(1000)
    eq([r for r in rig.bus_log if r[2] == wire.OP_DOSE and r[4]], [])
