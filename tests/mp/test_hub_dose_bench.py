# heap: 1m
"""The tick benchmark's steady state (bench/mp/tickbench.py: 64 bots over four
sites, all treating at 3 %, the rate cap splitting 500 udu/s per site): the
hub's dose count is the dose the simulated bots delivered, to one unit per bot
and never less. (A count truncated per tick saw none of it.)"""
from mptest import eq, true

from hubkit import bench_treating


def _steady(n):
    return bench_treating(n, 3000)


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
