"""``nanohub study``: many seeded sessions of the whole system, with statistics.

Each run is one recorded :func:`nanohub.host.study.session.run_session` (firmware on
the MicroPython VM + swarm gateway + scripted operator) in its own process; its
figures (alarms, flags, depths, contain times, adverse events, the swarm at the
end) come from the recording's computed summary, the one the demo's console and
the HTML report print (:mod:`nanohub.host.report.story`). The
run unit takes (scenario, seed) and returns a plain dict, so a cluster engine
(Ray, Dask) could fan it out unchanged. Sessions run in real time and are
mostly idle (about 5 % of a core each), so several share a core; the
default runs eight per core.

Besides the outcomes, each run compares the hub's view of every safety input
with the simulator's truth (:mod:`nanohub.host.study.inputs`); the table ends with
"hub vs truth": the extremes of ``hub - truth`` over the runs, the bound of
the dangerous side (docs/safety.md) and a verdict (for the dose: whether the
hub ever counted less than the bots delivered). A study exits 1 when an
input leaves its bound.
"""
import math
import os
import statistics
import sys
from concurrent.futures import ProcessPoolExecutor, as_completed

from .run import merge, one_run, run_figures  # noqa: F401  (the run unit, also as study.one_run)
from ..simport import HEAP

# two-sided 95 % Student t quantiles for small samples
_T95 = {1: 12.71, 2: 4.30, 3: 3.18, 4: 2.78, 5: 2.57, 6: 2.45, 7: 2.36, 8: 2.31, 9: 2.26,
        10: 2.23, 12: 2.18, 15: 2.13, 20: 2.09, 25: 2.06, 30: 2.04, 40: 2.02, 60: 2.00}


def _t95(df):
    if df <= 0:
        return float("nan")
    keys = sorted(_T95)
    for k in keys:
        if df <= k:
            return _T95[k]
    return 1.96


def ci(values):
    """(mean, half-width of the 95 % confidence interval)."""
    vals = [v for v in values if v is not None]
    if not vals:
        return None, None
    m = statistics.fmean(vals)
    if len(vals) < 2:
        return m, float("nan")
    return m, _t95(len(vals) - 1) * statistics.stdev(vals) / math.sqrt(len(vals))


def run_study(scenario, runs, seed0=1, workers=None, bots=None, heap=HEAP, progress=None,
              record_dir=None, scheduler=None):
    """Every run, in seed order; ``scheduler`` ('local' or tcp://...) runs them on Dask."""
    if scheduler:
        from .cluster import run_cluster
        return run_cluster(scenario, runs, seed0, scheduler, workers, bots, heap, progress,
                           record_dir)
    workers = workers or max(1, min(runs, 8 * (os.cpu_count() or 1)))
    results = []
    with ProcessPoolExecutor(max_workers=workers) as pool:
        futs = {pool.submit(one_run, scenario, seed0 + i, bots, heap, record_dir): seed0 + i
                for i in range(runs)}
        for f in as_completed(futs):
            try:
                res = f.result()
            except Exception as e:      # a worker process died: the run is lost, its seed is not
                res = {"scenario": scenario, "seed": futs[f],
                       "error": "%s: %s" % (type(e).__name__, e), "wall_s": 0.0}
            results.append(res)
            if progress:
                progress(len(results), runs, res)
    results.sort(key=lambda r: r["seed"])
    return results


