"""Safety rules (DESIGN section 5): gather conditions, act on bots.

Per-bot rules run when they can change, not for every bot every tick:
``on_report`` applies the rules a report can trip (runaway -> quarantine,
site overheating -> quarantine) as the report arrives, so a runaway is
quarantined in the tick that reads the report that shows it. ``run`` sweeps
for silent bots (silent -> LOST -> quarantine) only when the oldest deadline
has passed, then computes the heat and sensitivity throttles and bus health.
``conditions`` returns the supervisor's condition bits (systemic failure, bus
loss, host link loss, sensitivity pause, stale checks); its bot counts are
recounted only when a bot's state or target changed. Every threshold is a
bounded parameter. Each rule has a dwell (a time or a count) so a brief
spike below it does not trigger.
"""
from hub import commands, dose, supervisor, wire
from hub import params as P
from hub.compat import const, ticks_add, ticks_diff

_NONE = const(255)
_SENS_STALE_MS = const(1000)
_BUS_WINDOW_MS = const(1000)
_SWEEP_MAX_MS = const(1000)     # silent bots' provisional dose is folded at least this often
_POLL_EVERY = const(15)
_QUAR = wire.BOT_QUARANTINED
_DISABLED = wire.BOT_DISABLED
_DOCKED = wire.BOT_DOCKED


def on_report(hub, i, now):
    """The rules a fresh report of bot i can trip (called from the ingest)."""
    sw = hub.swarm
    s = sw.state[i]
    if s == _QUAR or s == _DISABLED:
        return
    if s == _DOCKED and sw.target[i] == _NONE:
        return
    v = hub.params._v               # read-only, straight from the table: once per report
    a = sw.activity[i]
    # runaway: output above what the hub commanded, once the lag is over
    if a > sw.sent_rate[i] + v[P.P_RUNAWAY_MARGIN] and \
            ticks_diff(now, sw.dec_at[i]) >= v[P.P_RUNAWAY_GRACE]:
        sw.runaway[i] += 1
        if sw.runaway[i] >= v[P.P_RUNAWAY_TICKS]:
            _quarantine(hub, i, wire.ALARM_RUNAWAY)
            if hub.alarms.raise_(wire.ALARM_RUNAWAY, now, i, sw.site[i], a):
                hub.record(wire.EV_ALARM, wire.ALARM_RUNAWAY, i, a)
            return
    elif sw.runaway[i]:
        sw.runaway[i] = 0
    if sw.temp[i] >= v[P.P_HEAT_QUAR] and sw.site[i] != _NONE:
        _quarantine_site(hub, sw.site[i], now, sw.temp[i])


def _quarantine(hub, i, cause):
    commands.quarantine(hub, i, cause)
    hub.swarm.changed = 1
    hub.swarm.dirty = 1


def run(hub, now):
    sw = hub.swarm
    v = hub.params._v
    io = sw.io                              # (hub.swarm: what the ingest is handed)
    io[4] = v[P.P_RUNAWAY_MARGIN]           # the ingest calls on_report only past these
    io[5] = v[P.P_HEAT_QUAR]
    io[6] = v[P.P_LEASE_MS]                 # how long a missed decrease may go unheard
    if ticks_diff(now, sw.sweep_at) >= 0:
        _sweep(hub, now)
    _heat_throttle_alarm(hub, now)
    _sensitivity(hub, now)
    _bus(hub, now)


def _sweep(hub, now):
    """Silent bots: LOST after bot_lost_ms, quarantined after bot_quar_ms.

    Runs when the earliest deadline of any bot has come (and at least every
    ``_SWEEP_MAX_MS``); it sets the next one. Silence only grows between
    reports, so a bot can only cross its deadline at or after the time this
    sweep computed: none is late.
    """
    sw = hub.swarm
    plan = hub.plan
    pr = hub.params
    al = hub.alarms
    lost_ms = pr.get(P.P_BOT_LOST_MS)
    quar_ms = pr.get(P.P_BOT_QUAR_MS)
    nxt = _SWEEP_MAX_MS
    any_lost = 0
    state = sw.state
    heard = sw.heard
    ever = sw.heard_ever
    for i in range(sw.n):
        if i & _POLL_EVERY == _POLL_EVERY:
            # the host link every 16 bots (the sweep runs from the tick only):
            # an emergency stop waits for a few bots' worth, not the swarm's
            hub._poll_host(now)
        if not ever[i]:
            continue
        silent = ticks_diff(now, heard[i])
        if sw.prate[i] and silent >= _SWEEP_MAX_MS:
            dose.settle(sw, plan, i, now)       # keeps the provisional sums small
        s = state[i]
        if s == wire.BOT_QUARANTINED or s == wire.BOT_DISABLED:
            continue
        if s == wire.BOT_DOCKED and sw.target[i] == _NONE:
            continue
        if silent > quar_ms:
            _quarantine(hub, i, wire.ALARM_BOT_LOST)
            if al.raise_(wire.ALARM_BOT_QUARANTINE, now, i, sw.target[i], silent):
                hub.record(wire.EV_ALARM, wire.ALARM_BOT_QUARANTINE, i, silent)
            continue
        if silent > lost_ms:
            any_lost = 1
            if s != wire.BOT_LOST:
                state[i] = wire.BOT_LOST
                sw.changed = 1
                sw.dirty = 1
                hub.record(wire.EV_BOT, i, wire.BOT_LOST, silent)
                if al.raise_(wire.ALARM_BOT_LOST, now, i, sw.target[i], silent):
                    hub.record(wire.EV_ALARM, wire.ALARM_BOT_LOST, i, silent)
            d = quar_ms + 1 - silent
        else:
            d = lost_ms + 1 - silent
        if d < nxt:
            nxt = d
    if not any_lost:
        al.clear(wire.ALARM_BOT_LOST)
    sw.sweep_at = ticks_add(now, nxt)


