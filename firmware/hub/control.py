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
from hub import supervisor, wire
from hub import params as P
from hub.compat import const

_NONE = const(255)
_FULL = const(1000)        # udu/s of one bot at 100 %
_KP = const(2)             # percent per micrometre above target


def account(hub, dt):
    """Estimate delivered dose from reported activity (fresh reports only)."""
    if dt <= 0:
        return
    sw = hub.swarm
    plan = hub.plan
    now = hub.now
    lost = hub.params.get(P.P_BOT_LOST_MS)
    total = 0
    for i in range(sw.n):
        a = sw.activity[i]
        if a and sw.silent_ms(i, now) <= lost:
            d = a * dt * _FULL // 100000
            sw.dose[i] += d
            if plan.n:
                k = plan.index(sw.site[i])
                if k >= 0:
                    plan.dose[k] += d
        total += sw.dose[i]
    hub.dose_total = total
    if hub.state == wire.HUB_TREATING:
        plan.treated_ms += dt


def run(hub, now, dt):
    """Per-site rate from the lesion-depth error; sets plan.rate.

    One pass over the bots gathers each plan site's fresh readings (the cost
    grows with bots + sites, not bots x sites), then one pass over the sites.
    """
    plan = hub.plan
    sw = hub.swarm
    n = plan.n
    if not n:
        return
    lost = hub.params.get(P.P_BOT_LOST_MS)
    depth = plan.depth
    temp = plan.temp
    fresh = plan.fresh
    nb = plan.nb
    for k in range(n):
        fresh[k] = 0
        nb[k] = 0
    slot = plan.slot
    target = sw.target
    site = sw.site
    for i in range(sw.n):
        t = target[i]
        if t == _NONE:
            continue
        k = slot[t]
        if k == 255:
            continue
        if sw.usable(i):
            nb[k] += 1
        if site[i] != t or sw.state[i] == wire.BOT_QUARANTINED or sw.silent_ms(i, now) > lost:
            continue
        d = sw.depth[i]
        tp = sw.temp[i]
        if not fresh[k] or d < depth[k]:
            depth[k] = d
        if not fresh[k] or tp > temp[k]:
            temp[k] = tp
        fresh[k] += 1
        plan.ph[k] = sw.ph[i]
        plan.bact[k] = sw.bacteria[i]
    treating = hub.state == wire.HUB_TREATING
    for k in range(n):
        if not treating or not fresh[k]:
            plan.rate[k] = 0                 # not treating, or no data: nothing
            continue
        err = depth[k] - plan.target[k]
        if err <= 0:
            plan.done[k] = 1
            plan.rate[k] = 0
            continue
        plan.done[k] = 0
        r = err * _KP
        plan.rate[k] = 100 if r > 100 else r


def limit(hub, now):
    """Apply every cap and throttle; write the per-bot command rates."""
    plan = hub.plan
    sw = hub.swarm
    treating = hub.state == wire.HUB_TREATING
    if not treating:
        for i in range(sw.n):
            sw.cmd_rate[i] = 0
        return
    pr = hub.params
    heat_thr = pr.get(P.P_HEAT_THROTTLE)
    done = 1
    capped = 0
    for k in range(plan.n):
        r = plan.rate[k] * hub.scale // 100
        r = r * hub.sens_factor // 100
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
        if not plan.done[k] and plan.dose[k] < plan.site_cap:
            done = 0
    slot = plan.slot
    for i in range(sw.n):
        t = sw.target[i]
        k = slot[t] if t != _NONE else 255
        if k == 255 or not sw.usable(i):
            sw.cmd_rate[i] = 0
        else:
            sw.cmd_rate[i] = plan.rate[k]
    if hub.dose_total >= plan.session_cap:
        capped = 1
        done = 1
    if plan.duration and plan.treated_ms >= plan.duration * 1000:
        done = 1
    if capped:
        if hub.alarms.raise_(wire.ALARM_DOSE_CAP, now, value=hub.dose_total):
            hub.record(wire.EV_CLAMP, 0, 1, hub.dose_total)
    if done:
        for i in range(sw.n):
            sw.cmd_rate[i] = 0
        hub.apply(supervisor.C_DONE)