def summarize(results):
    ok = [r for r in results if not r.get("error")]
    rows = []

    def add(what, vals, fmt="%.1f", unit=""):
        m, h = ci(vals)
        if m is None:
            rows.append((what, "n/a", len([v for v in vals if v is not None])))
        else:
            rows.append((what, (fmt % m) + (" +- " + fmt % h if not math.isnan(h) else "") + unit,
                         len([v for v in vals if v is not None])))

    add("lesion depth reduction", [r["depth_reduction_um"] for r in ok], unit=" um")
    add("adverse events per session", [r["adverse_events"] for r in ok], "%.2f")
    add("alarms raised per session", [r.get("alarms_raised") for r in ok], "%.2f")
    add("audit records flagged per session", [r.get("audit_flagged") for r in ok], "%.2f")
    kinds = sorted({f["kind"] for r in ok for f in r["faults"] if "contained_s" in f})
    for k in kinds:
        vals = [f["contained_s"] for r in ok for f in r["faults"]
                if f["kind"] == k and "contained_s" in f and f["contained_s"] is not None]
        add("time to contain %s" % k, vals, "%.2f", " s")
    add("dose after disable (udu)", [r["dose_after_disable"] for r in ok], "%.1f")
    not_contained = sum(1 for r in ok for f in r["faults"] if "contained_s" in f and f["contained_s"] is None)
    # faults whose bots were all disabled before they struck: nothing to contain
    not_applicable = sum(1 for r in ok for f in r["faults"] if f.get("not_applicable"))
    all_off = sum(1 for r in ok if r["bots_disabled_at_end"] == r["bots"])
    from .inputs import judge
    return {
        "inputs": judge([r.get("inputs") for r in ok]),
        "runs": len(results), "failed_runs": len(results) - len(ok), "rows": rows,
        "faults_not_contained": not_contained,
        "faults_not_applicable": not_applicable,
        "sessions_all_bots_disabled": all_off,
        "sessions_dose_after_disable": sum(1 for r in ok if r["dose_after_disable"] > 0),
        "log_verified": sum(1 for r in ok if r.get("log_ok")),
        "sessions_false_quarantine": sum(1 for r in ok if r.get("false_quarantines")),
    }


def print_table(summary, scenario, out=sys.stdout):
    from ..tui import fields, table
    w = out.write
    w("\nstudy: %s, %d runs (%d failed)\n" % (scenario, summary["runs"], summary["failed_runs"]))
    w(table(("metric", "mean +- 95% CI", "n>"), summary["rows"], stream=out) + "\n")
    w(fields([
        ("faults not contained:", "%d" % summary["faults_not_contained"]),
        ("faults not applicable (bots already disabled):",
         "%d" % summary.get("faults_not_applicable", 0)),
        ("sessions with every bot disabled:", "%d of %d" % (
            summary["sessions_all_bots_disabled"], summary["runs"] - summary["failed_runs"])),
        ("sessions with dose after disable:", "%d" % summary["sessions_dose_after_disable"]),
        ("audit logs verified:", "%d" % summary["log_verified"]),
        ("sessions quarantining healthy bots:", "%d" % summary["sessions_false_quarantine"]),
    ], stream=out) + "\n")
    _print_inputs(summary.get("inputs") or {}, w, out)


def _num(v, unit):
    return ("%+.2f" if unit in ("C", "%") else "%+.0f") % v


def _print_inputs(inputs, w, stream):
    """The hub's view of every safety input against the simulator's truth."""
    from .inputs import LABELS, ORDER, verdict

    from ..tui import table
    w("\nhub vs truth: error = hub - truth, extremes over every run "
      "(bounds: docs/safety.md)\n")
    rows = []
    for k in ORDER:
        r = inputs.get(k)
        if r is None:
            rows.append((LABELS[k], "no data", "", "", "", "", "", ""))
            continue
        side = "below truth" if r["dangerous"] == "low" else "above truth"
        bound = ("-" if r["dangerous"] == "low" else "+") + (
            "%g" % r["bound"] if isinstance(r["bound"], float) else "%d" % r["bound"])
        rows.append((LABELS[k], r["unit"], _num(r["low"], r["unit"]), _num(r["high"], r["unit"]),
                     side, bound, "%d of %d" % (r["sessions_out"], r["sessions"]),
                     verdict(k, r)))
    w(table(("input", "unit", "lowest>", "highest>", "dangerous", "bound>", "runs out>",
             "verdict"), rows, stream=stream) + "\n")
