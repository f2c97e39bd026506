# heap: 512k
"""Safety rules (DESIGN 5), each with its dwell: host-link loss, silent bots,
runaway, systemic failure, bus loss, sensitivity, heat; alarms latch."""
from mptest import eq, true

from hub import params as P
from hub import wire
from hubkit import REPORT_MS, Rig

SITE = 10


def _treating(n=8, sites=None, depth=3000, **kw):
    rig = Rig(bots=n)
    rig.treating(sites or ((SITE, n),), depth=depth, **kw)
    rig.run(500)
    return rig


def _after_report(rig):
    """Step to just after a gateway report (the hub heard every bot now)."""
    while rig.now % REPORT_MS:
        rig.step()
    return rig.now


def _no_link_loss(rig, state):
    """The hub is still in ``state`` and has not raised LINK_LOST."""
    eq(rig.state(), state)
    true(not rig.alarm_active(wire.ALARM_LINK_LOST))


def _alarm_states(rig, code):
    return [a["state"] for a in rig.alarm_frames(code)]


# -------------------------------------------------------------- host link --

def test_host_link_silence_pauses_the_treatment_after_hb_pause_ms():
    rig = _treating()
    rig.heartbeat = False
    last = rig.last_hb
    rig.run_until(lambda: rig.state() != wire.HUB_TREATING, 3000, "pause")
    silent = rig.now - last
    pause = rig.hub.params.get(P.P_HB_PAUSE_MS)
    true(pause < silent <= pause + 40, "paused after %d ms of silence" % silent)
    eq(rig.state(), wire.HUB_PAUSED)
    eq(rig.hub.reason, wire.ALARM_LINK_LOST)
    true(rig.alarm_active(wire.ALARM_LINK_LOST))
    rig.run(300)
    for i in range(rig.n):
        eq(rig.sw.act[i], 0, "bot %d holds" % i)


def test_a_host_silence_shorter_than_the_dwell_does_not_pause():
    rig = _treating()
    rig.heartbeat = False
    rig.run(900)
    rig.heartbeat = True
    rig.run(2000)
    _no_link_loss(rig, wire.HUB_TREATING)


def test_a_longer_host_silence_recalls_the_swarm_after_hb_recall_ms():
    rig = _treating()
    rig.heartbeat = False
    last = rig.last_hb
    recall = rig.hub.params.get(P.P_HB_RECALL_MS)
    rig.run(recall - 200)
    eq(rig.state(), wire.HUB_PAUSED)
    rig.run_until(lambda: rig.state() != wire.HUB_PAUSED, 1000, "recall")
    true(recall < rig.now - last <= recall + 40)
    eq(rig.state(), wire.HUB_SAFE)
    eq(rig.hub.reason, wire.ALARM_LINK_RECALL)
    true(rig.alarm_active(wire.ALARM_LINK_RECALL))
    rig.run(1500)
    true([r for r in rig.bus_log if r[2] == wire.OP_RECALL], "RECALL sent")
    for i in range(rig.n):
        eq(rig.sw.state[i], wire.BOT_DOCKED, "bot %d back in the dock" % i)


def test_host_link_loss_is_not_armed_outside_a_treatment():
    rig = Rig(hello=False)
    rig.heartbeat = False                 # no host ever
    rig.run(35000)
    _no_link_loss(rig, wire.HUB_SAFE)
    true(not rig.alarm_active(wire.ALARM_LINK_RECALL))


def test_an_armed_hub_without_heartbeats_is_not_paused_or_recalled():
    rig = Rig()
    rig.armed(((SITE, 4),))
    rig.heartbeat = False
    rig.run(3000)
    _no_link_loss(rig, wire.HUB_ARMED)


def test_the_link_dwell_counts_from_the_last_frame_heard_not_from_boot():
    rig = Rig()
    rig.heartbeat = False                 # a host that only sends commands
    rig.run(5000)
    rig.treating(((SITE, 4),), depth=3000)
    started = rig.now
    eq(rig.state(), wire.HUB_TREATING)
    rig.run_until(lambda: rig.state() != wire.HUB_TREATING, 3000, "pause")
    true(rig.now - started > rig.hub.params.get(P.P_HB_PAUSE_MS))


def test_a_paused_treatment_is_recalled_when_the_host_stays_silent():
    rig = _treating()
    rig.pause()
    rig.heartbeat = False
    rig.run(rig.hub.params.get(P.P_HB_RECALL_MS) + 100)
    eq(rig.state(), wire.HUB_SAFE)
    eq(rig.hub.reason, wire.ALARM_LINK_RECALL)


