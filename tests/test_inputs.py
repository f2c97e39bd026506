"""Every safety input against the truth: scenario sessions on the emulated hub.

Four scenarios run whole (about a minute each, side by side, in the background
from the start of the test session: tests/_background.py): presentation
night (runaways, silent radios, a degraded bus, a cut host link), sensor
drift (temperature and depth sensors that wander), a sensitivity spike and
radios that go silent.
For each, what the hub believed of every quantity a safety rule reads is
compared with the simulator's ground truth (``nanohub.host.study.inputs``) and must
stay within the bound docs/safety.md gives it.
"""
import copy
import re
from pathlib import Path

import pytest

import _background
from _scenario import side_by_side

from nanohub.host.study import inputs
from nanohub.host.study.session import outcome, run_session
from nanohub.host.study import print_table, summarize

ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = (("presentation-night", 1), ("sensor-drift", 1), ("sensitivity-spike", 1),
             ("silent-bots", 1))
DOSE = ("dose_session", "dose_site", "dose_rate_site")
OTHERS = tuple(k for k in inputs.ORDER if k not in DOSE)


def run_all():
    """{scenario: Session}, run side by side."""
    return side_by_side(lambda sc: run_session(sc, seed=dict(SCENARIOS)[sc]), dict(SCENARIOS))


def _start():
    return _background.call("inputs", "test_inputs", "run_all")


BACKGROUND = ("inputs", _start)     # a minute of real time, beside the other tests


@pytest.fixture(scope="module")
def sessions():
    out = _background.get(*BACKGROUND).value()
    for name, s in out.items():
        assert s.trace is not None, "%s: %s" % (name, s.error)
    return out


@pytest.fixture(scope="module")
def compared(sessions):
    return {name: inputs.compare(s) for name, s in sessions.items()}


def _doc_rows():
    lines = (ROOT / "docs" / "safety.md").read_text(encoding="utf-8").splitlines()
    start = next(i for i, l in enumerate(lines) if l.startswith("| Input |"))
    rows = {}
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        cells = [c.strip() for c in line.strip().strip("|").split(" | ")]
        rows[cells[0].strip("`")] = cells
    return rows


def test_docs_safety_md_has_a_row_per_input_with_the_bound_the_comparison_uses():
    rows = _doc_rows()
    assert sorted(rows) == sorted(inputs.ORDER)
    for name, (unit, side, bound, _) in inputs.BOUNDS.items():
        cells = rows[name]
        assert cells[4] == {"low": "below", "high": "above"}[side], name
        number = float(re.match(r"[\d.]+", cells[5]).group())
        assert number == bound, "%s: docs say %s, the code %s" % (name, cells[5], bound)
        assert unit.split("/")[0] in cells[5], name


@pytest.mark.parametrize("name", OTHERS)
def test_every_safety_input_but_the_dose_stays_within_its_bound(compared, name):
    seen = 0
    for scenario, res in compared.items():
        assert "error" not in res, "%s: %s" % (scenario, res)
        r = res[name]
        seen += r["n"]
        assert r["ok"], "%s, %s: hub - truth reached %s %s (%s side), bound %s; at %s" % (
            scenario, name, r["low"] if r["dangerous"] == "low" else r["high"], r["unit"],
            r["dangerous"], r["bound"], r["low_at"] if r["dangerous"] == "low" else r["high_at"])
    assert seen > 0, "%s was never compared: the test would prove nothing" % name


@pytest.mark.parametrize("name", DOSE)
def test_the_hub_never_counts_less_dose_than_the_bots_delivered(compared, name):
    seen = 0
    for scenario, res in compared.items():
        r = res[name]
        seen += r["n"]
        assert r["ok"], "%s, %s: the hub counted %s %s less than delivered (at %s)" % (
            scenario, name, -r["low"], r["unit"], r["low_at"])
    assert seen > 0


def test_a_wrong_view_of_any_input_is_caught(sessions):
    # the comparison can fail: push each input the dangerous way past its bound
    s = copy.deepcopy(sessions["presentation-night"])
    for t, f in s.statuses:
        f["sens"] -= 50                     # (a reading below 0: only the error matters)
    for site, rows in s.sites.items():
        s.sites[site] = [(t, depth + 40, int(dose * 0.8), temp - 40, after)
                         for t, depth, dose, temp, after in rows]
    s.bot_states = [(t, first, tuple((st, site, act - 10) for st, site, act in recs))
                    for t, first, recs in s.bot_states]
    res = inputs.compare(s)
    for name in ("sensitivity", "temperature", "depth", "activity", "dose_site",
                 "dose_rate_site"):
        assert not res[name]["ok"], name


def test_the_study_prints_hub_vs_truth_columns_for_every_input(sessions, capsys):
    import sys
    results = [outcome(s) for s in sessions.values()]
    print_table(summarize(results), "scenario tests", out=sys.stdout)
    text = capsys.readouterr().out
    assert "hub vs truth" in text
    for name in inputs.ORDER:
        line = next(l for l in text.splitlines() if l.startswith(inputs.LABELS[name]))
        assert re.search(r"(never under|UNDER-COUNTED|within|OUT OF BOUND)$", line), line
    assert "dose, session" in text
