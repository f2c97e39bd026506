# heap: 512k
"""Treatment and dose limits (DESIGN 5, overdose): a nominal treatment reaches
its target and ends SAFE; site, session and rate caps hold; every dose is a
lease that runs out when the hub stops renewing it."""
from mptest import eq, true

from hub import dose, wire
from hub import params as P
from hubkit import Rig, bench_treating, plan_payload, refused

SITE = 10


def _site_dose(rig, site):
    return rig.site_dose[site]


def test_a_nominal_treatment_reduces_the_lesions_and_ends_safe_at_target():
    rig = Rig(bots=8)
    rig.treating(((SITE, 4), (SITE + 1, 4)), target=100, depth=300)
    took = rig.run_until(lambda: rig.state() != wire.HUB_TREATING, 60000, "treatment done")
    eq(rig.state(), wire.HUB_SAFE)
    eq(rig.hub.reason, 0)
    for site in (SITE, SITE + 1):
        depth = rig.sw.s_depth[site]
        true(80 <= depth <= 115, "site %d ended at %d um (target 100)" % (site, depth))
    eq(rig.events(wire.EV_TREAT)[-1][3], 2, "EV_TREAT done")
    eq(rig.hub.alarms.unacked_high(), 0)
    true(not rig.alarm_active(wire.ALARM_DOSE_CAP))
    rig.run(500)
    for i in range(rig.n):
        eq(rig.sw.act[i], 0, "bot %d stopped" % i)
        eq(rig.sw.state[i], wire.BOT_DEPLOYED)
    true(took < 30000, "took %d ms" % took)


def _to_report_tick(rig):
    """Step to the tick that read every bot's report (no provisional dose left)."""
    n = rig.hub.swarm.reports
    rig.step()
    while rig.hub.swarm.reports - n < rig.n:
        n = rig.hub.swarm.reports
        rig.step()


def test_the_hub_dose_count_is_what_the_bots_delivered_to_one_unit_per_bot():
    rig = Rig(bots=4)
    rig.treating(((SITE, 4),), depth=3000)
    rig.run(3000)
    _to_report_tick(rig)
    true_dose = _site_dose(rig, SITE)
    true(true_dose > 0)
    est = rig.hub.plan.dose[0]
    true(true_dose <= est <= true_dose + 4, "count %d vs delivered %d" % (est, true_dose))
    eq(rig.hub.dose_total, est)


def test_the_count_never_falls_below_the_delivered_dose_while_reports_are_lost():
    rig = Rig(bots=6)
    rig.treating(((SITE, 3), (SITE + 1, 3)), depth=3000)
    rig.drop = 2                          # 20 % of the gateway's frames lost
    sw = rig.hub.swarm
    for _ in range(150):
        rig.step()
        for i in range(rig.n):
            c = dose.bot(sw, i, rig.now)
            true(c >= rig.sw.dose[i], "bot %d: %d < %d at %d ms" % (i, c, rig.sw.dose[i], rig.now))
        total = _site_dose(rig, SITE) + _site_dose(rig, SITE + 1)
        true(rig.hub.dose_total >= total, "total %d < %d" % (rig.hub.dose_total, total))
    eq(rig.state(), wire.HUB_TREATING)


def test_a_plan_whose_bots_run_at_2_percent_is_stopped_by_its_session_cap():
    # at 2 % a bot delivers 0.4 udu per 20 ms tick: a count truncated per tick sees none
    rig = Rig(bots=4)
    rig.lesion(SITE, 3000)
    rig.lesion(SITE + 1, 3000)
    rig.ready(((SITE, 2), (SITE + 1, 2)))
    eq(rig.cmd(wire.M_DOSE_SCALE, b"\x02")[0], wire.ACKS_DONE)
    eq(rig.arm()[0], wire.ACKS_DONE)
    eq(rig.start(((SITE, 100, 2), (SITE + 1, 100, 2)), session_cap=300, site_cap=300)[0], wire.ACKS_DONE)
    rig.run(600)
    for i in range(rig.n):
        eq(rig.hub.swarm.cmd_rate[i], 2)
        true(100 <= rig.sw.out[i] <= 200, "bot %d runs at %d (0.01 %%)" % (i, rig.sw.out[i]))
    took = rig.run_until(lambda: rig.state() != wire.HUB_TREATING, 10000, "session cap")
    eq(rig.state(), wire.HUB_SAFE)
    true(rig.alarm_active(wire.ALARM_DOSE_CAP))
    true(took < 6000, "stopped after %d ms" % took)
    rig.run(500)
    total = _site_dose(rig, SITE) + _site_dose(rig, SITE + 1)
    true(260 <= total <= 300 + 20, "the session got %d udu for a 300 cap" % total)


def test_the_site_cap_clamps_delivery_and_ends_the_treatment():
    rig = Rig(bots=4)
    rig.treating(((SITE, 2),), depth=3000, site_cap=3000)
    rig.run_until(lambda: rig.state() != wire.HUB_TREATING, 10000, "site cap")
    eq(rig.state(), wire.HUB_SAFE)
    rig.run(500)
    d = _site_dose(rig, SITE)
    true(3000 <= d <= 3000 + 500, "site got %d udu for a 3000 cap" % d)
    true(rig.alarm_active(wire.ALARM_DOSE_CAP))
    true(rig.events(wire.EV_CLAMP), "EV_CLAMP logged")