# ------------------------------------------------------------ silent bots --

def test_a_silent_bot_is_lost_after_bot_lost_ms_then_quarantined_after_bot_quar_ms():
    rig = _treating(10)                   # one in ten: below the systemic share
    heard = _after_report(rig)
    rig.sw.set_silent(3)
    rig.run_until(lambda: rig.bot_state(3) == wire.BOT_LOST, 1000, "LOST")
    lost_ms = rig.hub.params.get(P.P_BOT_LOST_MS)
    true(lost_ms < rig.now - heard <= lost_ms + 20, "LOST after %d ms" % (rig.now - heard))
    true(rig.alarm_active(wire.ALARM_BOT_LOST))
    eq(rig.hub.swarm.cmd_rate[3], 0, "a lost bot gets no dose")
    rig.run_until(lambda: rig.bot_state(3) == wire.BOT_QUARANTINED, 3000, "QUARANTINED")
    quar_ms = rig.hub.params.get(P.P_BOT_QUAR_MS)
    true(quar_ms < rig.now - heard <= quar_ms + 20, "quarantined after %d ms" % (rig.now - heard))
    true(rig.alarm_active(wire.ALARM_BOT_QUARANTINE))
    rig.run(300)
    true([r for r in rig.bus_log if r[1] == 3 and r[2] == wire.OP_DISABLE], "DISABLE to bot 3")
    eq(rig.state(), wire.HUB_TREATING)
    eq(rig.hub.swarm.cmd_rate[3], 0)
    true(rig.hub.swarm.cmd_rate[0] > 0, "the others keep treating")
    ev = [r for r in rig.events(wire.EV_BOT) if r[3] == 3]
    eq([r[4] for r in ev], [wire.BOT_LOST, wire.BOT_QUARANTINED])


def test_a_report_gap_shorter_than_bot_lost_ms_loses_no_bot():
    rig = _treating()
    _after_report(rig)
    rig.gateway = False
    rig.run(400)
    rig.gateway = True
    rig.run(500)
    for i in range(rig.n):
        eq(rig.bot_state(i), wire.BOT_ACTIVE)
    true(not rig.alarm_active(wire.ALARM_BOT_LOST))


def test_a_quarantined_bot_stays_quarantined_whatever_it_reports():
    rig = _treating(10)
    rig.sw.set_silent(3)
    rig.run(2600)
    eq(rig.bot_state(3), wire.BOT_QUARANTINED)
    rig.sw.clear(3, 4)                    # its radio comes back (F_SILENT)
    rig.run(500)
    eq(rig.bot_state(3), wire.BOT_QUARANTINED)
    eq(rig.sw.state[3], wire.BOT_DISABLED)


# ---------------------------------------------------------------- runaway --

def test_a_bot_delivering_above_its_command_is_quarantined_at_once_with_a_high_alarm():
    rig = _treating()
    t0 = rig.now
    rig.sw.set_runaway(2, True, 30)
    rig.run_until(lambda: rig.bot_state(2) == wire.BOT_QUARANTINED, 1000, "runaway quarantine")
    true(rig.now - t0 <= 2 * REPORT_MS + 20, "quarantined %d ms after the fault" % (rig.now - t0))
    true(rig.alarm_active(wire.ALARM_RUNAWAY))
    rig.run(100)
    eq(rig.sw.state[2], wire.BOT_DISABLED)
    eq(rig.sw.act[2], 0)
    f = rig.alarm_frames(wire.ALARM_RUNAWAY)[0]
    eq((f["prio"], f["state"], f["bot"]), (wire.PRIO_HIGH, wire.ALST_RAISED, 2))
    eq(rig.state(), wire.HUB_TREATING)
    for i in range(rig.n):
        if i != 2:
            eq(rig.bot_state(i), wire.BOT_ACTIVE, "bot %d" % i)


def test_a_bot_active_while_commanded_off_is_quarantined():
    rig = Rig(bots=10)
    rig.ready(((SITE, 10),))
    rig.sw.set_runaway(7, False, 40)
    rig.run(300)
    eq(rig.bot_state(7), wire.BOT_QUARANTINED)
    true(rig.alarm_active(wire.ALARM_RUNAWAY))
    _ack = rig.arm()
    eq((_ack[1], _ack[2] & wire.CHECK_ALARMS), (wire.WHY_CHECKS, wire.CHECK_ALARMS))


