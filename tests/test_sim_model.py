"""The simulator model on CPython: mouth, bots, patient, world, scenarios, trace."""
import re
import sys
from pathlib import Path

import pytest

from nanohub.firmware.hub import wire
from nanohub.sim import bots, mouth, scenario
from nanohub.sim.patient import Patient
from nanohub.sim.scenario import ScenarioError, from_dict
from nanohub.sim.bots import NO_SITE
from nanohub.sim.world import NO_BUS_FAULTS, Baseline, Trace, World

sys.path.insert(0, str(Path(__file__).resolve().parent / "mp"))
from textbook import xorshift32  # noqa: E402  (shared with the VM's bot tests)

DEEP = mouth.parse_site("30/buccal")       # lower right first molar, lesion into dentine
SHALLOW = mouth.parse_site("3/occlusal")   # upper right first molar, enamel lesion


def make(faults=(), operator=(), **over):
    data = {
        "name": "test", "duration_s": 30, "bots": 8, "seed": 5, "incipient_lesions": 0,
        "lesion": [{"site": "30/buccal", "depth_um": 2600, "target_um": 900},
                   {"site": "3/occlusal", "depth_um": 600, "target_um": 200}],
        "fault": list(faults), "operator": list(operator),
    }
    data.update(over)
    return from_dict(data, "test.toml")


def deployed(world, site=DEEP, bots_=(0, 1, 2)):
    """Send bots to a site and wait until they are there (travel < 1 s)."""
    for b in bots_:
        world.command(b, wire.OP_DEPLOY, site, 0, 0)
    world.step(world.t + 1100)
    for b in bots_:
        assert world.swarm.state[b] == wire.BOT_DEPLOYED and not world.swarm.moving[b]


def dose(world, bots_, rate, seconds, lease_ms=1000, renew_ms=250):
    """Keep dosing like a hub would: renew the lease until ``seconds`` pass."""
    end = world.t + int(seconds * 1000)
    while world.t < end:
        for b in bots_:
            world.command(b, wire.OP_DOSE, 0, rate, lease_ms)
        world.step(world.t + renew_ms)


# ------------------------------------------------------------- determinism --

def test_the_same_seed_and_scenario_give_the_same_trace():
    a = Baseline(World("presentation-night")).run()
    b = Baseline(World("presentation-night")).run()
    assert a == b
    assert len(a.samples()) == 601


def test_a_different_seed_gives_a_different_trace():
    a = Baseline(World("nominal", seed=1)).run(10)
    b = Baseline(World("nominal", seed=2)).run(10)
    assert a.rows != b.rows


def test_the_trace_does_not_depend_on_how_often_step_is_called():
    sc = make()
    fine, coarse = World(sc), World(sc)
    for t in range(0, 5000, 7):
        fine.step(t)
    fine.step(5000)
    coarse.step(5000)
    assert fine.trace == coarse.trace


def test_a_trace_survives_saving_and_loading(tmp_path):
    w = World("runaway")
    Baseline(w).run(20)
    for name in ("trace.jsonl", "trace.jsonl.gz"):
        w.save_trace(tmp_path / name)
        back = Trace.load(tmp_path / name)
        assert back == w.trace
        assert back.containment_time(w.fault_bots(0)[0]) is None
    assert (tmp_path / "trace.jsonl.gz").stat().st_size < (tmp_path / "trace.jsonl").stat().st_size


def test_loading_something_that_is_not_a_trace_fails_clearly(tmp_path):
    p = tmp_path / "x.jsonl"
    p.write_text('{"format": "other"}\n')
    with pytest.raises(ValueError, match="not a nanohub simulator trace"):
        Trace.load(p)


def test_xorshift32_is_the_textbook_generator():
    rng = bots.Xorshift32(99)
    x = rng.state()
    for _ in range(1000):
        x = xorshift32(x)
        assert rng.next() == x >> 16
    assert all(0 <= rng.below(701) < 701 for _ in range(1000))
    assert all(-5 <= rng.spread(5) <= 5 for _ in range(1000))


# ---------------------------------------------------------- bot-bus contract --

def test_deploy_takes_a_travel_time_then_the_bot_is_deployed_at_the_site():
    w = World(make())
    w.command(0, wire.OP_DEPLOY, DEEP)
    assert w.report(0)[:3] == (wire.BOT_DEPLOYED, NO_SITE, 0)   # on the way: no site yet
    w.step(280)
    assert w.swarm.moving[0] == 1                      # at least 0.3 s on the way
    w.step(1020)
    assert w.swarm.moving[0] == 0
    assert w.report(0)[:3] == (wire.BOT_DEPLOYED, DEEP, 0)


