"""Row 17: study throughput on a Dask LocalCluster, next to row 10's process pool.

``nanohub.host.study.run_study(..., scheduler='local')`` starts a LocalCluster
of two worker processes (each running several sessions in its threads, 8 per
core in all, as the pool), submits one task per session and gathers the
results as they finish. The bench pins itself and its children to two CPUs as
row 10 does; the wall time includes starting and closing the cluster.
"""
import os
import time

from nanohub.host.study import run_study
from nanohub.host.study.cluster import LOCAL_WORKERS

from .report import Row
from .study import CORES, _cpu_s


def wave(runs, scenario="nominal"):
    c0, t0 = _cpu_s(), time.monotonic()
    res = run_study(scenario, runs, seed0=1, scheduler="local")
    wall = time.monotonic() - t0
    cpu = _cpu_s() - c0
    good = [r for r in res if not r.get("error") and r.get("log_ok")]
    return {"runs": runs, "workers": LOCAL_WORKERS, "wall_s": wall, "ok": len(good),
            "per_min": len(good) / wall * 60.0, "cpu_s": cpu,
            "cpu_share": cpu / (wall * CORES),
            "session_s": sum(r.get("wall_s") or 0.0 for r in res) / len(res),
            "errors": [r.get("error") for r in res if r.get("error")]}


def run(quick=False):
    old = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    if old is not None and len(old) > CORES:
        os.sched_setaffinity(0, sorted(old)[:CORES])
    try:
        cores = len(os.sched_getaffinity(0)) if old is not None else os.cpu_count()
        w = wave(2 if quick else 8 * cores)
    finally:
        if old is not None:
            os.sched_setaffinity(0, old)
    fig = "%.1f sessions/min (LocalCluster, %d workers on %d cores)" % (
        w["per_min"], w["workers"], cores)
    how = ("`nanohub.host.study.run_study('nominal', %d, scheduler='local')` (what `nanohub "
           "study --scheduler local` runs) with the bench pinned to %d CPUs; %d of %d sessions "
           "ended without error with their audit log verified in %.0f s, CPU %.0f %% of %d "
           "cores, mean session %.1f s. The wall time includes starting and closing the "
           "cluster; compare row 10 (the process pool, same run unit and seeds)." % (
               w["runs"], cores, w["ok"], w["runs"], w["wall_s"], 100 * w["cpu_share"], cores,
               w["session_s"]))
    if w["errors"]:
        how += " Errors: %s." % "; ".join(sorted(set(w["errors"])))[:300]
    return [Row("17", "study throughput on a Dask LocalCluster (nominal scenario, 64 bots)",
                fig, "report", None, how=how, data={"wave": w})], {"wave": w}
