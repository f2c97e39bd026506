# heap: 640k
"""Hub states end to end (DESIGN 4): every transition, its refusals, the
pre-treatment checks, reboots and the latched emergency stop."""
from mptest import eq, true

from hub import params as P
from hub import wire
from hubkit import Rig, accepted, refused

SITE = 10
PLAN = ((SITE, 100, 4),)


def _armed(rig):
    rig.armed(((SITE, 4),))
    eq(rig.state(), wire.HUB_ARMED)


def test_a_fresh_hub_boots_safe_and_delivers_nothing():
    rig = Rig()
    eq(rig.state(), wire.HUB_SAFE)
    eq(rig.last[wire.M_HELLO_REPLY]["state"], wire.HUB_SAFE)
    rig.run(1000)
    eq([r for r in rig.bus_log if r[2] == wire.OP_DOSE], [])
    eq(rig.statuses[-1]["state"], wire.HUB_SAFE)


def test_arm_without_consent_or_deployed_bots_names_both_checks():
    rig = Rig()
    rig.run(300)
    refused(rig.arm(), wire.WHY_CHECKS, wire.CHECK_CONSENT | wire.CHECK_DEPLOYED)
    eq(rig.state(), wire.HUB_SAFE)


def test_arm_without_consent_names_the_consent_check():
    rig = Rig()
    rig.lesion(SITE, 300)
    rig.run(200)
    accepted(rig.deploy(SITE, 4))
    rig.run(1500)
    refused(rig.arm(), wire.WHY_CHECKS, wire.CHECK_CONSENT)


def test_arm_without_a_deployed_bot_names_the_deployed_check():
    rig = Rig()
    accepted(rig.consent())
    rig.run(300)
    refused(rig.arm(), wire.WHY_CHECKS, wire.CHECK_DEPLOYED)


def test_arm_with_a_silent_deployed_bot_names_the_bots_check():
    rig = Rig(bots=10)                    # one of ten lost: not yet systemic
    rig.ready(((SITE, 10),))
    rig.sw.set_silent(2)
    rig.run(700)
    eq(rig.bot_state(2), wire.BOT_LOST)
    refused(rig.arm(), wire.WHY_CHECKS, wire.CHECK_BOTS)


def test_a_deploy_lost_on_the_bus_is_sent_again_until_the_bot_is_on_its_way():
    rig = Rig()
    rig.lesion(SITE, 300)
    accepted(rig.consent())
    rig.run(200)
    rig.commands = False                  # the DEPLOY frame is lost on the bus
    accepted(rig.deploy(SITE, 2))
    rig.run(100)
    rig.commands = True
    eq(rig.sw.state[0], wire.BOT_DOCKED)
    rig.run(2500)                         # retried after 0.5 s; travel takes up to 1 s
    sw = rig.hub.swarm
    for i in (0, 1):
        eq(sw.state[i], wire.BOT_DEPLOYED, "bot %d" % i)
        eq(sw.site[i], SITE, "bot %d" % i)
    accepted(rig.arm())


def test_deploy_sends_only_bots_heard_within_the_silence_limit():
    rig = Rig(bots=4)
    rig.lesion(SITE, 300)
    accepted(rig.consent())
    rig.run(200)
    rig.gateway = False                   # the swarm's reports stop coming for a while
    rig.run(700)
    refused(rig.deploy(SITE, 2), wire.WHY_NO_BOTS)
    eq(rig.state(), wire.HUB_SAFE)        # nothing was put in the mouth to be lost
    rig.gateway = True
    rig.run(300)
    accepted(rig.deploy(SITE, 2))
    rig.run(1500)
    eq(rig.state(), wire.HUB_SAFE)


def test_arm_before_a_sent_bot_reports_from_its_site_names_the_bots_check():
    rig = Rig()
    rig.ready(((SITE, 4),))
    accepted(rig.deploy(SITE + 1, 1))        # the hub has not heard it deployed yet
    refused(rig.arm(), wire.WHY_CHECKS, wire.CHECK_BOTS)


def test_an_unacknowledged_high_alarm_blocks_arming_until_acknowledged():
    rig = Rig(reset=wire.RESET_WATCHDOG)
    true(rig.alarm_active(wire.ALARM_WATCHDOG))
    rig.ready(((SITE, 4),))
    refused(rig.arm(), wire.WHY_CHECKS, wire.CHECK_ALARMS)
    accepted(rig.alarm_ack(wire.ALARM_WATCHDOG))
    accepted(rig.arm())
    eq(rig.state(), wire.HUB_ARMED)