def dosing(rate, lease_ms):
    """A world whose bot 0, deployed at DEEP, was just told to dose at ``rate``
    percent for ``lease_ms``: (the world, when it was told)."""
    w = World(make())
    deployed(w)
    start = w.t
    w.command(0, wire.OP_DOSE, 0, rate, lease_ms)
    return w, start


def test_a_dose_lease_that_is_not_renewed_stops_delivery_by_itself():
    w, start = dosing(60, 800)
    w.step(start + 400)
    assert w.swarm.state[0] == wire.BOT_ACTIVE
    assert 55 <= w.report(0)[2] <= 65
    w.step(start + 1400)
    assert w.swarm.state[0] == wire.BOT_DEPLOYED
    assert w.swarm.act[0] == 0
    off = [t for t, _, a, _ in w.trace.activity(0) if a == 0 and t > start]
    assert off and off[0] - start <= 800 + 500        # lease, then the output lag


def test_output_follows_the_command_with_a_short_lag():
    w, t0 = dosing(100, 5000)
    w.step(t0 + 40)
    assert 0 < w.swarm.act[0] < 6000
    w.step(t0 + 500)
    assert w.swarm.act[0] > 9500


def test_hold_stops_delivery_and_recall_docks_the_bot():
    w, _ = dosing(80, 5000)
    w.step(w.t + 500)
    w.command(0, wire.OP_HOLD)
    w.step(w.t + 600)
    assert w.swarm.act[0] == 0 and w.swarm.state[0] == wire.BOT_DEPLOYED
    w.command(0, wire.OP_RECALL)
    assert w.report(0)[0] == wire.BOT_RETURNING
    w.step(w.t + 1100)
    assert w.report(0)[:2] == (wire.BOT_DOCKED, bots.NO_SITE)


def test_disable_latches_whatever_comes_after():
    w, _ = dosing(80, 5000)
    w.step(w.t + 300)
    w.command(0, wire.OP_DISABLE)
    assert w.swarm.act[0] == 0                     # the kill path has no lag
    for op in (wire.OP_DEPLOY, wire.OP_DOSE, wire.OP_HOLD, wire.OP_RECALL, wire.OP_PING):
        w.command(0, op, DEEP, 90, 5000)
        w.step(w.t + 1100)
        assert w.report(0)[0] == wire.BOT_DISABLED
        assert w.swarm.act[0] == 0


def test_retrieving_by_hand_docks_every_bot_in_the_mouth_and_a_kill_stays_latched():
    w = World(make())
    deployed(w)
    w.command(0, wire.OP_DISABLE)
    got = w.retrieve()
    assert got == (0, 1, 2)
    assert w.trace.of("retrieve")[-1][2] == (0, 1, 2)
    rep = w.report(0)
    assert (rep[0], rep[1]) == (wire.BOT_DISABLED, NO_SITE)   # out of the mouth, still killed
    assert (w.report(1)[0], w.report(1)[1]) == (wire.BOT_DOCKED, NO_SITE)
    assert w.retrieve() == ()                                # nothing left in the mouth


def test_a_broadcast_reaches_every_bot_that_can_hear():
    w = World(make(faults=[{"at": 0, "kind": "silent", "targets": [3]}]))
    w.step(20)
    assert w.command(wire.ADDR_ALL, wire.OP_DISABLE) == 7
    assert w.trace.commands(op=wire.OP_DISABLE)[-1][-1] == 7


def test_reports_are_in_wire_units_with_sensor_noise():
    w = World(make())
    deployed(w)
    w.step(w.t + 200)
    temp, ph, depth, bact = w.mouth.readings(DEEP)
    r = w.report(0)
    assert len(r) == 10
    assert abs(r[5] - temp) < 30 and abs(r[6] - ph) < 10
    assert abs(r[7] - depth) < 30 and abs(r[8] - bact) < 10
    assert 0 < r[3] <= 100 and 0 < r[4] <= 100
    assert r[9] == 0                                # nothing delivered yet


def test_a_report_carries_the_bots_own_dose_counter_rounded_up():
    w = World(make())
    deployed(w)
    dose(w, [0], 37, 1.3)
    sw = w.swarm
    assert sw.dose[0] > 300
    assert w.report(0)[9] == (sw.dose[0] + (1 if sw.dose_rem[0] else 0)) & 0xFFFF
    sw.restart(0)
    assert w.report(0)[9] == 0                      # a restarted bot counts from 0 again
    dose(w, [0], 37, 0.5)
    assert 0 < w.report(0)[9] <= 400                # its new dose only


