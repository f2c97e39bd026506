"""The study's run unit: one seeded session, recorded and judged.

:func:`one_run` is what the process pool (:func:`nanohub.host.study.run_study`)
and the Dask workers (:mod:`nanohub.host.study.cluster`) run for each seed.
"""
import os
import shutil
import tempfile
import time
from ..simport import HEAP


def one_run(scenario, seed, bots=None, heap=HEAP, record_dir=None):
    """The run unit: one session, recorded and judged; returns a JSON-able dict.

    Every session is recorded (into ``record_dir``, else a scratch directory
    removed afterwards) so that its figures come from the same computed summary
    as its report and the demo's console summary (:mod:`nanohub.host.report.story`)."""
    t = time.monotonic()
    scratch = None
    try:
        if not record_dir:
            scratch = record_dir = tempfile.mkdtemp(prefix="nanohub-study-")
        res = run_figures(os.path.join(record_dir, "seed-%d.db" % seed), scenario, seed,
                          bots=bots, heap=heap)
    except Exception as e:      # a failed run is a result, not a crash of the study
        res = {"scenario": scenario, "seed": seed, "error": "%s: %s" % (type(e).__name__, e)}
    finally:
        if scratch:
            shutil.rmtree(scratch, ignore_errors=True)
    res["wall_s"] = time.monotonic() - t
    return res


def run_figures(db, scenario, seed, bots=None, heap=HEAP):
    """One recorded session's row: what only the live session knows (the trace's dose
    after DISABLE, the hub's view of its inputs, the pulled log) from
    :func:`nanohub.host.study.session.outcome`, and every figure the report prints from
    :func:`nanohub.host.report.story.figures` of the recording."""
    from .record import record_session
    from ..report.data import load
    from ..report.story import figures, story
    from .session import outcome
    s = record_session(db, scenario, seed=seed, bots=bots, heap=heap)
    res = outcome(s)
    if res.get("error"):
        return res
    return merge(res, figures(story(load(db))))


def merge(res, fig):
    """The outcome with the story's figures in place of its own."""
    res.update(fig)
    res["contained"] = (res["bots_delivering_at_end"] == 0 and all(
        f["contained_s"] is not None for f in res["faults"] if "contained_s" in f))
    return res