def test_an_unkeyed_hub_refuses_to_arm_and_names_the_key_check():
    rig = Rig(key=None)
    refused(rig.arm(), wire.WHY_NO_KEY)
    rig.request(wire.REQ_STATUS)
    true(rig.last[wire.M_HUB_STATUS]["checks"] & wire.CHECK_KEY, "HUB_STATUS names CHECK_KEY")
    eq(rig.state(), wire.HUB_SAFE)


def test_hub_status_names_the_failing_checks_while_safe():
    rig = Rig()
    rig.run(300)                          # the operator's first signed heartbeat
    rig.request(wire.REQ_STATUS)
    eq(rig.last[wire.M_HUB_STATUS]["checks"], wire.CHECK_CONSENT | wire.CHECK_DEPLOYED)


def test_a_second_deploy_before_the_first_bots_report_takes_other_bots():
    rig = Rig()
    rig.run(200)
    accepted(rig.deploy(SITE, 3))
    accepted(rig.deploy(SITE + 1, 3))        # same poll: no report in between
    rig.run(1500)
    eq([rig.sw.site[i] for i in range(6)], [SITE] * 3 + [SITE + 1] * 3)
    eq(rig.deploy(SITE + 2, 3)[2], 2)    # only two docked bots are left


def test_arm_moves_safe_to_armed_once():
    rig = Rig()
    _armed(rig)
    refused(rig.arm(), wire.WHY_STATE, wire.HUB_ARMED)
    eq(rig.state(), wire.HUB_ARMED)


def test_treat_start_is_accepted_only_from_armed():
    rig = Rig()
    rig.lesion(SITE, 300)
    rig.ready(((SITE, 4),))
    refused(rig.start(PLAN), wire.WHY_STATE, wire.HUB_SAFE)
    accepted(rig.arm())
    accepted(rig.start(PLAN))
    eq(rig.state(), wire.HUB_TREATING)
    refused(rig.start(PLAN), wire.WHY_STATE, wire.HUB_TREATING)
    accepted(rig.pause())
    refused(rig.start(PLAN), wire.WHY_STATE, wire.HUB_PAUSED)


def test_treating_doses_only_the_deployed_bots_of_the_plan():
    rig = Rig()
    rig.treating(((SITE, 4),))
    rig.run(300)
    dosed = set(r[1] for r in rig.bus_log if r[2] == wire.OP_DOSE and r[4])
    eq(sorted(dosed), [0, 1, 2, 3])
    for i in range(4):
        eq(rig.sw.state[i], wire.BOT_ACTIVE)


def _treating_then(command, state):
    """A rig 500 ms into treating four bots, then ``command`` accepted: the hub
    goes to ``state`` and 400 ms later no bot delivers."""
    rig = Rig()
    rig.treating(((SITE, 4),))
    rig.run(500)
    accepted(command(rig))
    eq(rig.state(), state)
    rig.run(400)
    for i in range(4):
        eq(rig.sw.act[i], 0, "bot %d output after the command" % i)
    return rig


def test_pause_holds_the_bots_and_resume_continues():
    rig = _treating_then(Rig.pause, wire.HUB_PAUSED)
    for i in range(4):
        eq(rig.sw.state[i], wire.BOT_DEPLOYED)
    refused(rig.pause(), wire.WHY_STATE, wire.HUB_PAUSED)
    accepted(rig.resume())
    eq(rig.state(), wire.HUB_TREATING)
    rig.run(400)
    true(rig.sw.act[0] > 0, "dosing again after resume")
    refused(rig.resume(), wire.WHY_STATE, wire.HUB_TREATING)


def test_pause_and_resume_are_refused_outside_a_treatment():
    rig = Rig()
    refused(rig.pause(), wire.WHY_STATE, wire.HUB_SAFE)
    refused(rig.resume(), wire.WHY_STATE, wire.HUB_SAFE)
    _armed(rig)
    refused(rig.pause(), wire.WHY_STATE, wire.HUB_ARMED)
    refused(rig.resume(), wire.WHY_STATE, wire.HUB_ARMED)


def test_stop_ends_the_treatment_safe_and_needs_new_consent():
    rig = _treating_then(Rig.stop, wire.HUB_SAFE)
    true(rig.events(wire.EV_TREAT)[-1][3] == 3, "EV_TREAT stop logged")
    refused(rig.arm(), wire.WHY_CHECKS, wire.CHECK_CONSENT)


def test_stop_from_paused_and_from_armed_goes_safe():
    rig = Rig()
    rig.treating(((SITE, 4),))
    accepted(rig.pause())
    accepted(rig.stop())
    eq(rig.state(), wire.HUB_SAFE)
    rig2 = Rig()
    _armed(rig2)
    accepted(rig2.stop())
    eq(rig2.state(), wire.HUB_SAFE)