# -------------------------------------------------------------------- faults --

def test_a_runaway_bot_keeps_delivering_after_hold_until_disabled():
    sc = make(faults=[{"at": 2.0, "kind": "runaway", "targets": 1,
                       "params": {"mode": "on_while_off", "level": 90}}])
    w = World(sc)
    deployed(w)
    w.step(2100)
    (b,) = w.fault_bots(0)
    w.command(b, wire.OP_HOLD)
    w.step(4000)
    assert 8500 <= w.swarm.act[b] <= 9500
    assert w.report(b)[0] == wire.BOT_DEPLOYED          # it believes it is holding
    assert w.trace.containment_time(b) is None
    w.command(b, wire.OP_DISABLE)
    w.step(5000)
    assert w.swarm.act[b] == 0
    assert w.trace.containment_time(b) == pytest.approx(4.0 - 2.0, abs=0.03)


def test_an_above_command_runaway_delivers_more_than_it_is_told():
    sc = make(faults=[{"at": 0.0, "kind": "runaway", "targets": [1],
                       "params": {"mode": "above_command", "level": 25}}])
    w = World(sc)
    deployed(w)
    dose(w, [0, 1], 50, 1.0)
    assert 45 <= w.report(0)[2] <= 55
    assert 70 <= w.report(1)[2] <= 80
    w.command(1, wire.OP_HOLD)
    w.step(w.t + 600)
    assert w.swarm.act[1] == 0                   # off means off for this mode


def test_a_silent_bot_gives_no_reports_hears_nothing_and_its_lease_stops_it():
    sc = make(faults=[{"at": 3.0, "until": 8.0, "kind": "silent", "targets": [0]}])
    w = World(sc)
    deployed(w)
    dose(w, [0, 1], 70, 2.0, lease_ms=1500)       # until 3.1 s
    assert w.report(0) is None
    dose(w, [0, 1], 70, 3.0, lease_ms=1500)
    assert w.swarm.act[0] == 0 and w.swarm.act[1] > 0
    heard = [r[-1] for r in w.trace.commands(bot=0) if r[1] > 3000]
    assert heard and set(heard) == {0}
    assert 0 < w.trace.containment_time(0) <= 1.5 + 0.5
    w.step(8100)
    assert w.report(0) is not None                 # back after the fault ends


def test_sensor_drift_makes_readings_wander_further_and_further():
    sc = make(faults=[{"at": 1.0, "kind": "sensor_drift", "targets": [0],
                       "params": {"depth_um_per_s": 20.0, "temp_c_per_s": -0.1}}])
    w = World(sc)
    deployed(w)
    errors = []
    for t in (3000, 6000, 9000):
        w.step(t)
        temp, _, depth, _ = w.mouth.readings(DEEP)
        r = w.report(0)
        errors.append((r[7] - depth, r[5] - temp))
    assert errors[0][0] < errors[1][0] < errors[2][0]
    assert errors[2][0] == pytest.approx(20 * 8, abs=30)
    assert errors[0][1] > errors[1][1] > errors[2][1]
    assert abs(w.report(1)[7] - w.mouth.readings(DEEP)[2]) < 30    # its neighbour is fine


def test_a_collapsing_battery_empties_in_seconds_and_the_bot_goes_dark():
    sc = make(faults=[{"at": 2.0, "kind": "battery_collapse", "targets": [0],
                       "params": {"fall_s": 3.0}}])
    w = World(sc)
    deployed(w)
    dose(w, [0], 60, 1.5)
    w.step(3500)
    assert 0 < w.report(0)[3] < 60
    dose(w, [0], 60, 3.0)
    assert w.report(0) is None
    assert w.swarm.act[0] == 0 and w.swarm.flags[0] & bots.F_DEAD
    assert w.trace.containment_time(0) <= 3.0


def test_a_stuck_kill_path_loses_the_first_disables_then_works():
    sc = make(faults=[{"at": 0.0, "id": "wild", "kind": "runaway", "targets": [2],
                       "params": {"mode": "on_while_off"}},
                      {"at": 0.0, "kind": "stuck_disable", "targets": "wild",
                       "params": {"count": 2}}])
    w = World(sc)
    w.step(600)
    assert w.fault_bots(1) == w.fault_bots(0) == (2,)
    for _ in range(2):
        w.command(2, wire.OP_DISABLE)
        w.step(w.t + 100)
        assert w.swarm.act[2] > 9000 and w.report(2)[0] != wire.BOT_DISABLED
    w.command(2, wire.OP_DISABLE)
    assert w.swarm.act[2] == 0 and w.report(2)[0] == wire.BOT_DISABLED