def test_lowering_the_dose_is_not_mistaken_for_a_runaway():
    rig = _treating()
    rig.cmd(wire.M_DOSE_SCALE, b"\x0a")   # 100 % -> 10 %: output lags the command
    rig.run(1000)
    rig.pause()
    rig.run(1000)
    rig.resume()
    rig.run(500)
    rig.stop()
    rig.run(1000)
    true(not rig.alarm_active(wire.ALARM_RUNAWAY))
    for i in range(rig.n):
        true(rig.bot_state(i) != wire.BOT_QUARANTINED, "bot %d" % i)


def test_an_emergency_stop_is_not_mistaken_for_a_runaway():
    rig = _treating()
    rig.estop()
    rig.run(1000)
    true(not rig.alarm_active(wire.ALARM_RUNAWAY))
    for i in range(rig.n):
        eq(rig.bot_state(i), wire.BOT_DISABLED, "bot %d" % i)


# --------------------------------------------------------------- systemic --

def test_a_systemic_share_of_lost_bots_triggers_an_automatic_estop():
    rig = _treating(10)
    heard = _after_report(rig)
    rig.sw.set_silent(1)
    rig.sw.set_silent(8)                  # 2 of 10 = systemic_pct
    rig.run_until(lambda: rig.state() == wire.HUB_ESTOP, 2000, "ESTOP")
    true(rig.now - heard <= rig.hub.params.get(P.P_BOT_LOST_MS) + 20)
    eq(rig.hub.reason, wire.ALARM_SYSTEMIC)
    true(rig.alarm_active(wire.ALARM_SYSTEMIC))
    rig.run(500)
    for i in range(rig.n):
        if i not in (1, 8):
            eq(rig.sw.state[i], wire.BOT_DISABLED)
    rig.reboot()
    eq(rig.state(), wire.HUB_ESTOP)


def test_fewer_lost_bots_than_the_systemic_share_do_not_stop_the_swarm():
    rig = _treating(10)
    rig.sw.set_silent(4)
    rig.run(3000)
    eq(rig.state(), wire.HUB_TREATING)


def test_a_dead_gateway_loses_every_bot_and_stops_the_swarm():
    rig = _treating()
    rig.gateway = False
    rig.run(700)
    eq(rig.state(), wire.HUB_ESTOP)
    eq(rig.hub.reason, wire.ALARM_SYSTEMIC)
    rig.run(rig.hub.params.get(P.P_LEASE_MS) + 500)
    for i in range(rig.n):
        eq(rig.sw.act[i], 0, "bot %d" % i)


def test_systemic_failure_stops_a_safe_hub_with_deployed_bots_too():
    rig = Rig(bots=5)
    rig.ready(((SITE, 5),))
    rig.sw.set_silent(0)
    rig.run(700)
    eq(rig.state(), wire.HUB_ESTOP)
    eq(rig.hub.reason, wire.ALARM_SYSTEMIC)


# --------------------------------------------------------------- bus loss --

def test_bus_frame_loss_above_the_limit_triggers_an_automatic_estop():
    rig = _treating()
    rig.drop = 4                          # 40 % of gateway frames lost
    rig.run_until(lambda: rig.state() == wire.HUB_ESTOP, 3000, "ESTOP")
    eq(rig.hub.reason, wire.ALARM_BUS_LOSS)
    true(rig.alarm_active(wire.ALARM_BUS_LOSS))


def test_bus_frame_loss_below_the_limit_is_tolerated():
    rig = _treating()
    rig.drop = 2                          # 20 %
    rig.run(4000)
    eq(rig.state(), wire.HUB_TREATING)
    true(not rig.alarm_active(wire.ALARM_BUS_LOSS))


# ------------------------------------------------------------ sensitivity --

