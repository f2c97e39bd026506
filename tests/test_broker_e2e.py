"""Many operators' programs on one hub at once, through ``nanohub serve`` and
``nanohub sim``: a treatment watched to the end, dashboards, a recorder and a
stream of one-shot commands, all real ``nanohub`` processes."""
import json
import sqlite3
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

import _cli
import _waiting as waiting

from nanohub.host.client import Hub
from nanohub.host.emulate.hub import EmulatedHub
from nanohub.protocol import auditlog, schema

ROOT = Path(__file__).resolve().parent.parent
PLAN = ROOT / "docs" / "plan-example.toml"
SITES = (10, 66, 148)                  # the plan's: 3 occlusal, 14 mesial, 30 buccal
ONE_SHOTS = ([("status",)] * 6 + [("swarm", "list")] * 5 + [("alarms", "list")] * 4
             + [("params", "get", "tick_hz")] * 3 + [("info",)] * 2)
EV_STATE = schema.enum_value("EV", "STATE")
EV_ALARM = schema.enum_value("EV", "ALARM")
PAUSED = schema.enum_value("HUB", "PAUSED")
LINK_LOST = schema.enum_value("ALARM", "LINK_LOST")


def wait_for(cond, timeout=20.0, what="the condition"):
    return waiting.wait_for(cond, timeout, what)


@pytest.fixture
def served(home):
    """An emulated hub owned by a ``nanohub serve`` process: its URL."""
    with EmulatedHub(bots=12, scenario="nominal", seed=5) as emu:
        proc = subprocess.Popen(_cli.argv("--port", emu.url, "serve", "--name", "chair1"),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            url = proc.stdout.readline().strip()
            assert url == "nanohub://chair1", proc.stderr.read() if proc.poll() else url
            yield url
        finally:
            _cli.stop(proc)


@pytest.fixture
def simulated(home):
    """A ``nanohub sim`` process: its URL."""
    proc = subprocess.Popen(_cli.argv("--json", "sim", "--bots", "12", "--seed", "5", "--name",
                                    "sim1"), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        first = json.loads(proc.stdout.readline() or "{}")
        assert first.get("urls", [None])[0] == "nanohub://sim1", proc.stderr.read()
        yield first["urls"][0]
    finally:
        _cli.stop(proc)


def _treat_with_company(url, tmp_path, one_shots=ONE_SHOTS, streams=2, record=True):
    with Hub.open(url) as hub:                      # the hub key comes from the key store
        # the host link is under test, not the swarm: a swarm process starved of
        # CPU on a loaded machine must not stop the hub (hb_pause_ms stays 1 s)
        for name, value in (("bot_quar_ms", 20000), ("bot_lost_ms", 5000),
                            ("bus_loss_pct", 90), ("systemic_pct", 50),
                            ("runaway_grace", 3000), ("runaway_margin", 50),
                            ("runaway_ticks", 10)):
            hub.param_set(name, value)
        hub.command("CONSENT", {"patient": 4711})
        for site in SITES:
            hub.command("DEPLOY", {"site": site, "count": 3})
        wait_for(lambda: hub.status()["bots"]["deployed"] == 9
                 and "BOTS" not in hub.status()["failing_checks"], what="9 bots at their sites")
        hub.command("ARM")
    treat = subprocess.Popen(_cli.argv("--port", url, "--json", "treat", "start", PLAN, "--watch"),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines = []
    reader = threading.Thread(target=lambda: lines.extend(treat.stdout), daemon=True)
    reader.start()
    others = []
    try:
        wait_for(lambda: lines or treat.poll() is not None, what="the treatment to start")
        started = json.loads(lines[0])
        assert started["ok"] and started["command"] == "TREAT_START", started
        db = tmp_path / "session.db"
        company = [("--json", "watch", "--duration", "6")] * streams
        if record:
            company.append(("record", "-o", db, "--duration", "6", "--no-log"))
        others = [subprocess.Popen(_cli.argv("--port", url, *argv), stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True) for argv in company]

        def one_shot(argv):
            return subprocess.run(_cli.argv("--port", url, "--json", *argv), capture_output=True,
                                  text=True, timeout=60)
        with ThreadPoolExecutor(3) as pool:
            results = list(pool.map(one_shot, one_shots))
        outs = [p.communicate(timeout=60) + (p.returncode,) for p in others]
        assert treat.poll() is None, treat.stderr.read()   # the watcher never lost its link

        failed = [(r.args[-len(a):], r.returncode, r.stderr) for r, a in zip(results, one_shots)
                  if r.returncode != 0 or not json.loads(r.stdout)["ok"]]
        assert not failed
        for out, err, code in outs:
            assert code == 0, err
        seen = [[json.loads(x) for x in out.splitlines()] for out, _, _ in outs[:streams]]
        seen.append([json.loads(x) for x in lines[1:]])
        for stream in seen:
            assert stream
            states = {(m["state"], m["reason"]) for m in stream if m["msg"] == "HUB_STATUS"}
            assert states == {("TREATING", "NONE")}, states
            assert not [m for m in stream if m["msg"] == "ALARM" and m["code"] == "LINK_LOST"]
        if record:
            with sqlite3.connect(db) as con:
                assert con.execute("select count(*) from sqlite_master").fetchone()[0] > 0
        with Hub.open(url) as hub:
            assert hub.status()["state"] == "TREATING"
            records = auditlog.parse_records(hub.log_pull())
        assert not [r for r in records if r["event"] == EV_STATE and r["a"] == PAUSED]
        assert not [r for r in records if r["event"] == EV_ALARM and r["a"] == LINK_LOST]
        # the operator's program dies: with no client heartbeating, the broker falls
        # silent too and the hub's operator-gone rule pauses the treatment
        treat.kill()
        treat.wait()
        with Hub.open(url, heartbeat=False) as hub:     # listens only: any frame is liveness
            t0 = time.monotonic()
            sub = hub.subscribe()
            st = None
            while st is None and time.monotonic() - t0 < 10:
                f = sub.get(0.5)
                if f is not None and f.name == "HUB_STATUS" and f["state"] == PAUSED:
                    st = f
            assert st is not None, "the hub did not pause when the operator's program died"
            assert st["reason"] == LINK_LOST and time.monotonic() - t0 < 3.0
    finally:
        for p in others:
            if p.poll() is None:
                p.kill()
        _cli.stop(treat)


def test_a_treatment_through_nanohub_serve_never_pauses_while_others_use_the_hub(served,
                                                                                  tmp_path):
    _treat_with_company(served, tmp_path)


def test_a_treatment_on_nanohub_sim_never_pauses_while_others_use_the_hub(simulated, tmp_path):
    # the same broker as above: a lighter crowd keeps the suite's time down
    _treat_with_company(simulated, tmp_path, one_shots=ONE_SHOTS[::5], streams=1, record=False)
