"""``nanohub study --scheduler``: the study's run unit on a Dask cluster.

The run unit is the same :func:`nanohub.host.study.run.one_run` the process pool
runs, with the same (scenario, seed) pairs, so a cluster gives the same
results as the local pool. ``--scheduler local`` starts a LocalCluster on
this machine; ``--scheduler tcp://HOST:PORT`` uses a running scheduler whose
workers have nanohub installed (docs/cluster.md).

A session is mostly idle (real-time hub timing), so each worker runs several
at once, one per thread; each runs in a Python process of its own (as in the
process pool), which starts the session's MicroPython VM and swarm gateway.
When the study records, the run records into a temporary directory on its
worker and the database comes back with the result, so ``--record DIR`` fills DIR on this machine as each run
finishes, wherever the run ran.
"""
import math
import os
import pickle
import shutil
import subprocess
import sys
import tempfile
from ..simport import HEAP

LOCAL_WORKERS = 2           # worker processes of ``--scheduler local``
SESSIONS_PER_CORE = 8       # as the process pool: sessions are mostly idle


def cluster_run(scenario, seed, bots=None, heap=HEAP, record=False):
    """One run on a worker, in a Python process of its own; with ``record``, the
    session database comes back as bytes.

    Each run gets its own interpreter, as in the process pool: sessions
    sharing a worker's threads would share its GIL, and a starved host side
    misses the hub's timing (the hub then stops the session on its own).
    """
    tmp = tempfile.mkdtemp(prefix="nanohub-study-")
    out = os.path.join(tmp, "result.pickle")
    argv = [sys.executable, "-m", "nanohub.host.study.cluster", scenario, str(seed), heap, out]
    argv += ["--bots", str(bots)] if bots else []
    argv += ["--record", tmp] if record else []
    try:
        from ..emulate.hub import _child_setup, _prctl
        # the run dies with the worker thread that waits for it (a lost worker leaves nothing)
        setup = (lambda parent=os.getpid(), prctl=_prctl(): _child_setup(parent, prctl))
        proc = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, preexec_fn=setup)
        if proc.returncode != 0 or not os.path.exists(out):
            tail = proc.stderr.decode(errors="replace").strip().splitlines()[-1:] or ["no output"]
            raise RuntimeError("the run's process exited with status %d: %s"
                               % (proc.returncode, tail[0]))
        with open(out, "rb") as f:
            res = pickle.load(f)
        db = os.path.join(tmp, "seed-%d.db" % seed)
        if record and os.path.exists(db):
            with open(db, "rb") as f:
                res["_db"] = f.read()
        return res
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _main(argv=None):
    """The run's own process: one_run, its result pickled to a file."""
    import argparse
    ap = argparse.ArgumentParser(prog="python -m nanohub.host.study.cluster")
    ap.add_argument("scenario")
    ap.add_argument("seed", type=int)
    ap.add_argument("heap")
    ap.add_argument("out")
    ap.add_argument("--bots", type=int, default=None)
    ap.add_argument("--record", default=None)
    a = ap.parse_args(argv)
    from .run import one_run
    res = one_run(a.scenario, a.seed, a.bots, a.heap, record_dir=a.record)
    with open(a.out + ".part", "wb") as f:
        pickle.dump(res, f)
    os.replace(a.out + ".part", a.out)
    return 0


def _client(scheduler, workers):
    """(client, cluster or None) for ``local`` or a scheduler address."""
    from ..errors import LinkError, UsageError
    try:
        from dask.distributed import Client, LocalCluster
    except ImportError:
        raise UsageError("--scheduler needs Dask: pip install 'nanohub[cluster]'") from None
    if scheduler == "local":
        n = workers or LOCAL_WORKERS
        threads = max(1, math.ceil(SESSIONS_PER_CORE * (os.cpu_count() or 1) / n))
        # processes, not threads: each worker is its own Python, as a remote one is
        cluster = LocalCluster(n_workers=n, threads_per_worker=threads, processes=True,
                               dashboard_address=None, silence_logs=50)
        return Client(cluster), cluster
    if "://" not in scheduler:
        raise UsageError("--scheduler takes 'local' or tcp://HOST:PORT, not %r" % scheduler)
    try:
        return Client(scheduler, timeout=10), None
    except (OSError, TimeoutError) as e:
        raise LinkError("cannot reach the Dask scheduler at %s: %s" % (scheduler, e)) from None


def run_cluster(scenario, runs, seed0=1, scheduler="local", workers=None, bots=None,
                heap=HEAP, progress=None, record_dir=None):
    """Every run on the cluster; results in seed order, a lost run as an error with its seed."""
    from dask.distributed import as_completed
    if os.path.exists(scenario):    # a scenario file: the workers read it by absolute path
        scenario = os.path.abspath(scenario)
    client, cluster = _client(scheduler, workers)
    results = []
    try:
        # pure=False: two studies of the same seeds are two sets of runs, not a cache hit
        futs = {client.submit(cluster_run, scenario, seed0 + i, bots, heap, bool(record_dir),
                              pure=False, key="nanohub-run-%d-%s" % (seed0 + i, os.urandom(4).hex())):
                seed0 + i for i in range(runs)}
        for f in as_completed(futs):
            seed = futs[f]
            try:
                res = f.result()
            except Exception as e:      # a worker lost or a task failed: the seed stays reported
                res = {"scenario": scenario, "seed": seed,
                       "error": "%s: %s" % (type(e).__name__, e), "wall_s": 0.0}
            db = res.pop("_db", None)
            if db is not None and record_dir:
                with open(os.path.join(record_dir, "seed-%d.db" % seed), "wb") as out:
                    out.write(db)
            f.release()
            results.append(res)
            if progress:
                progress(len(results), runs, res)
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
    results.sort(key=lambda r: r["seed"])
    return results


if __name__ == "__main__":
    sys.exit(_main())