def test_a_count_of_targets_strikes_bots_at_work():
    sc = make(faults=[{"at": 2.0, "kind": "silent", "targets": 2}])
    w = World(sc)
    deployed(w, bots_=(4, 5, 6))
    w.step(2100)
    assert set(w.fault_bots(0)) <= {4, 5, 6} and len(w.fault_bots(0)) == 2
    assert w.trace.fault_bots("silent") == list(w.fault_bots(0))


def test_bus_and_host_link_faults_are_rates_for_the_gateway_within_their_window():
    w = World("presentation-night")
    assert w.bus_faults(19_999) == NO_BUS_FAULTS
    f = w.bus_faults(20_000)
    assert f.loss == 0.12 and f.delay_ms == 80 and 0 < f.reorder < 1
    assert w.bus_faults(45_000) == NO_BUS_FAULTS
    assert not w.host_link_down(21_999)
    assert w.host_link_down(22_000) and w.host_link_down(29_999)
    assert not w.host_link_down(30_000)


def test_fault_starts_and_ends_are_in_the_trace():
    w = World("presentation-night")
    w.step(60_000)
    edges = [(r[2], r[4], r[1]) for r in w.trace.of("fault")]
    assert ("start", "bus", 20_000) in edges and ("end", "bus", 45_000) in edges
    assert ("start", "host_link_loss", 22_000) in edges
    assert ("end", "silent", 50_000) in edges


# --------------------------------------------------------------- mouth model --

def test_dosing_a_lesion_reduces_its_depth_within_tens_of_seconds():
    w = World(make())
    deployed(w, SHALLOW)
    before = w.mouth.depth[SHALLOW]
    dose(w, [0, 1, 2], 70, 30)
    assert before - w.mouth.depth[SHALLOW] > 300
    assert w.trace.depth_reduction()[SHALLOW] > 300
    assert w.trace.depth_reduction()[DEEP] < 20        # untreated: no change


def test_remineralization_is_poor_below_the_critical_ph():
    def treated(ph_rest):
        m = mouth.Mouth(3, [(SHALLOW, 800)])
        m.ph_rest[SHALLOW] = ph_rest
        m.ph[SHALLOW] = ph_rest
        m._next_sugar = 1e9                         # no sugar: a steady pH
        for _ in range(100):
            m.step(0.1, {SHALLOW: 2.0})
        return 800 - m.depth[SHALLOW]
    good, poor = treated(7.2), treated(5.0)
    assert good > 150 and poor < good / 5


def test_low_ph_slowly_deepens_a_lesion():
    m = mouth.Mouth(3, [(SHALLOW, 500)])
    m.ph_rest[SHALLOW] = 4.8
    m.ph[SHALLOW] = 4.8
    for _ in range(100):
        m.step(0.1, {})
    assert 500 < m.depth[SHALLOW] < 560


def test_bots_at_work_heat_the_site_and_it_cools_back_to_body_temperature():
    m = mouth.Mouth(3)
    for _ in range(100):
        m.step(0.1, {SHALLOW: 3.0})
    assert 39.8 < m.temp[SHALLOW] < 41.0
    for _ in range(150):
        m.step(0.1, {})
    assert abs(m.temp[SHALLOW] - mouth.T_BODY) < 0.1


def test_treatment_suppresses_bacteria_and_they_grow_back():
    m = mouth.Mouth(3, [(SHALLOW, 800)])
    start = m.bact[SHALLOW]
    for _ in range(300):
        m.step(0.1, {SHALLOW: 3.0})
    low = m.bact[SHALLOW]
    for _ in range(600):
        m.step(0.1, {})
    assert low < start - 1.0 and m.bact[SHALLOW] > low + 0.5


def test_sites_are_teeth_times_surfaces_and_have_a_distance_to_the_pulp():
    assert mouth.NSITES == 160
    assert mouth.parse_site("1/occlusal") == 0 and mouth.parse_site("32/l") == 159
    assert mouth.site_name(DEEP) == "#30 buccal"
    m = mouth.Mouth(1, [(DEEP, 2000)])
    assert m.pulp_distance(DEEP) == 1400 + 3000 - 2000
    assert m.enamel[SHALLOW] > m.enamel[mouth.parse_site("8/buccal")]  # molar cusp > incisor
    with pytest.raises(ValueError, match="1..32"):
        mouth.parse_site("33/occlusal")


