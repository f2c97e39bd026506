"""Row 17: study throughput on a Dask LocalCluster, next to row 10's process pool.

``nanohub.host.study.run_study(..., scheduler='local')`` starts a LocalCluster
of two worker processes (each running several sessions in its threads, 8 per
core in all, as the pool), submits one task per session and gathers the
results as they finish. The bench pins itself and its children to two CPUs as
row 10 does; the wall time includes starting and closing the cluster.
"""
from nanohub.host.study.cluster import LOCAL_WORKERS

from .report import Row
from .study import pinned, wave


def run(quick=False):
    with pinned() as cores:
        w = wave(2 if quick else 8 * cores, LOCAL_WORKERS, scheduler="local")
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
