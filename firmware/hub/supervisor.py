"""Hub state machine: a transition table and a pure update function.

Conditions are bits gathered elsewhere (operator commands and safety rules);
``update(state, conditions)`` picks the first row of the table whose trigger
is set and whose source states include ``state``. Rows are in priority order:
emergency stop first, then the automatic protections, then the operator.
Nothing here reads a clock, a sensor or a link: it is tested as a table.
"""
from hub import wire
from hub.compat import const

# condition bits
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
C_START = const(0x0400)        # operator starts treatment (authorized)
C_ARM = const(0x0800)          # operator arms (authorized, checks passed)
C_DISARM = const(0x1000)       # operator disarms
C_CHECKS_STALE = const(0x2000) # armed too long: pre-treatment checks expired
C_RESET = const(0x4000)        # operator resets the emergency stop (authorized)

_SAFE = const(1 << 0)
_ARMED = const(1 << 1)
_TREATING = const(1 << 2)
_PAUSED = const(1 << 3)
_ESTOP = const(1 << 4)
_ANY_BUT_ESTOP = const(0x0F)

# (trigger, from-states mask, to-state, reason): first match wins
TABLE = (
    (C_ESTOP, _ANY_BUT_ESTOP, wire.HUB_ESTOP, wire.ALARM_ESTOP),
    (C_SYSTEMIC, _ANY_BUT_ESTOP, wire.HUB_ESTOP, wire.ALARM_SYSTEMIC),
    (C_BUS_LOSS, _ANY_BUT_ESTOP, wire.HUB_ESTOP, wire.ALARM_BUS_LOSS),
    (C_RESET, _ESTOP, wire.HUB_SAFE, 0),
    (C_LINK_RECALL, _PAUSED | _TREATING, wire.HUB_SAFE, wire.ALARM_LINK_RECALL),
    (C_SENS_PAUSE, _TREATING, wire.HUB_PAUSED, wire.ALARM_SENS_PAUSE),
    (C_LINK_LOST, _TREATING, wire.HUB_PAUSED, wire.ALARM_LINK_LOST),
    (C_DONE, _TREATING | _PAUSED, wire.HUB_SAFE, 0),
    (C_STOP, _ARMED | _TREATING | _PAUSED, wire.HUB_SAFE, 0),
    (C_DISARM, _ARMED | _PAUSED, wire.HUB_SAFE, 0),
    (C_PAUSE, _TREATING, wire.HUB_PAUSED, 0),
    (C_RESUME, _PAUSED, wire.HUB_TREATING, 0),
    (C_START, _ARMED, wire.HUB_TREATING, 0),
    (C_ARM, _SAFE, wire.HUB_ARMED, 0),
    (C_CHECKS_STALE, _ARMED, wire.HUB_SAFE, 0),
)


def update(state, conditions):
    """The index of the TABLE row that fires in ``state``, or -1.

    Returns an index rather than a tuple so that the tick allocates nothing;
    ``TABLE[i]`` gives (trigger, sources, new state, reason).
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
    """Would ``trigger`` alone move the hub out of ``state``?"""
    return update(state, trigger) >= 0


def delivering(state):
    """The only state in which energy may be delivered."""
    return state == wire.HUB_TREATING