def test_sensitivity_throttles_then_pauses_and_records_an_adverse_event():
    rig = _treating(2)                    # two bots: the rate cap leaves them at 100 %
    sw = rig.hub.swarm
    eq(sw.cmd_rate[0], 100)
    rig.sens = 700                        # halfway from throttle (600) to pause (800)
    rig.run(200)
    eq(sw.cmd_rate[0], 50)
    true(rig.alarm_active(wire.ALARM_SENS_THROTTLE))
    eq(rig.state(), wire.HUB_TREATING)
    rig.sens = 850
    rig.run(200)
    eq(rig.state(), wire.HUB_PAUSED)
    eq(rig.hub.reason, wire.ALARM_SENS_PAUSE)
    true(rig.alarm_active(wire.ALARM_SENS_PAUSE))
    adv = rig.events(wire.EV_ADVERSE)
    eq(len(adv), 1)
    true(adv[0][5] >= 800)
    rig.run(300)
    eq(rig.sw.act[0], 0)
    rig.sens = 100
    rig.run(200)
    ack = rig.resume()
    eq((ack[0], ack[1]), (wire.ACKS_REJECTED, wire.WHY_ALARM))
    eq(rig.alarm_ack(wire.ALARM_SENS_PAUSE)[0], wire.ACKS_DONE)
    eq(rig.resume()[0], wire.ACKS_DONE)
    rig.run(200)
    eq(sw.cmd_rate[0], 100)
    true(not rig.alarm_active(wire.ALARM_SENS_THROTTLE))


def test_stale_patient_data_stops_delivery_until_it_returns():
    rig = _treating(2)
    rig.patient = False
    rig.run(1200)
    eq(list(rig.hub.swarm.cmd_rate), [0, 0])
    rig.run(300)
    eq(rig.sw.act[0], 0)
    rig.patient = True
    rig.run(200)
    eq(rig.hub.swarm.cmd_rate[0], 100)


# ------------------------------------------------------------------- heat --

def test_tissue_heat_throttles_the_site_then_quarantines_its_bots():
    rig = Rig(bots=10)
    rig.treating(((SITE, 2), (SITE + 1, 8)), depth=3000)
    rig.run(500)
    sw = rig.hub.swarm
    eq((sw.cmd_rate[0], sw.cmd_rate[1]), (100, 100))
    rig.sw.s_temp[SITE] = 4150
    rig.run(200)
    true(rig.alarm_active(wire.ALARM_HEAT_THROTTLE))
    eq((sw.cmd_rate[0], sw.cmd_rate[1]), (50, 50))
    rig.sw.s_temp[SITE] = 4250
    rig.run(200)
    eq((rig.bot_state(0), rig.bot_state(1)), (wire.BOT_QUARANTINED, wire.BOT_QUARANTINED))
    true(rig.alarm_active(wire.ALARM_HEAT_QUARANTINE))
    rig.run(200)
    eq((rig.sw.state[0], rig.sw.state[1]), (wire.BOT_DISABLED, wire.BOT_DISABLED))
    eq(rig.state(), wire.HUB_TREATING, "the other site keeps treating")
    true(sw.cmd_rate[2] > 0)


def test_heat_quarantine_of_a_large_site_is_not_a_systemic_failure():
    rig = Rig(bots=8)
    rig.treating(((SITE, 4), (SITE + 1, 4)), depth=3000)
    rig.run(500)
    rig.sw.s_temp[SITE] = 4250
    rig.run(1000)
    for i in range(4):
        eq(rig.bot_state(i), wire.BOT_QUARANTINED)
    eq(rig.state(), wire.HUB_TREATING)


# ----------------------------------------------------------------- alarms --

def test_a_high_alarm_stays_latched_after_its_condition_until_acknowledged():
    rig = _treating()
    rig.sw.set_runaway(2, True, 30)
    rig.run(1000)
    rig.run(3000)                         # the bot is long disabled
    eq(rig.hub.alarms.state[wire.ALARM_RUNAWAY], wire.ALST_RAISED)
    eq(rig.statuses[-1]["unacked"] >= 1, True)
    eq(rig.alarm_ack(wire.ALARM_RUNAWAY)[2], 1)
    rig.run(100)
    eq(_alarm_states(rig, wire.ALARM_RUNAWAY), [wire.ALST_RAISED, wire.ALST_ACKED])
    eq(rig.events(wire.EV_ALARM_ACK)[-1][3], wire.ALARM_RUNAWAY)


def test_a_medium_alarm_clears_by_itself_when_its_condition_goes():
    rig = _treating(2)
    rig.sens = 700
    rig.run(200)
    rig.sens = 100
    rig.run(200)
    true(not rig.alarm_active(wire.ALARM_SENS_THROTTLE))
    eq(_alarm_states(rig, wire.ALARM_SENS_THROTTLE), [wire.ALST_RAISED, wire.ALST_CLEARED])


def test_alarm_ack_with_code_zero_acknowledges_every_raised_alarm():
    rig = Rig(reset=wire.RESET_WATCHDOG)
    rig.estop()
    true(rig.hub.alarms.unacked_high() >= 2)
    rig.alarm_ack(0)
    eq(rig.hub.alarms.unacked_high(), 0)
