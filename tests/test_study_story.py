"""A study's row tells the session's one story: for one recorded session, the
row ``nanohub study`` writes, the demo's console summary and the HTML
report's summary print the same alarms, flags, lesion depths, contain times,
adverse events and bots disabled and confirmed.

One real run of ``nanohub study`` (presentation night cut to 14 s and 16
bots, firmware on the MicroPython VM, about 20 s), recorded; the console
summary and the report are then made from that recording.
"""
import html
import io
import json
import re

import pytest

import _background
import _cli
from _scenario import treatment

from nanohub.host.study.demo import _summary, _verdict
from nanohub.host.report.data import load
from nanohub.host.report.story import story
from nanohub.host.report.summary import rows


# presentation night, short: two runaways that miss their first two DISABLEs,
# the operator's emergency stop, then two radios fail after the shutdown
SHORT = treatment("presentation-night-short", "presentation night cut short", 14,
                  [("3/occlusal", 1100, 500), ("14/mesial", 1300, 600)], treat_s=20,
                  last=(10.0, "estop", "{ source = 0 }"), seed=7, faults="""
[[fault]]
id = "runaways"
at = 7.0
kind = "runaway"
targets = 2
params = { mode = "on_while_off", level = 100 }
[[fault]]
id = "deaf-kill"
at = 7.0
kind = "stuck_disable"
targets = "runaways"
params = { count = 2 }
[[fault]]
id = "radios"
at = 12.0
until = 20.0
kind = "silent"
targets = 2
""")


def _start():
    return _background.Run(
        "study", _cli.argv("--json", "study", "--scenario", "short.toml", "--runs", "1",
                           "--seed", "7", "--workers", "1", "--record", "rec", "-o", "rows.jsonl"),
        timeout=300, setup=lambda cwd: (cwd / "short.toml").write_text(SHORT))


BACKGROUND = ("study", _start)      # real time, beside the other tests


@pytest.fixture(scope="module")
def session():
    run = _background.get(*BACKGROUND)
    rc, out, err = run.result()
    cwd = run.dir
    # exit 1 is a judged study (an input out of its bound); anything else is not
    assert rc in (0, 1), out[-2000:] + err[-2000:]
    summary = json.loads(out.splitlines()[-1])["summary"]
    row = json.loads((cwd / "rows.jsonl").read_text().splitlines()[0])
    assert summary["failed_runs"] == 0 and not row.get("error"), row.get("error")
    d = load(cwd / "rec" / "seed-7.db")
    st = story(d)
    console = io.StringIO()
    _summary(row, d, st, _verdict(row), console)
    from nanohub.host.report import render
    page, _ = render([cwd / "rec" / "seed-7.db"], cwd / "report.html")
    text = html.unescape(re.sub(r"<[^>]+>", " ", re.sub(r"<img[^>]*>", "", page.read_text())))
    return row, summary, console.getvalue(), {i: t for i, t, _ in rows(d)}, text


def study_row(summary, what):
    return next(value for name, value, _ in summary["rows"] if name == what)


def test_alarms_raised_agree_in_the_study_row_the_console_and_the_report(session):
    row, summary, out, report, page = session
    by = row["alarms_by_prio"]
    head = "%d (%d HIGH, %d MEDIUM, %d LOW)" % (row["alarms_raised"], by["HIGH"], by["MEDIUM"],
                                                by["LOW"])
    assert row["alarms_raised"] >= 1 and by["HIGH"] >= 1      # the runaways
    assert "Alarms raised: %s" % head in out
    assert report["Alarms raised"].startswith(head)
    names = report["Alarms raised"].split(": ", 1)[1].rsplit("; from ", 1)[0]
    assert [n.split(" bot ")[0] for n in names.split(", ")] == row["alarm_codes"]
    assert study_row(summary, "alarms raised per session") == "%.2f" % row["alarms_raised"]


def test_flagged_audit_records_agree(session):
    row, summary, out, report, page = session
    n = row["audit_flagged"]
    assert n >= 1 and n == sum(row["audit_flags"].values())
    flagged = "%d record%s flagged" % (n, "" if n == 1 else "s")
    assert "Audit log: verifies; %s" % flagged in out
    assert flagged in report["Audit log"]
    assert "What it flags: %s" % flagged in page
    assert study_row(summary, "audit records flagged per session") == "%.2f" % n


def test_lesion_depths_and_their_reduction_agree(session):
    row, summary, out, report, page = session
    assert row["depth_source"] == "ground truth" and len(row["depth"]) == 2
    for before, after in row["depth"].values():
        assert re.search(r"\s%d ->\s+%d\s" % (before, after), out), (before, after, out)
        assert "%d → %d µm" % (before, after) in report["Lesions"]
    reductions = [a - b for a, b in row["depth"].values()]
    assert row["depth_reduction_um"] == sum(reductions) / len(reductions) > 0
    assert study_row(summary, "lesion depth reduction") == "%.1f um" % row["depth_reduction_um"]


def test_time_to_contain_each_fault_agrees(session):
    row, summary, out, report, page = session
    per_bot = [f for f in row["faults"] if "contained_s" in f]
    assert {"runaway", "stuck_disable"} <= {f["kind"] for f in per_bot}
    for f in per_bot:
        assert f["contained_s"] is not None
        assert "Time to contain %s: %.2f s" % (f["kind"], f["contained_s"]) in out
        assert study_row(summary, "time to contain %s" % f["kind"]) == "%.2f s" % f["contained_s"]
    slow = max(per_bot, key=lambda f: f["contained_s"])
    assert "%d of %d bot faults contained, slowest %.2f s" % (
        len(per_bot), len(per_bot), slow["contained_s"]) in report["Faults (ground truth)"]
    for f in row["faults"]:
        if f.get("not_applicable"):     # the radios fail after the shutdown
            assert "Time to contain %s: not applicable" % f["kind"] in out
            assert re.search(r"not applicable to [^;(]*%s" % f["kind"],
                             report["Faults (ground truth)"])
    assert summary["faults_not_applicable"] == sum(1 for f in row["faults"]
                                                   if f.get("not_applicable"))


def test_adverse_events_and_bots_disabled_and_confirmed_agree(session):
    row, summary, out, report, page = session
    assert "Adverse events: %d (ground truth" % row["adverse_events"] in out
    assert report["Adverse events"].startswith("%d (ground truth)" % row["adverse_events"])
    assert study_row(summary, "adverse events per session") == "%.2f" % row["adverse_events"]
    swarm = "%d of %d bots disabled, %d delivering" % (
        row["bots_disabled_at_end"], row["bots"], row["bots_delivering_at_end"])
    assert "Swarm at the end (ground truth): %s" % swarm in out
    assert report["Swarm at the end (ground truth)"] == swarm
    assert row["bots"] == 16
    confirmed = "%d of %d bots confirmed disabled" % (row["bots_confirmed_disabled"],
                                                     row["estop_total"])
    assert "Emergency stop: %s" % confirmed in out
    assert confirmed in report["Emergency stop"]
    all_off = 1 if row["bots_disabled_at_end"] == row["bots"] else 0
    assert summary["sessions_all_bots_disabled"] == all_off