def test_a_capped_site_stops_while_the_others_go_on():
    rig = Rig(bots=3)                     # two bots reach the cap twice as fast as one
    rig.lesion(SITE, 3000)
    rig.lesion(SITE + 1, 3000)
    rig.ready(((SITE, 2), (SITE + 1, 1)))
    rig.arm()
    rig.start(((SITE, 100, 2), (SITE + 1, 100, 1)), site_cap=2000)
    rig.run(1600)
    eq(rig.state(), wire.HUB_TREATING)
    sw = rig.hub.swarm
    eq((sw.cmd_rate[0], sw.cmd_rate[1]), (0, 0))
    true(sw.cmd_rate[2] > 0)
    true(_site_dose(rig, SITE) <= 2500, "capped site got %d" % _site_dose(rig, SITE))
    rig.run_until(lambda: rig.state() != wire.HUB_TREATING, 3000, "both capped")
    eq(rig.state(), wire.HUB_SAFE)


def test_the_session_cap_ends_the_treatment():
    rig = Rig(bots=4)
    rig.treating(((SITE, 2), (SITE + 1, 2)), depth=3000, session_cap=4000, site_cap=4000)
    rig.run_until(lambda: rig.state() != wire.HUB_TREATING, 10000, "session cap")
    eq(rig.state(), wire.HUB_SAFE)
    rig.run(500)
    total = _site_dose(rig, SITE) + _site_dose(rig, SITE + 1)
    true(4000 <= total <= 4000 + 800, "session got %d udu for a 4000 cap" % total)
    true(rig.alarm_active(wire.ALARM_DOSE_CAP))


