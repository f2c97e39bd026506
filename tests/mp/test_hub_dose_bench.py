# heap: 1m
"""The tick benchmark's steady state (bench/mp/tickbench.py: 64 bots over four
sites, all treating at 3 %, the rate cap splitting 500 udu/s per site): the
hub's dose count is the dose the simulated bots delivered, to one unit per bot
and never less. (A count truncated per tick saw none of it.)"""
from mptest import eq, true

from hub import wire
from hubkit import Rig

SITES = (10, 11, 12, 13)


def _steady(n):
    rig = Rig(bots=n)
    rig.keep_bus_log = False
    per = n // len(SITES)
    plan = []
    for k, site in enumerate(SITES):
        rig.lesion(site, 3000)
        plan.append((site, per + (1 if k < n - per * len(SITES) else 0)))
    rig.udu_per_um = 1000000
    rig.treating(tuple(plan), target=100, session_cap=2000000, site_cap=200000, rate_cap=500)
    rig.run(3000)
    eq(rig.state(), wire.HUB_TREATING)
    return rig


def test_in_the_tick_benchmark_steady_state_the_count_is_the_delivered_dose_to_one_unit_per_bot():
    rig = _steady(64)
    sw = rig.hub.swarm
    for i in range(rig.n):
        eq(sw.cmd_rate[i], 3)
    n = sw.reports
    rig.step()
    while sw.reports - n < rig.n:         # to the tick that read every bot's report
        n = sw.reports
        rig.step()
    truth = 0
    for i in range(rig.n):
        truth += rig.sw.dose[i]
    true(truth > 5000, "delivered %d" % truth)
    hub = rig.hub
    true(truth <= hub.dose_total <= truth + rig.n,
         "hub %d vs delivered %d (64 bots)" % (hub.dose_total, truth))
    site = 0
    for k in range(hub.plan.n):
        site += hub.plan.dose[k]
    eq(site, hub.dose_total)
