# heap: 512k
"""The supervisor's table, walked row by row on a whole hub (DESIGN 4).

Each row, from each of its source states: with its blockers clear, the
trigger moves the hub to the row's state, with the row's reason and every
entry action it names (and none it does not); with a blocker set, the
trigger is refused with the blocker's documented reason and nothing changes.
A trigger in a state no row leaves is refused ESTOP_LATCHED or STATE. The
command table is walked too: every command of the schema has a row, its
signing is the schema's, and a command outside its states is refused.

The tests place the hub in a source state by assigning ``hub.state``
themselves: the firmware has no such door (``tests/test_supervisor_only.py``).
"""
from mptest import eq, true

from hub import checks, commands, supervisor as S, wire
from hubkit import PATIENT_ID, Rig
from wire_names import M

_NAME = dict((v, k) for k, v in M.items())

SITE = 10
STATES = (wire.HUB_SAFE, wire.HUB_ARMED, wire.HUB_TREATING, wire.HUB_PAUSED, wire.HUB_ESTOP)
# what the host is told for each blocker (docs/protocol.md, WHY_*)
REFUSAL = {S.B_CHECKS: wire.WHY_CHECKS, S.B_RESET_CHECKS: wire.WHY_CHECKS,
           S.B_HIGH_ALARM: wire.WHY_ALARM}
BOOT_REASON = wire.ALARM_SYSTEMIC   # the reason latched before a C_BOOT_LATCHED boot


def _sources(mask):
    return [s for s in STATES if mask & (1 << s)]


def _rig(state, ready=False):
    """A hub placed in ``state``, with marks the entry actions change."""
    rig = Rig()
    if ready:
        rig.lesion(SITE, 300)
        rig.ready(((SITE, 4),))
    else:
        rig.run(300)                         # signed heartbeats: the link check passes
    hub = rig.hub
    hub.state = state
    if state == wire.HUB_ESTOP:
        hub.reason = wire.ALARM_ESTOP
        hub.state_store.latch_estop(wire.ALARM_ESTOP)
    sw = hub.swarm
    sw.cmd_rate[0] = 40                      # A_HOLD zeroes it
    if not ready:
        sw.target[1] = SITE                  # A_RECALL sends it back
        hub.state_store.set_consent(PATIENT_ID)     # A_END / A_DONE clear it
    return rig


def _records(rig, since, ev):
    return [r[3:] for r in rig.log() if r[0] >= since and r[2] == ev]


