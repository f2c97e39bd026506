"""Dose accounting: exact from the bots' own counters, conservative between.

Every bot report carries the bot's cumulative delivered-dose counter (udu,
rounded up, modulo 65536). The hub credits the difference since the bot's
last report: a lost report is made good by the next one, a repeated one adds
nothing, and nothing is truncated. That is the *confirmed* dose.

Between two reports of a bot (and for as long as a bot is silent and not
confirmed disabled) the hub adds a *provisional* dose at the bot's rate bound:
the larger of its last reported activity and the rate the hub commanded since,
plus ``MARGIN`` points (reported activity is rounded and noisy). The next
report replaces it with the confirmed difference. Caps read confirmed plus
provisional, so stale or missing data can only raise the count.

Provisional dose is kept in pct x ms (1 udu = 100 pct x ms): per bot a rate
and a start time, summed per site and in total incrementally, so a tick does
no per-bot work: ``accrue`` adds (sum of rates) x dt. A bot's live part is
folded into whole udu (``settle``) whenever its rate changes and at least
once a second while it is silent (the safety sweep), which keeps every sum below 2**30
(counts saturate at 2**28 udu, far above the largest cap).
"""
from hub import wire
from hub.compat import const, ticks_diff

_NONE = const(255)
# public: the viper twin of ``report`` (hub.viperbytes.book) reads them
MARGIN = const(3)           # percent points over the rate bound (report rounding, noise)
SLACK_MS = const(1000)      # report arrival jitter allowed when judging a counter step
SAT = const(0x10000000)
_RD = wire.R_BOT_REPORTS_DOSE
_DISABLED = wire.BOT_DISABLED
_ACTIVE = wire.BOT_ACTIVE    # counts stop growing here (far above any cap): ints stay small


def accrue(sw, plan, now):
    """Add the provisional dose of every bot up to ``now`` (O(sites))."""
    dt = ticks_diff(now, sw.acc_t)
    if dt <= 0:
        return
    sw.acc_t = now
    r = sw.prs_total
    if r:
        sw.pfine_total += r * dt
        prs = plan.prs
        pfine = plan.pfine
        for k in range(plan.n):
            if prs[k]:
                pfine[k] += prs[k] * dt


def totals(hub):
    """Per-site and total dose the caps read: confirmed plus provisional."""
    sw = hub.swarm
    plan = hub.plan
    for k in range(plan.n):
        plan.dose[k] = plan.dconf[k] + plan.pset[k] + (plan.pfine[k] + 99) // 100
    hub.dose_total = sw.conf_total + sw.pset_total + (sw.pfine_total + 99) // 100


def settle(sw, plan, i, now):
    """Fold bot i's live provisional part into whole udu (rounded up)."""
    r = sw.prate[i]
    live = r * ticks_diff(now, sw.pt[i])
    sw.pt[i] = now
    if not live:
        return
    u = (live + 99) // 100
    if sw.pset_total > SAT:
        u = 0                                      # saturated: keep what is counted
    sw.pdose[i] += u
    sw.pfine_total -= live
    sw.pset_total += u
    k = sw.pk[i]
    if k != _NONE:
        plan.pfine[k] -= live
        plan.pset[k] += u


