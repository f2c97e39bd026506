"""Hub state machine: the one place where the hub's state changes.

Triggers are bits: operator requests (``C_ARM``, ``C_STOP``, ...) and the
safety conditions that ``safety.conditions`` gathers each tick (``C_SYSTEMIC``,
``C_LINK_LOST``, ...). Blockers are bits too: what may refuse a request
(failing pre-treatment checks, an unacknowledged HIGH alarm). One table maps
(state, trigger, blockers) to the next state, its reason and its entry
actions. Rows are in priority order: emergency stop first, then the automatic
protections, then the operator; ``update(state, conditions)`` picks the first
row whose trigger is set and whose source states include ``state``.

Three functions apply a row, all through ``_enter``:
- ``step``: the tick's conditions (once per tick), and an emergency stop at
  once, from whatever read it; rows with blockers are never taken here;
- ``request``: an operator's command; refused, with the reason the host is
  told, when no row leaves the state or a blocker is set;
- ``boot``: the state the hub comes up in (``power_on`` sets SAFE; a stop
  latched in storage enters ESTOP through the ``C_BOOT_LATCHED`` row).

Nothing else assigns ``hub.state`` (``tests/test_supervisor_only.py``).
``update`` reads no clock, sensor or link: it is tested as a table.
"""
from hub import checks, telemetry, wire
from hub.compat import const

# trigger bits
C_ESTOP = const(0x0001)        # operator emergency stop
C_SYSTEMIC = const(0x0002)     # systemic failure: automatic emergency stop
C_BUS_LOSS = const(0x0004)     # bot-bus frame loss above limit: automatic stop
C_LINK_LOST = const(0x0008)    # host link silent while treating
C_LINK_RECALL = const(0x0010)  # host link silent too long: recall, go SAFE
C_SENS_PAUSE = const(0x0020)   # sensitivity index at the pause limit
C_DONE = const(0x0040)         # plan complete or a session cap reached
C_STOP = const(0x0080)         # operator stops treatment
C_PAUSE = const(0x0100)        # operator pauses
C_RESUME = const(0x0200)       # operator resumes (authorized)
C_START = const(0x0400)        # operator starts treatment (authorized, plan valid)
C_ARM = const(0x0800)          # operator arms (authorized)
C_DISARM = const(0x1000)       # operator disarms
C_CHECKS_STALE = const(0x2000) # armed too long: pre-treatment checks expired
C_RESET = const(0x4000)        # operator resets the emergency stop (authorized)
C_BOOT_LATCHED = const(0x8000) # boot with the emergency stop latched in storage

# blocker bits: each refuses the rows that name it, with its reason (BLOCKERS)
B_CHECKS = const(0x01)         # a pre-treatment check fails (checks.failing)
B_RESET_CHECKS = const(0x02)   # a reset check fails (checks.failing_reset)
B_HIGH_ALARM = const(0x04)     # a HIGH alarm is not acknowledged

# (blocker, refusal reason); the refusal's detail holds what is failing
BLOCKERS = (
    (B_CHECKS, wire.WHY_CHECKS),            # the failing CHECK_* bits
    (B_RESET_CHECKS, wire.WHY_CHECKS),      # the failing CHECK_* bits
    (B_HIGH_ALARM, wire.WHY_ALARM),         # the unacknowledged HIGH alarms
)

# entry actions, in the order they run (bit order)
A_UNLATCH = const(0x001)   # clear the latch in storage (refused if it fails), ALARM_ESTOP
A_DISABLE = const(0x002)   # broadcast DISABLE to every bot, before any storage write
A_RECORD = const(0x004)    # EV_STATE in the audit log (HUB_STATUS soon, after the rest)
A_LATCH = const(0x008)     # latch the stop in storage, then confirm bot by bot
A_RELATCH = const(0x010)   # boot: the latched reason, ALARM_ESTOP, DISABLE again, confirm
A_HOLD = const(0x020)      # every bot's commanded rate to 0
A_RECALL = const(0x040)    # every bot back to the dock
A_END = const(0x080)       # a running treatment ends stopped: EV_TREAT 3, consent cleared
A_DONE = const(0x100)      # a running treatment ends complete: EV_TREAT 2, consent cleared
A_ARMED = const(0x200)     # the checks' time to live starts
A_BEGIN = const(0x400)     # EV_TREAT 1: the plan in hub.plan starts
# a row's reason > 0 is an ALARM_* code: raised (and recorded if new) on entry

