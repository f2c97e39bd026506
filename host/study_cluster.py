"""``nanohub study --scheduler``: the study's run unit on a Dask cluster.

The run unit is the same :func:`nanohub.host.study.one_run` the process pool
runs, with the same (scenario, seed) pairs, so a cluster gives the same
results as the local pool. ``--scheduler local`` starts a LocalCluster on
this machine; ``--scheduler tcp://HOST:PORT`` uses a running scheduler whose
workers have nanohub installed (docs/cluster.md).

A session is mostly idle (real-time hub timing), so each worker runs several
at once in its threads; every session starts its own MicroPython VM and
swarm gateway as child processes of the worker. When the study records, the
worker records into its own temporary directory and sends the database back
with the result, so ``--record DIR`` fills DIR on this machine as each run
finishes, wherever the run ran.
"""
import math
import os
import shutil
import tempfile

LOCAL_WORKERS = 2           # worker processes of ``--scheduler local``
SESSIONS_PER_CORE = 8       # as the process pool: sessions are mostly idle


def cluster_run(scenario, seed, bots=None, heap="256k", record=False):
    """One run on a worker; with ``record``, the session database comes back as bytes."""
    from .study import one_run
    if not record:
        return one_run(scenario, seed, bots, heap)
    tmp = tempfile.mkdtemp(prefix="nanohub-study-")
    try:
        res = one_run(scenario, seed, bots, heap, record_dir=tmp)
        db = os.path.join(tmp, "seed-%d.db" % seed)
        if os.path.exists(db):
            with open(db, "rb") as f:
                res["_db"] = f.read()
        return res
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _client(scheduler, workers):
    """(client, cluster or None) for ``local`` or a scheduler address."""
    from .errors import LinkError, UsageError
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
                heap="256k", progress=None, record_dir=None):
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
