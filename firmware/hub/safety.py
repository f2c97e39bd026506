"""Safety rules (DESIGN section 5): gather conditions, act on bots.

``run`` applies the per-bot rules every tick (silent -> LOST -> quarantine,
runaway -> quarantine, site overheating -> quarantine) and computes the
sensitivity throttle. ``conditions`` returns the supervisor's condition bits
(systemic failure, bus loss, host link loss, sensitivity pause, stale checks).
Every threshold is a bounded parameter. Each rule has a dwell (a time or a
tick count) so a brief spike below it does not trigger.
"""
from hub import commands, supervisor, wire
from hub import params as P
from hub.compat import const, ticks_diff

_NONE = const(255)
_SENS_STALE_MS = const(1000)
_BUS_WINDOW_MS = const(1000)


def run(hub, now):
    sw = hub.swarm
    pr = hub.params
    al = hub.alarms
    lost_ms = pr.get(P.P_BOT_LOST_MS)
    quar_ms = pr.get(P.P_BOT_QUAR_MS)
    ticks = pr.get(P.P_RUNAWAY_TICKS)
    margin = pr.get(P.P_RUNAWAY_MARGIN)
    heat_quar = pr.get(P.P_HEAT_QUAR)
    grace = pr.get(P.P_RUNAWAY_GRACE)
    any_lost = 0
    for i in range(sw.n):
        s = sw.state[i]
        if s == wire.BOT_QUARANTINED or s == wire.BOT_DISABLED:
            continue
        if not sw.in_mouth(i) and s == wire.BOT_DOCKED:
            continue
        silent = sw.silent_ms(i, now)
        if sw.heard_ever[i] and silent > quar_ms:
            commands.quarantine(hub, i, wire.ALARM_BOT_LOST)
            if al.raise_(wire.ALARM_BOT_QUARANTINE, now, i, sw.target[i], silent):
                hub.record(wire.EV_ALARM, wire.ALARM_BOT_QUARANTINE, i, silent)
            continue
        if sw.heard_ever[i] and silent > lost_ms:
            any_lost = 1
            if s != wire.BOT_LOST:
                sw.state[i] = wire.BOT_LOST
                hub.record(wire.EV_BOT, i, wire.BOT_LOST, silent)
                if al.raise_(wire.ALARM_BOT_LOST, now, i, sw.target[i], silent):
                    hub.record(wire.EV_ALARM, wire.ALARM_BOT_LOST, i, silent)
            continue
        # runaway: output above what the hub commanded, once the lag is over
        if sw.activity[i] > sw.sent_rate[i] + margin and \
                ticks_diff(now, sw.dec_at[i]) >= grace and silent <= lost_ms:
            sw.runaway[i] += 1
            if sw.runaway[i] >= ticks:
                commands.quarantine(hub, i, wire.ALARM_RUNAWAY)
                if al.raise_(wire.ALARM_RUNAWAY, now, i, sw.site[i], sw.activity[i]):
                    hub.record(wire.EV_ALARM, wire.ALARM_RUNAWAY, i, sw.activity[i])
                continue
        else:
            sw.runaway[i] = 0
        if sw.temp[i] >= heat_quar and sw.site[i] != _NONE:
            _quarantine_site(hub, sw.site[i], now, sw.temp[i])
    if not any_lost:
        al.clear(wire.ALARM_BOT_LOST)
    _heat_throttle_alarm(hub, now)
    _sensitivity(hub, now)
    _bus(hub, now)


def _quarantine_site(hub, site, now, temp):
    sw = hub.swarm
    for j in range(sw.n):
        if sw.site[j] == site and sw.target[j] == site:
            commands.quarantine(hub, j, wire.ALARM_HEAT_QUARANTINE)
    if hub.alarms.raise_(wire.ALARM_HEAT_QUARANTINE, now, _NONE, site, temp):
        hub.record(wire.EV_ALARM, wire.ALARM_HEAT_QUARANTINE, site, temp)