# ------------------------------------------------------------------ patient --

def test_the_sensitivity_index_rises_more_near_deep_lesions():
    def peak(site):
        w = World(make())
        deployed(w, site)
        dose(w, [0, 1, 2], 80, 10)
        return w.patient()[0]
    deep, shallow = peak(DEEP), peak(SHALLOW)
    assert deep > 2 * shallow and deep > 400


def test_the_sensitivity_index_decays_when_output_stops():
    w = World(make())
    deployed(w)
    dose(w, [0, 1, 2], 80, 10)
    high = w.patient()[0]
    w.command(wire.ADDR_ALL, wire.OP_HOLD)
    w.step(w.t + 15_000)
    assert w.patient()[0] < high / 2


def test_nano_sensitivity_events_happen_past_their_thresholds():
    m = mouth.Mouth(1, [(DEEP, 3000)])
    p = Patient(m, 1)
    for i in range(600):
        p.step(0.1, {DEEP: 4.0}, i * 100)
    kinds = {k for _, k, _ in p.events}
    assert p.S > 1.0 and {"sensory_disruption", "migraine"} <= kinds
    quiet = Patient(m, 1)
    for i in range(600):
        quiet.step(0.1, {DEEP: 0.5}, i * 100)
    assert quiet.S < 0.6 and quiet.events == []


def test_a_sensitivity_spike_pushes_the_index_up_and_events_follow_without_a_supervisor():
    tr = Baseline(World("sensitivity-spike")).run()
    s = {r[1]: r[4][0] for r in tr.samples()}
    assert s[19_000] < 600 and max(s[t] for t in range(20_000, 30_001, 100)) > 900
    assert tr.nano_events() >= 1 and tr.adverse_events() >= tr.nano_events()


def test_the_patient_reading_is_permille_and_an_event_count():
    w = World(make())
    sens, events = w.patient()
    assert isinstance(sens, int) and 0 <= sens <= 65535 and events == 0


# ------------------------------------------------------------------ metrics --

def test_metrics_dose_after_a_time_and_adverse_events():
    w = World(make())
    deployed(w)
    dose(w, [0, 1], 100, 2.0)
    w.command(wire.ADDR_ALL, wire.OP_HOLD)
    w.step(w.t + 2000)
    after = w.trace.dose_after(0)
    assert 1500 < after[0] < 2200 and after[3] == 0     # ~1000 uDU/s at full output
    assert w.trace.dose_after(w.t / 1000) == [0] * 8
    assert w.trace.adverse_events() == 0


# ---------------------------------------------------------------- scenarios --

NAMES = ["nominal", "runaway", "silent-bots", "sensor-drift", "battery-collapse",
         "bus-collapse", "host-link-loss", "sensitivity-spike", "presentation-night"]


def test_every_required_scenario_is_bundled():
    assert set(NAMES) <= set(scenario.list_scenarios())


@pytest.mark.parametrize("name", NAMES)
def test_each_scenario_loads_and_treats_about_a_minute(name):
    sc = scenario.load(name)
    assert sc.name == name and sc.description.strip()
    assert 45 <= sc.duration_s <= 90 and sc.bots == 64
    verbs = [v for _, v, _ in sc.operator]
    assert "deploy" in verbs and "treat_start" in verbs
    assert all(isinstance(a.get("site", 0), int) for _, _, a in sc.operator)
    assert sc.plan and all(target < l.depth_um for (_, target, _), l in zip(sc.plan, sc.lesions))
    if name != "nominal":
        assert sc.faults


def test_the_nominal_baseline_reaches_toward_the_targets_without_harm():
    tr = Baseline(World("nominal")).run()
    red = tr.depth_reduction()
    assert all(red[site] > 400 for site, _, _, _ in tr.meta["lesions"])
    assert tr.adverse_events() == 0 and tr.peak_sensitivity() < 0.6


def test_the_presentation_night_cascade_hits_every_layer():
    w = World("presentation-night")
    tr = Baseline(w).run()
    kinds = {k for _, _, k, _ in tr.fault_starts()}
    assert {"bus", "host_link_loss", "runaway", "stuck_disable", "silent"} <= kinds
    assert set(w.fault_bots(2)).isdisjoint(w.fault_bots(4))  # silent bots are other bots
    assert ("estop", 34.0) in [(v, t) for t, v, _ in w.scenario.operator]
    for b in w.fault_bots(2):      # one DISABLE and no retry: the runaways run on
        assert tr.containment_time(b) is None