def test_recall_during_a_treatment_stops_it_and_brings_every_bot_home():
    rig = Rig()
    rig.treating(((SITE, 4),))
    rig.run(500)
    true(rig.sw.act[0] > 0)
    accepted(rig.cmd(wire.M_RECALL, b"\xff", sign=False))
    eq(rig.state(), wire.HUB_SAFE)
    rig.run(1500)
    for i in range(4):
        eq(rig.sw.state[i], wire.BOT_DOCKED, "bot %d docked" % i)
        eq(rig.sw.act[i], 0)
    for i in range(4):
        true(not rig.hub.swarm.in_mouth(i), "bot %d no longer counted deployed" % i)


def test_recall_of_one_bot_leaves_the_others_in_place():
    rig = Rig()
    rig.lesion(SITE, 300)
    rig.ready(((SITE, 4),))
    accepted(rig.cmd(wire.M_RECALL, b"\x02"))
    rig.run(1500)
    eq([rig.sw.state[i] for i in range(4)],
       [wire.BOT_DEPLOYED, wire.BOT_DEPLOYED, wire.BOT_DOCKED, wire.BOT_DEPLOYED])


def test_disarm_returns_armed_or_paused_to_safe():
    rig = Rig()
    refused(rig.cmd(wire.M_DISARM), wire.WHY_STATE, wire.HUB_SAFE)
    _armed(rig)
    accepted(rig.cmd(wire.M_DISARM))
    eq(rig.state(), wire.HUB_SAFE)
    rig2 = Rig()
    rig2.treating(((SITE, 4),))
    refused(rig2.cmd(wire.M_DISARM), wire.WHY_STATE, wire.HUB_TREATING)
    accepted(rig2.pause())
    accepted(rig2.cmd(wire.M_DISARM))
    eq(rig2.state(), wire.HUB_SAFE)


def test_armed_checks_expire_after_check_ttl_ms():
    rig = Rig()
    accepted(rig.param_set(P.P_CHECK_TTL_MS, 5000))
    _armed(rig)
    armed_at = rig.now
    rig.run(4900)
    eq(rig.state(), wire.HUB_ARMED)
    rig.run_until(lambda: rig.state() != wire.HUB_ARMED, 500, "checks expiry")
    eq(rig.state(), wire.HUB_SAFE)
    true(rig.now - armed_at > 5000, "expired after %d ms" % (rig.now - armed_at))
    refused(rig.start(PLAN), wire.WHY_STATE, wire.HUB_SAFE)
    st = rig.events(wire.EV_STATE)[-1]
    eq((st[3], st[4]), (wire.HUB_SAFE, wire.HUB_ARMED))


def test_armed_checks_expire_at_the_default_ttl_too():
    rig = Rig()
    _armed(rig)
    ttl = rig.hub.params.get(P.P_CHECK_TTL_MS)
    rig.run(ttl - 100)
    eq(rig.state(), wire.HUB_ARMED)
    rig.run(200)
    eq(rig.state(), wire.HUB_SAFE)


def test_a_reboot_during_treatment_comes_back_safe_and_never_resumes():
    rig = Rig()
    rig.treating(((SITE, 4),))
    rig.run(500)
    rig.reboot()
    eq(rig.state(), wire.HUB_SAFE)
    rig.bus_log = []
    rig.run(2500)
    eq([r for r in rig.bus_log if r[2] == wire.OP_DOSE and r[3]], [], "no dose after reboot")
    for i in range(4):
        eq(rig.sw.act[i], 0, "bot %d stopped when its lease ran out" % i)
    refused(rig.arm(), wire.WHY_CHECKS)   # consent is per session
    true(rig.acks[rig.req][2] & wire.CHECK_CONSENT)


def test_a_watchdog_reset_is_logged_alarmed_and_reported():
    rig = Rig(reset=wire.RESET_WATCHDOG)
    boot = rig.events(wire.EV_BOOT)[-1]
    eq(boot[3], wire.RESET_WATCHDOG)
    true(rig.alarm_active(wire.ALARM_WATCHDOG))
    true([r for r in rig.events(wire.EV_ALARM) if r[3] == wire.ALARM_WATCHDOG], "EV_ALARM")
    eq(rig.last[wire.M_HELLO_REPLY]["reset_cause"], wire.RESET_WATCHDOG)
    eq(rig.state(), wire.HUB_SAFE)


def test_a_power_on_boot_raises_no_watchdog_alarm():
    rig = Rig()
    eq(rig.events(wire.EV_BOOT)[-1][3], wire.RESET_POWER)
    true(not rig.alarm_active(wire.ALARM_WATCHDOG))


