"""Row 10: study throughput, whole simulated sessions per minute on 2 cores.

``nanohub.host.study.run_study`` runs each session (firmware on the VM,
swarm gateway, scripted operator, ~60 s of real time, audit log pulled and
verified) in a worker process. The bench pins itself and its children to two
CPUs, runs one wave of sessions with the study's default number of workers
(4 per core) and one with 8 per core, and counts the sessions that finished
without error per minute of wall time.
"""
import contextlib
import os
import resource
import time

from nanohub.host.study import run_study

from .report import Row

GOAL = 10.0
CORES = 2


def _cpu_s():
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


@contextlib.contextmanager
def pinned(n=CORES):
    """This process and the children it starts on at most ``n`` CPUs; yields the count."""
    old = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    if old is not None and len(old) > n:
        os.sched_setaffinity(0, sorted(old)[:n])
    try:
        yield len(os.sched_getaffinity(0)) if old is not None else os.cpu_count()
    finally:
        if old is not None:
            os.sched_setaffinity(0, old)


def wave(runs, workers, scenario="nominal", scheduler=None):
    """One wave of ``runs`` sessions: the process pool with ``workers``, or a
    Dask ``scheduler`` (``workers`` then only names what it runs)."""
    kw = {"scheduler": scheduler} if scheduler else {"workers": workers}
    c0, t0 = _cpu_s(), time.monotonic()
    res = run_study(scenario, runs, seed0=1, **kw)
    wall = time.monotonic() - t0
    cpu = _cpu_s() - c0
    good = [r for r in res if not r.get("error") and r.get("log_ok")]
    return {"runs": runs, "workers": workers, "wall_s": wall, "ok": len(good),
            "per_min": len(good) / wall * 60.0, "cpu_s": cpu,
            "cpu_share": cpu / (wall * CORES),
            "session_s": sum(r.get("wall_s") or 0.0 for r in res) / len(res),
            "errors": [r.get("error") for r in res if r.get("error")]}


def run(quick=False):
    with pinned() as cores:
        if quick:
            waves = [wave(2, 2)]
        else:
            waves = [wave(4 * cores, 4 * cores), wave(8 * cores, 8 * cores)]
    best = max(waves, key=lambda w: (w["ok"] == w["runs"], w["per_min"]))
    ok = best["per_min"] >= GOAL and best["ok"] == best["runs"]
    detail = "; ".join("%d workers: %d/%d sessions in %.0f s = %.1f/min, CPU %.0f %% of %d cores"
                       % (w["workers"], w["ok"], w["runs"], w["wall_s"], w["per_min"],
                          100 * w["cpu_share"], cores) for w in waves)
    fig = "%.1f sessions/min (%d workers on %d cores)" % (best["per_min"], best["workers"], cores)
    why = ""
    if not ok:
        why = ("a session is ~%.0f s of real time (the hub's safety timing is real), so the "
               "rate is the number of sessions running at once per minute; one session keeps "
               "~%.0f %% of a core busy. Running more at once (the study's default is 4 per "
               "core) or a hub board with a virtual clock (time passed in, as the null board "
               "does) so sessions run faster than real time would reach it." % (
                   best["session_s"], 100 * best["cpu_s"] / max(1e-9, best["session_s"] *
                                                                best["runs"])))
    rows = []
    default = waves[0]
    if len(waves) > 1:
        rows.append(Row("10b", "study throughput, the study's default workers (4 per core)",
                        "%.1f sessions/min (%d workers)" % (default["per_min"],
                                                            default["workers"]),
                        "report", None))
    return [Row("10", "study throughput (nominal scenario, 64 bots)", fig,
                "report; >= %g sessions/min" % GOAL, ok,
                how="`nanohub.host.study.run_study('nominal', N, workers=W)` with the bench "
                    "pinned to %d CPUs (children inherit it); a session counts when it ended "
                    "without error and its audit log verified. %s." % (cores, detail),
                why=why, data={"waves": waves})] + rows, {"waves": waves}