# source-state masks: bit (1 << HUB_*)
S_SAFE = const(1 << 0)
S_ARMED = const(1 << 1)
S_TREATING = const(1 << 2)
S_PAUSED = const(1 << 3)
S_ESTOP = const(1 << 4)
S_ANY_BUT_ESTOP = const(0x0F)
S_ANY = const(0x1F)

# (trigger, from-states, to-state, reason, blockers, entry actions): first match wins
TABLE = (
    (C_ESTOP, S_ANY_BUT_ESTOP, wire.HUB_ESTOP, wire.ALARM_ESTOP, 0,
     A_DISABLE | A_RECORD | A_LATCH),
    (C_ESTOP, S_ESTOP, wire.HUB_ESTOP, 0, 0, A_DISABLE),   # again: stopping is never refused
    (C_SYSTEMIC, S_ANY_BUT_ESTOP, wire.HUB_ESTOP, wire.ALARM_SYSTEMIC, 0,
     A_DISABLE | A_RECORD | A_LATCH),
    (C_BUS_LOSS, S_ANY_BUT_ESTOP, wire.HUB_ESTOP, wire.ALARM_BUS_LOSS, 0,
     A_DISABLE | A_RECORD | A_LATCH),
    (C_RESET, S_ESTOP, wire.HUB_SAFE, 0, B_RESET_CHECKS, A_UNLATCH | A_RECORD | A_HOLD),
    (C_LINK_RECALL, S_PAUSED | S_TREATING, wire.HUB_SAFE, wire.ALARM_LINK_RECALL, 0,
     A_RECORD | A_HOLD | A_RECALL | A_END),
    (C_SENS_PAUSE, S_TREATING, wire.HUB_PAUSED, wire.ALARM_SENS_PAUSE, 0, A_RECORD | A_HOLD),
    (C_LINK_LOST, S_TREATING, wire.HUB_PAUSED, wire.ALARM_LINK_LOST, 0, A_RECORD | A_HOLD),
    (C_DONE, S_TREATING | S_PAUSED, wire.HUB_SAFE, 0, 0, A_RECORD | A_HOLD | A_DONE),
    (C_STOP, S_ARMED | S_TREATING | S_PAUSED, wire.HUB_SAFE, 0, 0, A_RECORD | A_HOLD | A_END),
    (C_DISARM, S_ARMED | S_PAUSED, wire.HUB_SAFE, 0, 0, A_RECORD | A_HOLD | A_END),
    (C_PAUSE, S_TREATING, wire.HUB_PAUSED, 0, 0, A_RECORD | A_HOLD),
    (C_RESUME, S_PAUSED, wire.HUB_TREATING, 0, B_HIGH_ALARM, A_RECORD),
    (C_START, S_ARMED, wire.HUB_TREATING, 0, 0, A_RECORD | A_BEGIN),
    (C_ARM, S_SAFE, wire.HUB_ARMED, 0, B_CHECKS, A_RECORD | A_ARMED),
    (C_CHECKS_STALE, S_ARMED, wire.HUB_SAFE, 0, 0, A_RECORD | A_HOLD),
    (C_BOOT_LATCHED, S_SAFE, wire.HUB_ESTOP, 0, 0, A_RELATCH),
)


def update(state, conditions):
    """The index of the TABLE row that fires in ``state``, or -1.

    Returns an index rather than a tuple so that the tick allocates nothing;
    ``TABLE[i]`` gives (trigger, sources, new state, reason, blockers, actions).
    """
    if conditions:
        mask = 1 << state
        i = 0
        for row in TABLE:
            if conditions & row[0] and row[1] & mask:
                return i
            i += 1
    return -1


def allowed(state, trigger):
    """Would ``trigger`` alone move the hub out of ``state`` (blockers clear)?"""
    return update(state, trigger) >= 0


def sources(trigger):
    """The states (S_* mask) some row of ``trigger`` leaves."""
    m = 0
    for row in TABLE:
        if row[0] & trigger:
            m |= row[1]
    return m


def delivering(state):
    """The only state in which energy may be delivered."""
    return state == wire.HUB_TREATING