def _check_entry(rig, row, old, log0, out0):
    trig, _, to, reason, _, act = row
    hub = rig.hub
    sw = hub.swarm
    st = hub.state_store
    what = "row %r from %d" % (row, old)
    why = BOOT_REASON if act & S.A_RELATCH else reason
    eq(hub.state, to, what)
    eq(hub.reason, wire.ALARM_ESTOP if to == old else why, what + ": reason (kept by a row that stays)")
    # A_RECORD: one EV_STATE (new, old, reason)
    want = [(to, old, why)] if act & S.A_RECORD else []
    eq(_records(rig, log0, wire.EV_STATE), want, what + ": EV_STATE")
    # A_DISABLE, A_RELATCH: DISABLE broadcast to every bot
    disabled = act & (S.A_DISABLE | S.A_RELATCH)
    if disabled:
        true(len(rig.board.bus_out) > out0, what + ": DISABLE written to the bus")
        for i in range(sw.n):
            eq(sw.sent_op[i], wire.OP_DISABLE, what + ": bot %d disabled" % i)
    else:
        eq(len(rig.board.bus_out), out0, what + ": nothing written to the bus")
    # A_LATCH, A_RELATCH: latched, confirmations begin
    latching = act & (S.A_LATCH | S.A_RELATCH)
    if latching:
        true(st.estop, what + ": latched")
        eq(st.estop_reason, wire.ALARM_ESTOP if old == wire.HUB_ESTOP else
           (BOOT_REASON if act & S.A_RELATCH else reason), what + ": latched reason")
        eq(hub.estop.done, False, what + ": confirmations pending")
        eq(hub.estop.pending[0], (1 << sw.n) - 1, what + ": every bot pending")
        eq(len(_records(rig, log0, wire.EV_ESTOP)), 1, what + ": EV_ESTOP")
    else:
        eq(_records(rig, log0, wire.EV_ESTOP), [], what + ": no EV_ESTOP")
    if act & S.A_RELATCH:
        true(hub.alarms.active(wire.ALARM_ESTOP), what + ": ALARM_ESTOP")
        eq(hub.alarms.value[wire.ALARM_ESTOP], BOOT_REASON, what + ": its value")
    # A_UNLATCH
    if act & S.A_UNLATCH:
        true(not st.estop, what + ": latch cleared")
    elif old == wire.HUB_ESTOP:
        true(st.estop, what + ": still latched")
    # A_HOLD (a DISABLE holds too)
    eq(sw.cmd_rate[0], 0 if act & S.A_HOLD or disabled else 40, what + ": bot 0's rate")
    # A_RECALL
    if act & S.A_RECALL:
        eq((sw.target[1], sw.cmd_op[1]), (255, wire.OP_RECALL), what + ": bot 1 recalled")
    else:
        eq(sw.target[1], SITE, what + ": bot 1 keeps its target")
    # A_END, A_DONE: only a running treatment ends
    ended = act & (S.A_END | S.A_DONE) and old in (wire.HUB_TREATING, wire.HUB_PAUSED)
    treat = [r[0] for r in _records(rig, log0, wire.EV_TREAT)]
    if ended:
        eq(treat, [2 if act & S.A_DONE else 3], what + ": EV_TREAT")
        eq(st.consent, None, what + ": consent cleared")
    elif act & S.A_BEGIN:
        eq(_records(rig, log0, wire.EV_TREAT), [(1, 1, 5000)], what + ": EV_TREAT begins")
    else:
        eq(treat, [], what + ": no EV_TREAT")
        true(st.consent is not None, what + ": consent kept")
    # A_ARMED
    if act & S.A_ARMED:
        eq(hub.armed_at, rig.now, what + ": armed_at")
    # the row's alarm
    alarms = [r[0] for r in _records(rig, log0, wire.EV_ALARM)]
    if reason:
        true(hub.alarms.active(reason), what + ": alarm %d raised" % reason)
        eq(alarms, [reason], what + ": EV_ALARM")
    else:
        eq(alarms, [], what + ": no EV_ALARM")


def test_the_table_keeps_the_safety_rules():
    """What no edit of the table may break (the walk below proves the hub
    does what the table says; this, that the table says what is safe)."""
    first_other = None
    for i, (trig, src, to, reason, blockers, act) in enumerate(S.TABLE):
        what = "row %d" % i
        if to == wire.HUB_ESTOP:
            true(act & S.A_DISABLE or act & S.A_RELATCH, what + ": a stop disables the bots")
            if src & S.S_ANY_BUT_ESTOP and trig != S.C_BOOT_LATCHED:
                true(act & S.A_LATCH, what + ": a stop latches")
                true(first_other is None, what + ": stops come before every other row")
                eq(blockers, 0, what + ": nothing blocks a stop")
        else:
            if first_other is None:
                first_other = i
        if src & S.S_ESTOP and to != wire.HUB_ESTOP:
            eq((trig, blockers), (S.C_RESET, S.B_RESET_CHECKS), what + ": only a checked reset")
            true(act & S.A_UNLATCH, what + ": a reset clears the latch")
        if to == wire.HUB_SAFE or to == wire.HUB_PAUSED:
            true(act & S.A_HOLD, what + ": every bot held")
        if to == wire.HUB_SAFE and src & (S.S_TREATING | S.S_PAUSED):
            true(act & (S.A_END | S.A_DONE), what + ": the treatment ends in the log")
        if to == wire.HUB_TREATING:
            true(trig in (S.C_START, S.C_RESUME), what + ": energy only on request")
            true(not src & (S.S_SAFE | S.S_ESTOP), what + ": never straight from SAFE or ESTOP")
        if to == wire.HUB_ARMED:
            eq((trig, blockers & S.B_CHECKS), (S.C_ARM, S.B_CHECKS), what + ": armed after checks")
        if trig == S.C_RESUME:
            true(blockers & S.B_HIGH_ALARM, what + ": no resume over a HIGH alarm")