def _quarantine_site(hub, site, now, temp):
    sw = hub.swarm
    for j in range(sw.n):
        if sw.site[j] == site and sw.target[j] == site:
            _quarantine(hub, j, wire.ALARM_HEAT_QUARANTINE)
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
    s = hub.patient.sens
    if not hub.patient.heard or ticks_diff(now, hub.patient.at) > _SENS_STALE_MS:
        hub.patient.factor = 0
        return
    if s >= pause:
        hub.patient.factor = 0
    elif s >= thr:
        hub.patient.factor = (pause - s) * 100 // (pause - thr)
        if hub.alarms.raise_(wire.ALARM_SENS_THROTTLE, now, value=s):
            hub.record(wire.EV_ALARM, wire.ALARM_SENS_THROTTLE, 0, s)
    else:
        hub.patient.factor = 100
        hub.alarms.clear(wire.ALARM_SENS_THROTTLE)


def _bus(hub, now):
    """Frame loss on the bot bus over a sliding one-second window."""
    if ticks_diff(now, hub.bus.window) < _BUS_WINDOW_MS:
        return
    ok, lost = hub.bus.ok, hub.bus.lost + hub.bus.bad
    hub.bus.ok = hub.bus.lost = hub.bus.bad = 0
    hub.bus.window = now
    total = ok + lost
    hub.bus.link = 100 if total == 0 else ok * 100 // total
    hub.bus.loss_now = lost * 100 // total if total >= 5 else 0


def _count(sw):
    """Bots in the mouth, and those of them LOST or QUARANTINED (bots withdrawn
    from a hot site are healthy: not a systemic failure)."""
    mouth = bad = 0
    target = sw.target
    state = sw.state
    for i in range(sw.n):
        if target[i] != _NONE:
            mouth += 1
            s = state[i]
            if s == wire.BOT_LOST or (s == wire.BOT_QUARANTINED and
                                      sw.cause[i] != wire.ALARM_HEAT_QUARANTINE):
                bad += 1
    sw.mouth = mouth
    sw.bad = bad


def conditions(hub, now):
    """The supervisor's condition bits for this tick."""
    pr = hub.params
    c = 0
    sw = hub.swarm
    if sw.changed:
        _count(sw)
    mouth = sw.mouth
    bad = sw.bad
    st = hub.state
    if mouth and bad * 100 >= pr.get(P.P_SYSTEMIC_PCT) * mouth:
        c |= supervisor.C_SYSTEMIC
    if mouth and hub.bus.loss_now >= pr.get(P.P_BUS_LOSS_PCT):
        c |= supervisor.C_BUS_LOSS
        if hub.alarms.raise_(wire.ALARM_BUS_LOSS, now, value=hub.bus.loss_now):
            hub.record(wire.EV_ALARM, wire.ALARM_BUS_LOSS, 0, hub.bus.loss_now)
    if st == wire.HUB_TREATING or st == wire.HUB_PAUSED:
        silent = ticks_diff(now, hub.host_heard)
        if silent > pr.get(P.P_HB_RECALL_MS):
            c |= supervisor.C_LINK_RECALL
        elif silent > pr.get(P.P_HB_PAUSE_MS) and st == wire.HUB_TREATING:
            c |= supervisor.C_LINK_LOST
    if st == wire.HUB_TREATING and hub.patient.heard and hub.patient.sens >= pr.get(P.P_SENS_PAUSE):
        c |= supervisor.C_SENS_PAUSE
        if not hub.patient.adverse:
            hub.patient.adverse = True
            hub.record(wire.EV_ADVERSE, 1, 0, hub.patient.sens)
    if st == wire.HUB_ARMED and ticks_diff(now, hub.armed_at) > pr.get(P.P_CHECK_TTL_MS):
        c |= supervisor.C_CHECKS_STALE
    return c