def _heat_throttle_alarm(hub, now):
    plan = hub.plan
    thr = hub.params.get(P.P_HEAT_THROTTLE)
    hot = 0
    for k in range(plan.n):
        if plan.fresh[k] and plan.temp[k] >= thr:
            hot = 1
            if hub.alarms.raise_(wire.ALARM_HEAT_THROTTLE, now, _NONE, plan.site[k], plan.temp[k]):
                hub.record(wire.EV_ALARM, wire.ALARM_HEAT_THROTTLE, plan.site[k], plan.temp[k])
    if not hot:
        hub.alarms.clear(wire.ALARM_HEAT_THROTTLE)


def _sensitivity(hub, now):
    """Throttle linearly from the throttle level to zero at the pause level.

    No recent patient reading while treating: deliver nothing (stale data may
    only reduce dosing).
    """
    pr = hub.params
    thr = pr.get(P.P_SENS_THROTTLE)
    pause = pr.get(P.P_SENS_PAUSE)
    s = hub.sens
    if not hub.sens_heard or ticks_diff(now, hub.sens_at) > _SENS_STALE_MS:
        hub.sens_factor = 0
        return
    if s >= pause:
        hub.sens_factor = 0
    elif s >= thr:
        hub.sens_factor = (pause - s) * 100 // (pause - thr)
        if hub.alarms.raise_(wire.ALARM_SENS_THROTTLE, now, value=s):
            hub.record(wire.EV_ALARM, wire.ALARM_SENS_THROTTLE, 0, s)
    else:
        hub.sens_factor = 100
        hub.alarms.clear(wire.ALARM_SENS_THROTTLE)


def _bus(hub, now):
    """Frame loss on the bot bus over a sliding one-second window."""
    if ticks_diff(now, hub.bus_window) < _BUS_WINDOW_MS:
        return
    ok, lost = hub.bus_ok, hub.bus_lost + hub.bus_bad
    hub.bus_ok = hub.bus_lost = hub.bus_bad = 0
    hub.bus_window = now
    total = ok + lost
    hub.bus_link = 100 if total == 0 else ok * 100 // total
    hub.bus_loss_now = lost * 100 // total if total >= 5 else 0


def conditions(hub, now):
    """The supervisor's condition bits for this tick."""
    pr = hub.params
    c = 0
    sw = hub.swarm
    mouth = bad = 0
    for i in range(sw.n):
        if sw.in_mouth(i):
            mouth += 1
            s = sw.state[i]
            # bots withdrawn from a hot site are healthy: not a systemic failure
            if s == wire.BOT_LOST or (s == wire.BOT_QUARANTINED and
                                      sw.cause[i] != wire.ALARM_HEAT_QUARANTINE):
                bad += 1
    st = hub.state
    if mouth and bad * 100 >= pr.get(P.P_SYSTEMIC_PCT) * mouth:
        c |= supervisor.C_SYSTEMIC
    if mouth and hub.bus_loss_now >= pr.get(P.P_BUS_LOSS_PCT):
        c |= supervisor.C_BUS_LOSS
        if hub.alarms.raise_(wire.ALARM_BUS_LOSS, now, value=hub.bus_loss_now):
            hub.record(wire.EV_ALARM, wire.ALARM_BUS_LOSS, 0, hub.bus_loss_now)
    if st == wire.HUB_TREATING or st == wire.HUB_PAUSED:
        silent = ticks_diff(now, hub.host_heard)
        if silent > pr.get(P.P_HB_RECALL_MS):
            c |= supervisor.C_LINK_RECALL
        elif silent > pr.get(P.P_HB_PAUSE_MS) and st == wire.HUB_TREATING:
            c |= supervisor.C_LINK_LOST
    if st == wire.HUB_TREATING and hub.sens_heard and hub.sens >= pr.get(P.P_SENS_PAUSE):
        c |= supervisor.C_SENS_PAUSE
        if not hub.adverse:
            hub.adverse = True
            hub.record(wire.EV_ADVERSE, 1, 0, hub.sens)
    if st == wire.HUB_ARMED and ticks_diff(now, hub.armed_at) > pr.get(P.P_CHECK_TTL_MS):
        c |= supervisor.C_CHECKS_STALE
    return c
