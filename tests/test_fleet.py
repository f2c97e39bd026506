"""The clinic: three emulated hubs (the real firmware on the MicroPython VM and
the swarm gateway each) driven at once by ``nanohub fleet`` over sockets.

Each chair reaches its hub through a port URL made by ``chair_port``: the
socket kind straight to the emulated hub, the serve kind through a ``nanohub
serve`` process in front of it (the chair's port is then ``nanohub://NAME``).
List a kind in ``CHAIR_KINDS`` to put a chair behind that kind of link.
"""
import json
import socket
import subprocess
import sys
import threading
import time

import pytest

from _cli import stop
from nanohub.host.emulate.hub import EmulatedHub
from nanohub.host.fleet.clinic import load_clinic
from nanohub.host.errors import UsageError
from nanohub.protocol import auditlog


CHAIR_KINDS = ("socket", "socket", "serve")


def chair_port(emu, kind, name, procs):
    """The chair's port URL; a process started for it goes into ``procs`` (stopped at the end)."""
    if kind == "socket":
        return emu.url
    if kind == "serve":
        proc = subprocess.Popen([sys.executable, "-m", "nanohub.host.cli", "--port", emu.url,
                                 "serve", "--name", name],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        procs.append(proc)
        url = proc.stdout.readline().strip()        # printed once the broker listens
        assert url == "nanohub://%s" % name, proc.stderr.read() if proc.poll() else url
        return url
    raise ValueError("no chair kind %r" % kind)


def write_clinic(path, chairs):
    lines = []
    for name, port in chairs:
        lines += ["[[chair]]", 'name = "%s"' % name, 'port = "%s"' % port, ""]
    path.write_text("\n".join(lines))
    return path


def fleet(clinic, *args, timeout=90):
    argv = [sys.executable, "-m", "nanohub.host.cli", "fleet", "--clinic", str(clinic)]
    return subprocess.run(argv + list(args), capture_output=True, text=True, timeout=timeout)


def one_error_line(proc):
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    return lines[0]


@pytest.fixture(scope="module")
def clinic(module_home):
    """Three chairs of 16 bots each, and their clinic file."""
    tmp = module_home
    emus, procs = [], []
    try:
        for i, kind in enumerate(CHAIR_KINDS):
            emus.append(EmulatedHub(bots=16, scenario="nominal", seed=i + 1).start())
        names = ["chair-%d" % (i + 1) for i in range(len(emus))]
        chairs = [(n, chair_port(e, k, n, procs)) for n, e, k in zip(names, emus, CHAIR_KINDS)]
        path = write_clinic(tmp / "clinic.toml", chairs)
        yield {"path": path, "emus": dict(zip(names, emus)), "tmp": tmp, "ports": dict(chairs)}
    finally:
        for p in procs:
            stop(p)
        for e in emus:
            e.close()


# ------------------------------------------------------------ clinic file --

def test_a_clinic_file_lists_its_chairs_in_order(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text('[[chair]]\nname = "b"\nport = "socket://127.0.0.1:7000"\n'
                    '[[chair]]\nname = "a"\nport = "sim:bots=4"\nkey = "k/a.key"\n')
    chairs = load_clinic(path)
    assert [(c.name, c.port, c.is_sim) for c in chairs] == [
        ("b", "socket://127.0.0.1:7000", False), ("a", "sim:bots=4", True)]
    assert chairs[1].key == str(tmp_path / "k" / "a.key")


@pytest.mark.parametrize("text, says", [
    ("", "names no chairs"),
    ('[[chair]]\nname = "a"\n', "needs a port"),
    ('[[chair]]\nname = "a"\nport = "sim"\n[[chair]]\nname = "a"\nport = "sim"\n', "two chairs"),
    ('[[chair]]\nname = "a b"\nport = "sim"\n', "needs a name"),
    ('[[chair]]\nname = "a"\nport = "sim"\nbaud = 9600\n', "unknown field"),
    ("[[chair]\n", "not valid TOML"),
])
def test_a_bad_clinic_file_is_a_usage_error_naming_the_problem(tmp_path, text, says):
    path = tmp_path / "c.toml"
    path.write_text(text)
    with pytest.raises(UsageError) as e:
        load_clinic(path)
    assert says in str(e.value)
    proc = fleet(path, "status")
    assert proc.returncode == 2 and says in one_error_line(proc)


def test_fleet_without_a_clinic_file_is_a_usage_error(monkeypatch):
    monkeypatch.delenv("NANOHUB_CLINIC", raising=False)
    proc = subprocess.run([sys.executable, "-m", "nanohub.host.cli", "fleet", "status"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "--clinic" in one_error_line(proc)


def test_a_hub_that_never_answers_is_a_row_with_the_error_not_a_hang(tmp_path):
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(4)                # accepts, never says a word
    held = []
    stop = threading.Event()

    def accept():
        silent.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(silent.accept()[0])
            except OSError:
                pass
    th = threading.Thread(target=accept, daemon=True)
    th.start()
    try:
        path = write_clinic(tmp_path / "c.toml", [
            ("mute", "socket://127.0.0.1:%d" % silent.getsockname()[1]),
            ("nobody", "socket://127.0.0.1:1")])
        t0 = time.monotonic()
        proc = fleet(path, "--json", "--timeout", "1", "status")
        took = time.monotonic() - t0
    finally:
        stop.set()
        th.join()
        for s in held:
            s.close()
        silent.close()
    assert proc.returncode == 3, proc.stderr
    obj = json.loads(proc.stdout)
    rows = {r["chair"]: r for r in obj["chairs"]}
    assert obj["ok"] is False and not rows["mute"]["reached"] and not rows["nobody"]["reached"]
    assert "no answer" in rows["mute"]["error"] and "refused" in rows["nobody"]["error"]
    assert "mute" in one_error_line(proc) and "nobody" in one_error_line(proc)
    assert took < 20, "status took %.1f s" % took


# ------------------------------------------------------------ three hubs --

@pytest.mark.vm
def test_fleet_status_shows_every_hub_in_one_table(clinic):
    proc = fleet(clinic["path"], "--json", "status")
    assert proc.returncode == 0, proc.stderr
    obj = json.loads(proc.stdout)
    assert obj["ok"] is True
    by_name = {r["chair"]: r for r in obj["chairs"]}
    assert list(by_name) == list(clinic["emus"])
    for name, emu in clinic["emus"].items():
        row = by_name[name]
        assert row["reached"] and row["error"] is None
        assert row["hub_id"] == "0x%08x" % emu.hub_id
        assert row["state"] == "SAFE" and row["reason"] == "NONE"
        assert row["bots"]["total"] == 16 and row["bots"]["docked"] == 16
        assert row["alarms"] == {"active": 0, "unacked_high": 0}
    text = fleet(clinic["path"], "status")
    assert text.returncode == 0
    assert [ln.split()[0] for ln in text.stdout.splitlines()] == ["chair"] + list(clinic["emus"])


@pytest.mark.vm
def test_fleet_watch_streams_one_json_line_per_refresh(clinic):
    proc = fleet(clinic["path"], "--json", "watch", "--interval", "0.5", "--duration", "1.2")
    assert proc.returncode == 0, proc.stderr
    lines = [json.loads(ln) for ln in proc.stdout.splitlines()]
    assert len(lines) >= 2
    last = lines[-1]["chairs"]
    assert [r["chair"] for r in last] == list(clinic["emus"])
    assert all(r["reached"] and r["state"] == "SAFE" for r in last)


@pytest.mark.vm
def test_fleet_pull_logs_keeps_each_hubs_verified_log_and_one_index(clinic):
    out = clinic["tmp"] / "logs"
    proc = fleet(clinic["path"], "--json", "pull-logs", str(out))
    assert proc.returncode == 0, proc.stderr
    index = json.loads((out / "index.json").read_text())
    assert [c["chair"] for c in index["chairs"]] == list(clinic["emus"])
    for c in index["chairs"]:
        emu = clinic["emus"][c["chair"]]
        path = out / c["file"]
        assert path.parent.name == c["chair"]
        assert path.name == "nanohub-%08x.log" % emu.hub_id
        res = auditlog.verify(auditlog.parse_records(path.read_bytes()))
        assert res.ok and c["verified"] and res.count == c["records"] > 0
        assert c["acked"] == res.last_index + 1, c     # the hub may rotate them away now
    proc = fleet(clinic["path"], "--json", "pull-logs", str(out))
    assert proc.returncode == 0, proc.stderr
    assert all(c["verified"] for c in json.loads(proc.stdout)["chairs"])   # resumed, whole


@pytest.mark.vm
def test_fleet_estop_confirms_every_hub_then_names_the_one_that_died(clinic):
    assert clinic["ports"]["chair-3"] == "nanohub://chair-3"     # through nanohub serve
    proc = fleet(clinic["path"], "--json", "estop")
    assert proc.returncode == 0, (proc.stdout, proc.stderr)
    obj = json.loads(proc.stdout)
    assert obj["ok"] is True and obj["confirmed_hubs"] == 3 and obj["unreached"] == []
    for row in obj["chairs"]:
        assert row["ok"] and row["done"] and row["confirmed"] == row["total"] == 16
        assert row["unconfirmed"] == []
    states = json.loads(fleet(clinic["path"], "--json", "status").stdout)["chairs"]
    assert [r["state"] for r in states] == ["ESTOP"] * 3

    dead = "chair-2"
    clinic["emus"][dead].close()
    proc = fleet(clinic["path"], "estop")
    assert proc.returncode == 1, (proc.stdout, proc.stderr)
    line = one_error_line(proc)
    assert "NOT CONFIRMED on 1 of 3 hubs" in line and "could not reach: chair-2" in line
    assert "chair-1" not in line and "chair-3" not in line
    assert "chair-1" in proc.stdout and "confirmed: all 16 bots disabled" in proc.stdout
    obj = json.loads(fleet(clinic["path"], "--json", "estop").stdout)
    assert obj["ok"] is False and obj["unreached"] == [dead] and obj["confirmed_hubs"] == 2

    # the hub behind nanohub serve dies; the broker stays up and cannot confirm it
    clinic["emus"]["chair-3"].close()
    proc = fleet(clinic["path"], "--json", "estop")
    assert proc.returncode == 1, (proc.stdout, proc.stderr)
    obj = json.loads(proc.stdout)
    assert obj["ok"] is False and obj["confirmed_hubs"] == 1 and obj["unreached"] == [dead]
    rows = {r["chair"]: r for r in obj["chairs"]}
    assert rows["chair-1"]["ok"] and rows["chair-1"]["confirmed"] == 16
    assert not rows["chair-3"].get("ok") and "nanohub://chair-3" in rows["chair-3"]["error"]
    assert "unconfirmed: chair-3" in obj["message"] and "could not reach: chair-2" in obj["message"]
    assert "chair-1" not in obj["message"]


# Bots 3 and 5 never answer, from the start: the emergency stop cannot confirm them.
# (Docked bots that fall silent later are not marked lost, nothing is asked of them,
# so there is no event to wait for before the stop; silent from 0 s needs none.)
SILENT = """
name = "two-silent"
duration_s = 600
bots = 16
seed = 1

[[fault]]
at = 0.0
kind = "silent"
targets = [3, 5]
"""


@pytest.mark.vm
def test_fleet_estop_names_the_hub_and_the_bots_it_could_not_confirm(tmp_path, home):
    scenario = tmp_path / "two-silent.toml"
    scenario.write_text(SILENT)
    with EmulatedHub(bots=16, scenario="nominal", seed=1) as good, \
            EmulatedHub(bots=16, scenario=str(scenario), seed=1) as quiet:
        path = write_clinic(tmp_path / "clinic.toml", [("good", good.url), ("quiet", quiet.url)])
        proc = fleet(path, "--json", "estop")
    assert proc.returncode == 1, (proc.stdout, proc.stderr)
    obj = json.loads(proc.stdout)
    assert obj["ok"] is False and obj["unreached"] == [] and obj["confirmed_hubs"] == 1
    assert obj["unconfirmed"] == {"quiet": [3, 5]}
    line = one_error_line(proc)
    assert "unconfirmed: quiet" in line and "unconfirmed bots: 3, 5" in line
    assert "good" not in line