def test_the_rate_cap_limits_the_site_dose_rate():
    rig = Rig(bots=4)
    rig.treating(((SITE, 4),), depth=3000, rate_cap=500)
    rig.run(500)
    eq(rig.hub.swarm.cmd_rate[0], 12)     # 500 udu/s over 4 bots of 1000 udu/s
    d0 = _site_dose(rig, SITE)
    rig.run(2000)
    d = _site_dose(rig, SITE) - d0
    true(d <= 2 * 500 * 11 // 10, "%d udu in 2 s for a 500 udu/s cap" % d)


def test_the_plan_must_fit_inside_the_firmware_hard_caps():
    rig = Rig(bots=4)
    rig.lesion(SITE, 300)
    rig.ready(((SITE, 4),))
    rig.arm()
    pr = rig.hub.params
    plan = ((SITE, 100, 4),)
    refused(rig.start(plan, session_cap=pr.get(P.P_SESSION_CAP) + 1), wire.WHY_BOUNDS,
            pr.get(P.P_SESSION_CAP))
    refused(rig.start(plan, site_cap=pr.get(P.P_SITE_CAP) + 1), wire.WHY_BOUNDS,
            pr.get(P.P_SITE_CAP))
    refused(rig.start(plan, rate_cap=pr.get(P.P_RATE_CAP) + 1), wire.WHY_BOUNDS,
            pr.get(P.P_RATE_CAP))
    refused(rig.start(plan, site_cap=0), wire.WHY_BOUNDS)
    refused(rig.cmd(wire.M_TREAT_START, plan_payload(())), wire.WHY_BAD_ARG, 0)
    refused(rig.start(((SITE + 5, 100, 1),)), wire.WHY_NO_BOTS, SITE + 5)
    eq(rig.state(), wire.HUB_ARMED)
    eq(rig.start(plan)[0], wire.ACKS_DONE)


def test_the_plan_duration_ends_the_treatment():
    rig = Rig(bots=4)
    rig.treating(((SITE, 4),), depth=3000, duration=2)
    t0 = rig.now
    rig.run_until(lambda: rig.state() != wire.HUB_TREATING, 4000, "duration")
    eq(rig.state(), wire.HUB_SAFE)
    true(2000 <= rig.now - t0 <= 2100, "ended after %d ms" % (rig.now - t0))


def test_dose_scale_is_bounded_and_scales_the_rate():
    rig = Rig(bots=2)
    rig.treating(((SITE, 2),), depth=3000)
    rig.run(300)
    eq(rig.hub.swarm.cmd_rate[0], 100)
    refused(rig.cmd(wire.M_DOSE_SCALE, b"\x96"), wire.WHY_BOUNDS, 100)
    refused(rig.cmd(wire.M_DOSE_SCALE, b"\x32", sign=False), wire.WHY_AUTH_MISSING)
    eq(rig.cmd(wire.M_DOSE_SCALE, b"\x32")[0], wire.ACKS_DONE)
    rig.run(100)
    eq(rig.hub.swarm.cmd_rate[0], 50)


def test_leases_are_renewed_while_the_treatment_runs():
    lease = 2000
    rig = Rig(bots=2)
    rig.treating(((SITE, 2),), depth=3000)
    rig.run(300)
    for _ in range(3 * lease // 20):
        rig.step()
        true(rig.sw.act[0] > 0 and rig.sw.act[1] > 0, "delivering at %d ms" % rig.now)


def test_bots_stop_delivering_when_the_hub_stops_renewing_the_lease():
    rig = Rig(bots=2)
    rig.treating(((SITE, 2),), depth=3000)
    rig.run(1000)
    rig.alive = False                     # the hub hangs: no more renewals
    hung = rig.now
    last = max(r[0] for r in rig.bus_log if r[2] == wire.OP_DOSE)
    lease = rig.hub.params.get(P.P_LEASE_MS)
    rig.run_until(lambda: rig.sw.rate[0] == 0 and rig.sw.rate[1] == 0, lease + 500, "lease expiry")
    true(rig.now - last <= lease + 20, "stopped %d ms after the last renewal" % (rig.now - last))
    true(rig.now - hung >= lease // 2, "the lease outlived the hub by %d ms" % (rig.now - hung))
    rig.run(500)
    eq((rig.sw.act[0], rig.sw.act[1]), (0, 0))


def test_lease_renewals_spread_over_ticks_and_no_lease_lapses():
    # 64 bots deployed together would all renew in one tick (the tick's worst
    # case): the hub sends at most 16 renewals a tick (commands._RENEW_PER_TICK)
    # and the rest in the next ticks, well inside the lease
    rig = bench_treating(64, 1500)
    rig.keep_bus_log = True
    rig.bus_log = []
    lease = rig.hub.params.get(P.P_LEASE_MS)
    last = {}                                 # bot -> (t, rate) of its latest DOSE
    renewals = {}                             # t -> DOSE records that kept the rate
    worst_gap = 0
    for _ in range(150):                      # 3 s: six renewal rounds
        rig.step()
        for t, bot, op, site, rate, _ in rig.bus_log:
            if op != wire.OP_DOSE:
                continue
            if bot in last:
                worst_gap = max(worst_gap, t - last[bot][0])
                if rate == last[bot][1]:
                    renewals[t] = renewals.get(t, 0) + 1
            last[bot] = (t, rate)
        rig.bus_log = []
    eq(rig.state(), wire.HUB_TREATING)
    eq(len(last), 64)
    true(sum(renewals.values()) >= 64 * 5, "renewals: %d" % sum(renewals.values()))
    true(max(renewals.values()) <= 16, "%d renewals in one tick" % max(renewals.values()))
    true(worst_gap <= lease // 4 + 4 * 20, "a bot waited %d ms for its renewal" % worst_gap)


def test_a_dead_bus_to_the_bots_stops_delivery_by_lease_expiry():
    rig = Rig(bots=2)
    rig.treating(((SITE, 2),), depth=3000)
    rig.run(1000)
    rig.commands = False
    rig.run(rig.hub.params.get(P.P_LEASE_MS) + 400)
    eq((rig.sw.act[0], rig.sw.act[1]), (0, 0))


def test_a_shorter_lease_parameter_reaches_the_bots():
    rig = Rig(bots=2)
    eq(rig.param_set(P.P_LEASE_MS, 500)[0], wire.ACKS_DONE)
    rig.treating(((SITE, 2),), depth=3000)
    rig.run(300)
    leases = set(r[5] for r in rig.bus_log if r[2] == wire.OP_DOSE)
    eq(leases, set([500]))
    rig.alive = False
    rig.run(500 + 500)                    # lease, then the output's decay
    eq((rig.sw.act[0], rig.sw.act[1]), (0, 0))


def test_nothing_is_delivered_outside_treating():
    rig = Rig(bots=4)
    rig.lesion(SITE, 300)
    rig.ready(((SITE, 4),))
    rig.arm()
    rig.run(2000)
    eq([r for r in rig.bus_log if r[2] == wire.OP_DOSE and r[4]], [])
    eq(sum(rig.sw.act[i] for i in range(rig.n)), 0)


def test_a_malformed_plan_is_refused_before_it_is_loaded():
    # the limits the host's plan check applies (protocol/facts.py): each refused BAD_ARG
    rig = Rig(bots=4)
    rig.ready(((SITE, 2), (SITE + 1, 2)))
    eq(rig.arm()[0], wire.ACKS_DONE)
    for plan, kw in ((((SITE, 100, 1), (SITE + 1, 100, 1), (SITE, 50, 1)), {}),   # a site twice
                     (((SITE, 100, 0),), {}),                                     # no bots
                     (((wire.SITES, 100, 1),), {}),                               # outside the mouth
                     (((SITE, 100, 1),), {"session_cap": 1000, "site_cap": 1001})):
        refused(rig.start(plan, **kw), wire.WHY_BAD_ARG)
        eq(rig.state(), wire.HUB_ARMED)
        eq(rig.hub.plan.n, 0)
    eq(rig.start(((SITE, 100, 1), (SITE + 1, 100, 1)), session_cap=1000, site_cap=1000)[0],
       wire.ACKS_DONE)