def test_estop_is_latched_across_a_reboot_until_an_authorized_reset():
    rig = Rig()
    rig.treating(((SITE, 4),))
    eq(rig.estop()[0], wire.ACKS_ACCEPTED)
    rig.run(500)
    rig.reboot()
    eq(rig.state(), wire.HUB_ESTOP)
    eq(rig.last[wire.M_HELLO_REPLY]["estop"], 1)
    refused(rig.arm(), wire.WHY_ESTOP_LATCHED)
    refused(rig.deploy(SITE + 1, 1), wire.WHY_ESTOP_LATCHED)
    refused(rig.consent(), wire.WHY_ESTOP_LATCHED)
    accepted(rig.alarm_ack())
    refused(rig.estop_reset(sign=False), wire.WHY_AUTH_MISSING)
    eq(rig.state(), wire.HUB_ESTOP)
    accepted(rig.estop_reset())
    eq(rig.state(), wire.HUB_SAFE)
    rig.reboot()
    eq(rig.state(), wire.HUB_SAFE)


def test_estop_reset_waits_for_the_high_alarms_to_be_acknowledged():
    rig = Rig()
    rig.estop()
    rig.run(200)
    refused(rig.estop_reset(), wire.WHY_CHECKS, wire.CHECK_ALARMS)
    accepted(rig.alarm_ack(wire.ALARM_ESTOP))
    accepted(rig.estop_reset())
    eq(rig.state(), wire.HUB_SAFE)
    true(not rig.alarm_active(wire.ALARM_ESTOP))


def test_estop_reset_is_refused_outside_estop():
    rig = Rig()
    refused(rig.estop_reset(), wire.WHY_STATE, wire.HUB_SAFE)


def test_every_state_change_is_in_the_audit_log():
    rig = Rig()
    rig.treating(((SITE, 4),))
    rig.pause()
    rig.resume()
    rig.stop()
    rig.estop()
    got = [(r[3], r[4]) for r in rig.events(wire.EV_STATE)]
    eq(got, [(wire.HUB_ARMED, wire.HUB_SAFE), (wire.HUB_TREATING, wire.HUB_ARMED),
             (wire.HUB_PAUSED, wire.HUB_TREATING), (wire.HUB_TREATING, wire.HUB_PAUSED),
             (wire.HUB_SAFE, wire.HUB_TREATING), (wire.HUB_ESTOP, wire.HUB_SAFE)])
    ok, bad = rig.hub.log.verify()
    true(ok, "audit log verifies (first bad %d)" % bad)


def _systemic_estop(ms):
    """A rig treating four bots, two of them silent for ``ms``: the systemic
    rule has stopped the swarm."""
    rig = Rig()
    rig.treating(((SITE, 4),))
    rig.sw.set_silent(1)
    rig.sw.set_silent(2)
    rig.run(ms)
    eq(rig.state(), wire.HUB_ESTOP)
    return rig


def test_estop_reset_is_refused_while_a_lost_bot_is_still_in_the_mouth():
    rig = _systemic_estop(1500)
    accepted(rig.alarm_ack())
    refused(rig.estop_reset(), wire.WHY_CHECKS, wire.CHECK_BOTS)
    eq(rig.state(), wire.HUB_ESTOP)


def test_a_refused_reset_succeeds_after_recall_and_retrieval_of_the_disabled_bots():
    # the operator's recovery (docs/safety.md, "Recovering from an emergency stop"):
    # the refusal names CHECK_BOTS; recall what can move, retrieve by hand the
    # bots the hub disabled, then the reset is accepted and does not re-latch
    rig = _systemic_estop(2500)
    rig.sw.clear(1, 4)                   # the radios come back (bots.F_SILENT):
    rig.sw.clear(2, 4)                   # the retried DISABLE reaches them
    rig.run(1000)
    accepted(rig.alarm_ack())
    refused(rig.estop_reset(), wire.WHY_CHECKS, wire.CHECK_BOTS)
    accepted(rig.cmd(wire.M_RECALL, bytes([wire.ADDR_ALL])))
    for b in range(rig.n):
        rig.sw.retrieve(b)
    rig.run(300)                         # their reports say: disabled, no site
    for b in range(rig.n):
        true(not rig.hub.swarm.in_mouth(b), "bot %d still counted in the mouth" % b)
    accepted(rig.estop_reset())
    eq(rig.state(), wire.HUB_SAFE)
    rig.run(1000)
    eq(rig.state(), wire.HUB_SAFE)       # no rule latches the stop again