def report(hub, sw, plan, i, b, o, prev, t0, now):
    """Bot i's report (record at b[o]) arrived; ``prev`` is when the last one did.

    ``t0`` is the earliest time the report may date from (``now`` unless the
    bus had more than one poll could read: then the time of that poll): the
    new provisional dose runs from there. Called after the report's fields
    are in the tables, with ``accrue`` done up to ``now``. Returns the
    counter when it went backwards (a restart), else -1. Once per report per
    bot: written flat, without calls, because it is the hub's hottest code.
    Its viper twin is ``hub.viperbytes.book`` (with the ingest's bookkeeping):
    change both alike.
    """
    c = b[o + _RD] | (b[o + _RD + 1] << 8)
    site = sw.site[i]
    pk = sw.pk
    k0 = pk[i]
    k = plan.slot[site] if site != _NONE else k0
    # the provisional dose so far, in udu (rounded up): replaced below
    prate = sw.prate
    pt = sw.pt
    r0 = prate[i]
    pd = sw.pdose[i]
    live = r0 * ticks_diff(now, pt[i]) if r0 else 0
    restart = -1
    ok = sw.ctr_ok
    ctr = sw.ctr
    if ok[i]:
        d = (c - ctr[i]) & 0xFFFF
        if d:
            e = ticks_diff(now, prev) + SLACK_MS  # at most 1 udu per ms (100 %)
            if d <= e:
                if e >= 65536:
                    d += ((e - d) >> 16) << 16     # it may have wrapped: count the most
            else:
                d = pd + (live + 99) // 100 + c    # restarted: keep what was counted
                restart = c
            if sw.conf_total < SAT:
                sw.dose[i] += d
                sw.conf_total += d
                if k != _NONE:
                    plan.dconf[k] += d
    ok[i] = 1                                      # (the first report is the baseline)
    ctr[i] = c
    # the new rate bound, from the report and the hub's commands
    r = 0
    said = sw.said[i]
    if said != _DISABLED:
        a = sw.activity[i]
        r = a
        x = sw.cmd_rate[i]
        if x > r:
            r = x
        x = sw.sent_rate[i]
        if x > r:
            r = x
        if r:
            r += MARGIN
        if r < r0 and (t0 != now or (said == _ACTIVE and not a)):
            # a report that waited unread predates commands sent since; one that
            # is active yet reads 0 is ramping up: keep the bound they may follow
            r = r0
    if r0 or pd or r:
        live2 = r * ticks_diff(now, t0) if r else 0
        sw.pfine_total += live2 - live
        sw.pset_total -= pd
        sw.prs_total += r - r0
        if k0 != k:
            if k0 != _NONE:
                plan.pfine[k0] -= live
                plan.pset[k0] -= pd
                plan.prs[k0] -= r0
            if k != _NONE:
                plan.pfine[k] += live2
                plan.prs[k] += r
        elif k != _NONE:                           # the same site: one update each
            plan.pfine[k] += live2 - live
            plan.pset[k] -= pd
            plan.prs[k] += r - r0
        sw.pdose[i] = 0
        prate[i] = r
    pt[i] = t0
    pk[i] = k
    return restart


def raise_to(sw, plan, i, rate, now):
    """The hub commands bot i ``rate`` %: its provisional rate never stays below."""
    r = rate + MARGIN
    if r > sw.prate[i]:
        settle(sw, plan, i, now)
        sw.prs_total += r - sw.prate[i]
        k = sw.pk[i]
        if k != _NONE:
            plan.prs[k] += r - sw.prate[i]
        sw.prate[i] = r


def bot(sw, i, now):
    """Bot i's count: confirmed plus provisional (for telemetry and tests)."""
    return sw.dose[i] + sw.pdose[i] + (sw.prate[i] * ticks_diff(now, sw.pt[i]) + 99) // 100


def reset(hub, now):
    """A treatment starts: counts restart at 0 (the counters' baselines stay)."""
    sw = hub.swarm
    plan = hub.plan
    accrue(sw, plan, now)
    sw.conf_total = sw.pset_total = sw.pfine_total = sw.prs_total = 0
    for k in range(len(plan.dconf)):
        plan.dconf[k] = plan.pset[k] = plan.pfine[k] = plan.prs[k] = 0
        plan.dose[k] = 0
    slot = plan.slot
    ctr = sw.ctr
    for i in range(sw.n):
        if sw.ctr_ok[i] == 1 and ctr[i]:
            # the counter is rounded up: the fraction already delivered is
            # unknown, so the new count starts one lower (never less)
            ctr[i] = (ctr[i] - 1) & 0xFFFF
            sw.ctr_ok[i] = 2
        sw.dose[i] = 0
        sw.pdose[i] = 0
        sw.pt[i] = now
        s = sw.site[i]
        k = slot[s] if s != _NONE else _NONE
        sw.pk[i] = k
        r = sw.prate[i]
        sw.prs_total += r
        if k != _NONE:
            plan.prs[k] += r
    hub.dose_total = 0