@pytest.mark.parametrize("change, field, message", [
    ({"duration_s": -1}, "duration_s", "must be 1.0..3600.0"),
    ({"bots": 300}, "bots", "must be 1..255"),
    ({"colour": "red"}, "colour", "unknown field"),
    ({"lesion": [{"site": "40/occlusal", "depth_um": 500}]}, r"lesion\[0\].site", "1..32"),
    ({"lesion": [{"site": 3, "depth_um": 500, "target_um": 600}]}, r"lesion\[0\].target_um",
     "below depth_um"),
    ({"fault": [{"at": 1, "kind": "meltdown"}]}, r"fault\[0\].kind", "unknown kind 'meltdown'"),
    ({"fault": [{"at": 1, "kind": "silent"}]}, r"fault\[0\].targets", "required"),
    ({"fault": [{"at": 1, "kind": "bus", "targets": 2, "params": {"loss": 0.5}}]},
     r"fault\[0\].targets", "hits no bot"),
    ({"fault": [{"at": 1, "kind": "bus", "params": {"loss": 1.5}}]},
     r"fault\[0\].params.loss", "must be 0.0..1.0"),
    ({"fault": [{"at": 1, "kind": "runaway", "targets": 1, "params": {"mode": "on"}}]},
     r"fault\[0\].params.mode", "one of 'on_while_off', 'above_command'"),
    ({"fault": [{"at": 5, "until": 4, "kind": "silent", "targets": 1}]},
     r"fault\[0\].until", "must be after at"),
    ({"fault": [{"at": 1, "kind": "silent", "targets": "ghost"}]},
     r"fault\[0\].targets", "no earlier fault with id 'ghost'"),
    ({"fault": [{"at": 1, "kind": "silent", "targets": [99]}]}, r"fault\[0\].targets", "bot ids"),
    ({"fault": [{"at": 1, "kind": "sensor_drift", "targets": 1}]}, r"fault\[0\].params",
     "every rate is zero"),
    ({"operator": [{"at": 1, "do": "dance"}]}, r"operator\[0\].do", "one of 'consent'"),
    ({"operator": [{"at": 1, "do": "deploy", "args": {"count": 2}}]},
     r"operator\[0\].args.site", "required"),
    ({"operator": [{"at": 1, "do": "deploy", "args": {"site": 1, "cuont": 2}}]},
     r"operator\[0\].args.cuont", "unknown field"),
])
def test_scenario_errors_name_the_file_and_the_field(change, field, message):
    with pytest.raises(ScenarioError, match=r"^test.toml: %s: .*%s" % (field, re.escape(message))):
        make(**change)


def test_a_broken_scenario_file_names_the_file(tmp_path):
    bad = tmp_path / "broken.toml"
    bad.write_text('name = "x"\nduration_s = = 3\n')
    with pytest.raises(ScenarioError, match="broken.toml: not valid TOML"):
        scenario.load(bad)
    bad.write_text('name = "x"\nduration_s = 60\n[[fault]]\nat = 1\nkind = "silent"\n')
    with pytest.raises(ScenarioError, match=r"broken.toml: fault\[0\].targets: required"):
        scenario.load(str(bad))


def test_an_unknown_scenario_name_lists_the_bundled_ones():
    with pytest.raises(ScenarioError, match="no scenario named 'nomnal'.*nominal"):
        scenario.load("nomnal")


def test_the_operator_script_is_time_ordered_with_sites_resolved():
    sc = scenario.load("nominal")
    times = [t for t, _, _ in sc.operator]
    assert times == sorted(times)
    deploys = [a for _, v, a in sc.operator if v == "deploy"]
    assert deploys[0] == {"site": mouth.parse_site("3/occlusal"), "count": 3}
    start = [a for _, v, a in sc.operator if v == "treat_start"][0]
    assert start["duration"] == 40 and start["rate_cap"] <= 0xFFFF


def test_reading_reports_never_changes_what_the_bots_really_do():
    quiet, busy = World(make()), World(make())
    for w in (quiet, busy):
        deployed(w)
        dose(w, [0, 1, 2], 70, 2.0)
    for t in range(busy.t, busy.t + 3000, 20):
        busy.step(t)
        for b in range(busy.n):
            busy.report(b)
    quiet.step(busy.t)
    assert quiet.trace == busy.trace
