"""``nanohub study --scheduler``: the same runs on a Dask LocalCluster as in the
process pool, seed for seed; failed runs keep their seed; recorded sessions
come back from the workers as they finish."""
import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

import _background
import _cli
from _cli import short_scenario


pytest.importorskip("dask.distributed", reason="the cluster extra is not installed")

ROOT = Path(__file__).resolve().parents[1]

# Per-run fields fixed by (scenario, seed): the swarm, the plan, the outcome
# counts. Depths and times depend on real-time scheduling and are left out.
DETERMINISTIC = ("scenario", "seed", "bots", "error", "log_ok", "adverse_events",
                 "dose_after_disable", "bots_dose_after_disable", "false_quarantines",
                 "bots_disabled_at_end", "estop")


def _study(tmp_path, *args, timeout=300):
    return _studies(tmp_path, args, timeout=timeout)[0]


def _studies(tmp_path, *argss, timeout=300):
    """``nanohub --json study --scenario short.toml ARGS`` for each ARGS, side by side."""
    env = dict(os.environ)
    env.pop("NANOHUB_PORT", None)
    procs = [subprocess.Popen([sys.executable, "-m", "nanohub.host.cli", "--json", "study",
                               "--scenario", "short.toml", *args], cwd=tmp_path, text=True,
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for args in argss]
    try:
        outs = [proc.communicate(timeout=timeout) for proc in procs]
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()
    return [subprocess.CompletedProcess(p.args, p.returncode, out, err)
            for p, (out, err) in zip(procs, outs)]


def _lines(proc):
    return [json.loads(line) for line in proc.stdout.splitlines()]


def _fixed(run):
    got = {k: run.get(k) for k in DETERMINISTIC}
    got["fault_kinds"] = sorted(f["kind"] for f in run.get("faults") or ())
    got["depth_sites"] = sorted(run.get("depth") or ())
    return got


@pytest.mark.vm
def test_a_study_on_a_local_dask_cluster_matches_the_process_pool_seed_for_seed(tmp_path):
    short_scenario(tmp_path)
    pool, dask = _studies(tmp_path, ("--runs", "3", "--seed", "5", "-o", "pool.jsonl"),
                          ("--runs", "3", "--seed", "5", "--scheduler", "local",
                           "-o", "dask.jsonl", "--record", "rec"))
    assert pool.returncode == 0, pool.stderr
    assert dask.returncode == 0, dask.stderr

    # progress streamed one line per finished run, then the summary
    objs = _lines(dask)
    assert [o["run"] for o in objs[:-1]] == [1, 2, 3]
    assert sorted(o["seed"] for o in objs[:-1]) == [5, 6, 7]
    assert objs[-1]["summary"]["runs"] == 3 and objs[-1]["summary"]["failed_runs"] == 0

    a = [json.loads(x) for x in (tmp_path / "pool.jsonl").read_text().splitlines()]
    b = [json.loads(x) for x in (tmp_path / "dask.jsonl").read_text().splitlines()]
    assert [r["seed"] for r in a] == [r["seed"] for r in b] == [5, 6, 7]
    assert all(r["log_ok"] for r in a + b)
    assert [_fixed(r) for r in a] == [_fixed(r) for r in b]

    # every session came back from its worker into the store here
    for seed in (5, 6, 7):
        db = tmp_path / "rec" / ("seed-%d.db" % seed)
        with sqlite3.connect(db) as con:
            tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master")}
            assert tables, db
            meta = dict(con.execute("SELECT key, value FROM meta"))
        assert meta.get("seed") == str(seed)


@pytest.mark.vm
def test_a_failed_run_on_the_cluster_is_reported_with_its_seed(tmp_path):
    short_scenario(tmp_path)
    # a heap too small for the firmware: every hub fails to start, a real failure
    proc = _study(tmp_path, "--runs", "2", "--seed", "11", "--scheduler", "local",
                  "--workers", "1", "--heap", "2k")
    assert proc.returncode == 1, proc.stderr
    objs = _lines(proc)
    runs = objs[:-1]
    assert sorted(o["seed"] for o in runs) == [11, 12]
    assert all(o["ok"] is False and "MemoryError" in o["error"] for o in runs), runs
    assert objs[-1]["summary"]["failed_runs"] == 2


def _unreachable():
    return _background.Run("cluster-unreachable", _cli.argv(
        "study", "--scenario", "short.toml", "--runs", "1", "--scheduler", "tcp://127.0.0.1:1"),
        timeout=120, setup=short_scenario)


BACKGROUND = ("cluster-unreachable", _unreachable)     # seconds of waiting for the scheduler


def test_an_unreachable_scheduler_is_a_link_error_in_one_line():
    rc, out, err = _background.get(*BACKGROUND).result()
    assert rc == 3, err
    assert "cannot reach the Dask scheduler at tcp://127.0.0.1:1" in err
    assert "Traceback" not in err


def test_a_scheduler_that_is_neither_local_nor_an_address_is_a_usage_error(tmp_path):
    short_scenario(tmp_path)
    proc = _study(tmp_path, "--runs", "1", "--scheduler", "somewhere")
    assert proc.returncode == 2
    assert "--scheduler takes 'local' or tcp://HOST:PORT" in proc.stderr