def blocked(hub, blockers, now):
    """The first blocker of ``blockers`` that is set: (reason, detail), or
    (WHY_NONE, 0). Only the named blockers are evaluated (they loop over the
    bots): an operator's request pays for them, the tick never does."""
    for bit, why in BLOCKERS:
        if blockers & bit:
            if bit == B_CHECKS:
                d = checks.failing(hub, now)
            elif bit == B_RESET_CHECKS:
                d = checks.failing_reset(hub, now)
            else:
                d = hub.alarms.unacked_high()
            if d:
                return why, d
    return wire.WHY_NONE, 0


# ------------------------------------------------------------ applying --

def power_on(hub):
    """The state of a hub object before ``boot``: SAFE, no reason."""
    hub.state = wire.HUB_SAFE
    hub.reason = 0


def boot(hub, now):
    """Come up SAFE, or ESTOP through ``C_BOOT_LATCHED`` if the stop is latched
    in storage: never resume a treatment."""
    power_on(hub)
    if hub.state_store.estop:
        step(hub, C_BOOT_LATCHED, now)


def step(hub, conditions, now):
    """Apply the row ``conditions`` select in the hub's state; True if one did.

    For the tick's conditions and for emergency stops, which never wait.
    A row with blockers is an operator's and is taken only by ``request``.
    """
    i = update(hub.state, conditions)
    if i < 0 or TABLE[i][4]:
        return False
    _enter(hub, i, now)
    return True


def request(hub, trigger, now):
    """An operator's ``trigger``: (status, reason, detail) for its ACK.

    Refused with ESTOP_LATCHED while latched and no row leaves ESTOP, with
    STATE (detail: the state) when no row leaves the state, with the
    blocker's reason (``BLOCKERS``) when one is set, with STORAGE when the
    latch cannot be cleared. Done: the detail is the new state.
    """
    state = hub.state
    i = update(state, trigger)
    if i < 0:
        if state == wire.HUB_ESTOP:
            return wire.ACKS_REJECTED, wire.WHY_ESTOP_LATCHED, 0
        return wire.ACKS_REJECTED, wire.WHY_STATE, state
    row = TABLE[i]
    why, detail = blocked(hub, row[4], now)
    if why:
        return wire.ACKS_REJECTED, why, detail
    if row[5] & A_UNLATCH:
        try:
            hub.state_store.clear_estop()
        except OSError:
            return wire.ACKS_REJECTED, wire.WHY_STORAGE, 0
        hub.alarms.clear(wire.ALARM_ESTOP)
    _enter(hub, i, now)
    return wire.ACKS_DONE, wire.WHY_NONE, hub.state


def _enter(hub, i, now):
    """Enter row ``i``'s state and run its entry actions."""
    _, _, to, reason, _, act = TABLE[i]
    old = hub.state
    if act & A_DISABLE:
        commands.disable_all(hub, now)          # the bots first, storage after
    why = hub.state_store.estop_reason if act & A_RELATCH else reason
    if to != old:                               # a row that stays keeps the reason
        hub.state = to
        hub.reason = why
    if act & A_RECORD:
        hub.record(wire.EV_STATE, to, old, why)
    if act & A_LATCH:
        hub.estop.begin(hub, now, why, True)
    if act & A_RELATCH:
        hub.alarms.raise_(wire.ALARM_ESTOP, now, value=why)
        hub.estop.begin(hub, now, why, False)  # bots may have missed it: again
    if act & A_HOLD:
        commands.hold_all(hub)
    if act & A_RECALL:
        commands.recall(hub, wire.ADDR_ALL)
    if act & (A_END | A_DONE) and (old == wire.HUB_TREATING or old == wire.HUB_PAUSED):
        hub.record(wire.EV_TREAT, 2 if act & A_DONE else 3)
        hub.state_store.clear_consent()
    if act & A_ARMED:
        hub.armed_at = now
    if act & A_BEGIN:
        plan = hub.plan
        hub.record(wire.EV_TREAT, 1, plan.n, plan.session_cap)
    if reason > 0:
        if hub.alarms.raise_(reason, now):
            hub.record(wire.EV_ALARM, reason, 0, 0)
    if act & A_RECORD:
        telemetry.status_soon(hub)


# Last: commands builds its command table from this module's rows.
from hub import commands  # noqa: E402