def test_every_row_fires_from_each_of_its_states_with_its_entry_actions():
    walked = 0
    for i, row in enumerate(S.TABLE):
        trig, src, to, reason, blockers, act = row
        for old in _sources(src):
            eq(S.update(old, trig), i, "row %d is shadowed in state %d" % (i, old))
            rig = _rig(old, ready=bool(blockers & S.B_CHECKS))
            hub = rig.hub
            if act & S.A_RELATCH:
                hub.state_store.latch_estop(BOOT_REASON)
            if act & S.A_BEGIN:
                hub.plan.n = 1
                hub.plan.session_cap = 5000
            log0 = rig.log_next()
            out0 = len(rig.board.bus_out)
            res = S.request(hub, trig, rig.now)
            eq(res, (wire.ACKS_DONE, wire.WHY_NONE, to), "row %d from %d" % (i, old))
            _check_entry(rig, row, old, log0, out0)
            walked += 1
    true(walked >= len(S.TABLE), "every row walked")


def test_automatic_rows_fire_from_the_tick_and_blocked_rows_never_do():
    for i, row in enumerate(S.TABLE):
        trig, src, to, reason, blockers, act = row
        old = _sources(src)[0]
        rig = _rig(old)
        hub = rig.hub
        if act & S.A_RELATCH:
            hub.state_store.latch_estop(BOOT_REASON)
        taken = S.step(hub, trig, rig.now)
        eq(taken, not blockers, "row %d: step" % i)
        eq(hub.state, old if blockers else to, "row %d: state after step" % i)


def _set_blocker(hub, bit, now):
    if bit == S.B_CHECKS:
        hub.state_store.clear_consent()      # and no bot deployed: CONSENT | DEPLOYED
        return checks.failing(hub, now)
    hub.alarms.raise_(wire.ALARM_RUNAWAY, now)   # a HIGH alarm, not acknowledged
    if bit == S.B_RESET_CHECKS:
        return checks.failing_reset(hub, now)
    return 1


def test_a_set_blocker_refuses_its_rows_with_the_documented_reason_and_changes_nothing():
    eq(dict(S.BLOCKERS), REFUSAL)
    tried = 0
    for i, row in enumerate(S.TABLE):
        trig, src, to, reason, blockers, act = row
        for bit, why in S.BLOCKERS:
            if not blockers & bit:
                continue
            for old in _sources(src):
                rig = _rig(old)
                hub = rig.hub
                detail = _set_blocker(hub, bit, rig.now)
                true(detail, "row %d: blocker %d set" % (i, bit))
                log0 = rig.log_next()
                latched = hub.state_store.estop
                res = S.request(hub, trig, rig.now)
                eq(res, (wire.ACKS_REJECTED, REFUSAL[bit], detail), "row %d from %d" % (i, old))
                eq(hub.state, old)
                eq(hub.state_store.estop, latched, "the latch is untouched")
                eq(_records(rig, log0, wire.EV_STATE), [])
                tried += 1
    eq(tried, 3, "ARM, RESUME and RESET each have a blocker")


def test_a_trigger_no_row_takes_from_a_state_is_refused_latched_or_state():
    rig = _rig(wire.HUB_SAFE)
    hub = rig.hub
    triggers = []
    for row in S.TABLE:
        if row[0] not in triggers:
            triggers.append(row[0])
    refused = 0
    for trig in triggers:
        for old in STATES:
            if S.sources(trig) & (1 << old):
                continue
            hub.state = old
            log0 = rig.log_next()
            res = S.request(hub, trig, rig.now)
            want = (wire.WHY_ESTOP_LATCHED, 0) if old == wire.HUB_ESTOP else (wire.WHY_STATE, old)
            eq(res, (wire.ACKS_REJECTED,) + want, "trigger %d in %d" % (trig, old))
            eq(hub.state, old)
            eq(S.step(hub, trig, rig.now), False)
            eq(_records(rig, log0, wire.EV_STATE), [])
            refused += 1
    true(refused > 30, "%d refusals walked" % refused)


