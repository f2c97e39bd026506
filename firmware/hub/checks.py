"""Pre-treatment checks: each failing check is a CHECK_* bit.

A refused ARM reports the bits, so the operator sees which check failed.
"""
from hub import wire
from hub import params as P
from hub.compat import ticks_diff


def failing(hub, now):
    """CHECK_* bits that fail now (0: ready to arm)."""
    bad = _common(hub, now)
    sw = hub.swarm
    lost = hub.params.get(P.P_BOT_LOST_MS)
    deployed = 0
    for i in range(sw.n):
        if not sw.in_mouth(i):
            continue
        deployed += 1
        s = sw.state[i]
        if s != wire.BOT_DEPLOYED or sw.site[i] != sw.target[i] \
                or sw.silent_ms(i, now) > lost or sw.health[i] < 50:
            bad |= wire.CHECK_BOTS
    if not deployed:
        bad |= wire.CHECK_DEPLOYED
    if hub.state_store.consent is None:
        bad |= wire.CHECK_CONSENT
    return bad


def failing_reset(hub, now):
    """Checks that must pass before an emergency stop may be reset.

    Besides the common checks, no lost or quarantined bot may still be in the
    mouth: the systemic rule would latch the stop again at the next tick, and
    the operator would have been told "done" for nothing.
    """
    bad = _common(hub, now)
    sw = hub.swarm
    for i in range(sw.n):
        s = sw.state[i]
        if sw.in_mouth(i) and (s == wire.BOT_LOST or s == wire.BOT_QUARANTINED):
            bad |= wire.CHECK_BOTS
            break
    return bad


def _common(hub, now):
    bad = 0
    if not hub.host_ever or ticks_diff(now, hub.host_heard) > hub.params.get(P.P_HB_PAUSE_MS):
        bad |= wire.CHECK_LINK
    if not hub.params.valid():
        bad |= wire.CHECK_PARAMS
    if not hub.log_ok:
        bad |= wire.CHECK_LOG
    if not hub.state_store.keyed:
        bad |= wire.CHECK_KEY
    if hub.alarms.unacked_high() or hub.patient.adverse:
        bad |= wire.CHECK_ALARMS
    return bad
