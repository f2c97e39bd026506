"""Dose accounting: exact from the bots' own counters, conservative between.

Every bot report carries the bot's cumulative delivered-dose counter (udu,
rounded up, modulo 65536). The hub credits the difference since the bot's
last report: a lost report is made good by the next one, a repeated one adds
nothing, and nothing is truncated. That is the *confirmed* dose.

Between two reports of a bot (and for as long as a bot is silent and not
confirmed disabled) the hub adds a *provisional* dose at the bot's rate bound:
the larger of its last reported activity and the rate the hub commanded since,
plus ``MARGIN`` points (reported activity is rounded and noisy). After the hub
lowers a bot's rate the bound keeps the rate before for a lease: a bot that
missed the decrease (a lost command) follows the old rate until that lease
ends, and a report read while it ramps up shows less than it will deliver. The next
report replaces it with the confirmed difference. Caps read confirmed plus
provisional, so stale or missing data can only raise the count.

Provisional dose is kept in pct x ms (1 udu = 100 pct x ms): per bot a rate
and a start time, summed per site and in total incrementally, so a tick does
no per-bot work: ``accrue`` adds (sum of rates) x dt. A bot's live part is
folded into whole udu (``settle``) whenever its rate changes and at least
once a second while it is silent (the safety sweep), which keeps every sum below 2**30
(counts saturate at 2**28 udu, far above the largest cap).

What a report changes is counted inside the report ingest's loop, with the
report's other fields (``hub.viperbytes.book``; ``hub.loops.book`` is the
same source as bytecode).
"""
from hub.compat import const, ticks_diff

_NONE = const(255)
# public: the per-report count (hub.viperbytes.book, hub.loops.book) reads them
MARGIN = const(3)           # percent points over the rate bound (report rounding, noise)
SLACK_MS = const(1000)      # report arrival jitter allowed when judging a counter step
SAT = const(0x10000000)     # counts stop growing here (far above any cap): ints stay small


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
