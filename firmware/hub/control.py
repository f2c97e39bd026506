"""Treatment controller: a closed loop per site, then the dose limits.

``run`` drives each plan site's lesion depth toward its target: the rate is
proportional to how far the site is from target. ``limit`` runs after the
safety rules and has the last word before commands leave: it applies the
operator's dose scale, the sensitivity and heat throttles, the rate cap and
the per-site and per-session dose caps. Inputs are conservative: a site's
depth is the shallowest fresh reading (a drifting sensor cannot raise the
dose), and a site with no fresh reading gets nothing.

Dose unit: 1 udu (micro dose unit); a bot at 100 % delivers 1000 udu/s.
"""
from hub import dose, frame, supervisor, wire
from hub import params as P
from hub.compat import const

_NONE = const(255)
_FULL = const(1000)        # udu/s of one bot at 100 %
_KP = const(2)             # percent per micrometre above target


def account(hub, now, dt):
    """Dose per site and in total (hub/dose.py): no per-bot work here."""
    sw = hub.swarm
    plan = hub.plan
    dose.accrue(sw, plan, now)
    dose.totals(hub)
    if dt > 0 and hub.state == wire.HUB_TREATING:
        left = plan.left_ms                 # the treatment's duration counts down
        if left > 0:
            plan.left_ms = left - dt if left > dt else 0


def gather(hub):
    """Each plan site's fresh readings and usable bots: one pass over the bots.

    Runs only when a report arrived or a bot's state or target changed
    (``swarm.dirty``): readings only change then. A bot is fresh while the
    safety sweep has not marked it LOST (it does so the tick its silence
    passes ``bot_lost_ms``, before this runs).
    """
    frame._IMPL[6](hub.plan, hub.swarm)    # hub.viperbytes.gather


def run(hub, now, dt):
    """Per-site rate from the lesion-depth error; sets plan.rate (O(sites))."""
    plan = hub.plan
    sw = hub.swarm
    n = plan.n
    if not n:
        sw.dirty = 0
        return
    if sw.dirty:
        gather(hub)
        sw.dirty = 0
    fresh = plan.fresh
    treating = hub.state == wire.HUB_TREATING
    for k in range(n):
        if not treating or not fresh[k]:
            plan.rate[k] = 0                 # not treating, or no data: nothing
            continue
        err = plan.depth[k] - plan.target[k]
        if err <= 0:
            plan.done[k] = 1
            plan.rate[k] = 0
            continue
        plan.done[k] = 0
        r = err * _KP
        plan.rate[k] = 100 if r > 100 else r


def _write_rates(hub, now, treating):
    """Per-bot command rates from the per-site ones (only when one changed)."""
    sw = hub.swarm
    plan = hub.plan
    out = plan.out
    slot = plan.slot
    target = sw.target
    state = sw.state
    cmd = sw.cmd_rate
    sw.send_all = 1                        # hub/commands.bus_send: look at every bot
    for i in range(sw.n):
        r = 0
        if treating:
            t = target[i]
            if t != _NONE:
                k = slot[t]
                if k != 255:
                    s = state[i]
                    if s == wire.BOT_DEPLOYED or s == wire.BOT_ACTIVE:
                        r = out[k]
        if r > cmd[i]:
            dose.raise_to(sw, plan, i, r, now)
        cmd[i] = r


def limit(hub, now):
    """Apply every cap and throttle; write the per-bot command rates.

    The per-site work runs every tick; the per-bot rates are written only when
    a site's rate changed, a bot's state or target changed, or a host command
    ran (it may have held bots).
    """
    plan = hub.plan
    sw = hub.swarm
    treating = hub.state == wire.HUB_TREATING
    out = plan.out
    if not treating:
        if sw.changed or plan.live:
            _write_rates(hub, now, False)
            plan.live = 0
        return
    pr = hub.params
    heat_thr = pr.get(P.P_HEAT_THROTTLE)
    done = 1
    capped = 0
    moved = sw.changed or not plan.live
    for k in range(plan.n):
        r = plan.rate[k] * hub.scale // 100
        r = r * hub.patient.factor // 100
        if plan.fresh[k] and plan.temp[k] >= heat_thr:
            r = r // 2
        if plan.dose[k] >= plan.site_cap:
            if r:
                capped = 1
            r = 0
        nb = plan.nb[k]
        if nb and r:
            most = plan.rate_cap * 100 // (_FULL * nb)
            if r > most:
                r = most
        plan.rate[k] = r
        if out[k] != r:
            out[k] = r
            moved = 1
        if not plan.done[k] and plan.dose[k] < plan.site_cap:
            done = 0
    if hub.dose_total >= plan.session_cap:
        capped = 1
        done = 1
    if plan.left_ms == 0:                   # its whole duration treated
        done = 1
    if capped:
        if hub.alarms.raise_(wire.ALARM_DOSE_CAP, now, value=hub.dose_total):
            hub.record(wire.EV_CLAMP, 0, 1, hub.dose_total)
    if done:
        for k in range(plan.n):
            out[k] = 0
        _write_rates(hub, now, False)
        plan.live = 0
        hub.apply(supervisor.C_DONE)
        return
    if moved:
        _write_rates(hub, now, True)
        plan.live = 1