def test_every_trigger_has_a_row_and_the_boot_row_is_the_latched_boot():
    for name in dir(S):
        if name.startswith("C_"):
            true(S.sources(getattr(S, name)), "%s has no row" % name)
    rig = Rig()
    rig.estop()
    rig.reboot()
    eq(rig.hub.state, wire.HUB_ESTOP)
    recs = rig.log()
    boot = [r[0] for r in recs if r[2] == wire.EV_BOOT][-1]
    eq([r for r in recs if r[0] > boot and r[2] == wire.EV_STATE], [],
       "the boot row records no state change: EV_BOOT says it")
    eq(len([r for r in recs if r[0] > boot and r[2] == wire.EV_ESTOP]), 1)


# ------------------------------------------------------- command table --

def test_every_command_of_the_schema_has_one_row_signed_as_the_schema_says():
    msgs = [row[0] for row in commands.COMMANDS]
    eq(len(msgs), len(set(msgs)), "one row per command")
    want = sorted(m for m, info in wire.MSGS.items() if info[4] & wire.MF_COMMAND)
    eq(sorted(msgs), want)
    for msg, handler, signing, states, trigger in commands.COMMANDS:
        signed = wire.MSGS[msg][4] & wire.MF_AUTH
        if signed:
            eq(signing, commands.SIGNED, _NAME[msg])
        else:
            true(signing in (commands.UNSIGNED, commands.OPTIONAL), _NAME[msg])
        true(states & S.S_ANY and not states & ~S.S_ANY, "%s: states" % _NAME[msg])
        if trigger:
            eq(states, S.sources(trigger), "%s: a state change's states are its rows'"
               % _NAME[msg])
    optional = sorted(r[0] for r in commands.COMMANDS if r[2] == commands.OPTIONAL)
    eq(optional, sorted([wire.M_ALARM_ACK, wire.M_TELEM_RATE]))
    estop = [r for r in commands.COMMANDS if r[0] == wire.M_ESTOP][0]
    eq((estop[2], estop[3]), (commands.UNSIGNED, S.S_ANY), "a stop is never refused")


def test_a_command_outside_its_states_is_refused_before_its_handler_runs():
    rig = _rig(wire.HUB_SAFE)
    hub = rig.hub
    refused = 0
    for msg, handler, signing, states, trigger in commands.COMMANDS:
        for old in STATES:
            if states & (1 << old):
                continue
            hub.state = old
            log0 = rig.log_next()
            res = commands.execute(hub, msg, None, rig.now)   # no frame: the handler never runs
            want = (wire.WHY_ESTOP_LATCHED, 0) if old == wire.HUB_ESTOP else (wire.WHY_STATE, old)
            eq(res, (wire.ACKS_REJECTED,) + want, "%s in %d" % (_NAME[msg], old))
            eq(hub.state, old)
            eq(rig.log_next(), log0)
            refused += 1
    true(refused > 20, "%d refusals walked" % refused)


def test_a_command_id_without_a_row_gets_the_bad_argument_nak():
    rig = _rig(wire.HUB_SAFE)
    for msg in (wire.M_HUB_STATUS, wire.M_HELLO, 0x37, 0xFF):
        eq(commands.execute(rig.hub, msg, None, rig.now),
           (wire.ACKS_REJECTED, wire.WHY_BAD_ARG, msg))


def test_a_second_stop_disables_again_and_keeps_the_first_reason():
    rig = Rig()
    rig.run(300)
    hub = rig.hub
    true(S.step(hub, S.C_SYSTEMIC, rig.now), "the systemic stop")
    states = len(rig.events(wire.EV_STATE))
    rig.run(200)
    out0 = len(rig.board.bus_out)
    ack = rig.estop()
    eq(ack[0], wire.ACKS_ACCEPTED)
    true(len(rig.board.bus_out) > out0, "DISABLE broadcast again")
    eq((hub.state, hub.reason), (wire.HUB_ESTOP, wire.ALARM_SYSTEMIC))
    eq(len(rig.events(wire.EV_STATE)), states, "no state change recorded")
    rig.run(200)
    eq(rig.statuses[-1]["reason"], wire.ALARM_SYSTEMIC)
