"""End to end: the real firmware on the MicroPython VM, the swarm gateway, and
the real ``nanohub`` CLI over sockets. Every verb, its exit code and --json.
"""
import fcntl
import json
import os
import pty
import select
import shutil
import signal
import socket
import struct
import subprocess
import sys
import termios
import time
import tty
from pathlib import Path

import pytest

from _cli import serve
from _waiting import wait_for

from nanohub.host import vm
from nanohub.host.client import Hub
from nanohub.host.emulate.hub import EmulatedHub
from nanohub.host.link.port import free_port
from nanohub.protocol import auditlog, model
from nanohub.host.simport import HEAP

ROOT = Path(__file__).resolve().parent.parent
PLAN = ROOT / "docs" / "plan-example.toml"


@pytest.fixture
def emu(home):
    with EmulatedHub(bots=16, scenario="nominal", seed=1) as hub:
        yield hub


def cli(*args, port=None, timeout=60, env=None):
    argv = [sys.executable, "-m", "nanohub.host.cli"]
    if port is not None:
        argv += ["--port", port.url if hasattr(port, "url") else port]
    return subprocess.run(argv + list(args), capture_output=True, text=True, timeout=timeout,
                          env=dict(os.environ, **(env or {})))


def ok_json(proc):
    assert proc.returncode == 0, proc.stderr
    obj = json.loads(proc.stdout)
    assert obj["ok"] is True
    return obj


def failed(proc, code):
    assert proc.returncode == code, (proc.stdout, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    return lines[0]


def ours(home):
    """Pids of live processes started under this test's NANOHUB_HOME."""
    marker = ("NANOHUB_HOME=%s" % home).encode()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open("/proc/%s/environ" % entry, "rb") as f:
                env = f.read().split(b"\0")
            with open("/proc/%s/stat" % entry) as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if marker in env and state != "Z":
            found.append(int(entry))
    return found


# ----------------------------------------------------------- read verbs --

def test_info_and_status_describe_the_hub(emu):
    info = ok_json(cli("--json", "info", port=emu))
    assert info["hub_id"] == "0x%08x" % emu.hub_id
    assert info["board"] == "unix" and info["bots"] == 16 and info["keyed"] is True
    assert info["schema"] == "0x%08x" % model.FINGERPRINT
    st = ok_json(cli("--json", "status", port=emu))
    assert st["state"] == "SAFE" and st["reason"] == "NONE"
    assert st["bots"]["total"] == 16
    assert set(st["failing_checks"]) >= {"CONSENT", "DEPLOYED"}
    text = cli("status", port=emu)
    assert text.returncode == 0 and "state    SAFE" in text.stdout


def test_swarm_list_shows_every_bot(emu):
    obj = ok_json(cli("--json", "swarm", "list", port=emu))
    assert [b["id"] for b in obj["bots"]] == list(range(16))
    assert obj["counts"] == {"DOCKED": 16}


def test_arm_refusal_names_the_failing_checks(emu):
    proc = cli("arm", port=emu)
    line = failed(proc, 1)
    assert "CONSENT" in line and "DEPLOYED" in line
    obj = json.loads(cli("--json", "arm", port=emu).stdout)
    assert obj["ok"] is False and obj["reason"] == "CHECKS"
    assert {"CONSENT", "DEPLOYED"} <= set(obj["failing_checks"])


# --------------------------------------------------------- a treatment --

def test_a_whole_treatment_from_the_command_line(emu):
    ok_json(cli("--json", "params", "set", "hb_pause_ms", "5000", port=emu))
    ok_json(cli("--json", "consent", "4711", port=emu))
    for site in ("3-occlusal", "14-mesial", "30-buccal"):
        assert ok_json(cli("--json", "swarm", "deploy", site, "3", port=emu))["detail"] == 3
    def arrived():
        st = ok_json(cli("--json", "status", port=emu))
        return st["bots"]["deployed"] == 9 and "BOTS" not in st["failing_checks"]
    wait_for(arrived, what="9 bots deployed and at their sites")
    ok_json(cli("--json", "arm", port=emu))
    started = ok_json(cli("--json", "treat", "start", str(PLAN), port=emu))
    assert started["command"] == "TREAT_START" and len(started["plan"]["sites"]) == 3
    assert ok_json(cli("--json", "status", port=emu))["state"] == "TREATING"
    sites = wait_for(lambda: _sites(emu), what="site readings")
    assert {s["site"] for s in sites} == {10, 66, 148}
    ok_json(cli("--json", "treat", "pause", port=emu))
    assert ok_json(cli("--json", "status", port=emu))["state"] == "PAUSED"
    ok_json(cli("--json", "treat", "resume", port=emu))
    assert ok_json(cli("--json", "status", port=emu))["state"] == "TREATING"
    ok_json(cli("--json", "treat", "scale", "50", port=emu))
    ok_json(cli("--json", "treat", "stop", port=emu))
    assert ok_json(cli("--json", "status", port=emu))["state"] == "SAFE"
    ok_json(cli("--json", "swarm", "recall", port=emu))


def _sites(emu):
    with Hub.open(emu.url) as hub:
        return hub.sites()


def test_a_state_refusal_says_the_state(emu):
    line = failed(cli("treat", "pause", port=emu), 1)
    assert "SAFE" in line


# ---------------------------------------------------------- emergency stop --

def test_estop_confirms_every_bot_and_latches_until_an_authorized_reset(emu):
    ok_json(cli("--json", "swarm", "deploy", "17", "2", port=emu))
    result = ok_json(cli("--json", "estop", port=emu))
    assert result["done"] and result["confirmed"] == 16 and result["unconfirmed"] == []
    assert ok_json(cli("--json", "status", port=emu))["state"] == "ESTOP"
    assert ok_json(cli("--json", "info", port=emu))["estop_latched"] is True
    line = failed(cli("reset-estop", port=emu), 1)
    assert "ALARMS" in line
    alarms = ok_json(cli("--json", "alarms", "list", port=emu))["alarms"]
    assert {"code": "ESTOP", "prio": "HIGH"}.items() <= alarms[0].items()
    ok_json(cli("--json", "alarms", "ack", port=emu))
    ok_json(cli("--json", "reset-estop", port=emu))
    assert ok_json(cli("--json", "status", port=emu))["state"] == "SAFE"


def test_estop_text_says_every_bot_is_confirmed(emu):
    proc = cli("estop", port=emu)
    assert proc.returncode == 0
    assert "all 16 bots confirmed disabled" in proc.stdout


def test_estop_exits_1_and_lists_the_bots_it_could_not_confirm(home):
    with EmulatedHub(bots=6) as emu:
        os.kill(emu.gateway.pid, signal.SIGSTOP)        # the swarm falls silent
        try:
            proc = cli("--json", "estop", port=emu.hub_url, timeout=60)
        finally:
            os.kill(emu.gateway.pid, signal.SIGCONT)
    line = failed(proc, 1)
    assert "NOT CONFIRMED" in line and "0, 1, 2, 3, 4, 5" in line
    obj = json.loads(proc.stdout)
    assert obj["ok"] is False and obj["unconfirmed"] == [0, 1, 2, 3, 4, 5]


# ------------------------------------------------------------- parameters --

def test_params_list_get_set_and_bounds(emu):
    params = ok_json(cli("--json", "params", "list", port=emu))["params"]
    names = [p["name"] for p in params]
    assert "hb_pause_ms" in names
    assert [p["index"] for p in params] == list(range(len(params)))
    got = ok_json(cli("--json", "params", "get", "hb_pause_ms", port=emu))["param"]
    assert got["value"] == 1000 and got["unit"] == "ms"
    set_ = ok_json(cli("--json", "params", "set", "hb_pause_ms", "900", port=emu))
    assert set_["param"]["value"] == 900
    line = failed(cli("params", "set", "hb_pause_ms", "99999", port=emu), 1)
    assert "limit is 5000" in line
    line = failed(cli("params", "get", "no_such_param", port=emu), 2)
    assert "params list" in line


# ------------------------------------------------------------------ keys --

def test_a_signed_command_without_a_key_is_a_usage_error(emu, tmp_path):
    proc = cli("consent", "1", port=emu, env={"NANOHUB_HOME": str(tmp_path / "empty")})
    line = failed(proc, 2)
    assert "no key for hub 0x%08x" % emu.hub_id in line


def test_a_wrong_key_is_refused_by_the_hub(emu, tmp_path):
    wrong = tmp_path / "wrong.key"
    wrong.write_bytes(os.urandom(32))
    line = failed(cli("--key", str(wrong), "consent", "1", port=emu), 1)
    assert "not this hub's key" in line


def test_stopping_never_needs_a_key(emu, tmp_path):
    env = {"NANOHUB_HOME": str(tmp_path / "empty")}
    assert cli("treat", "stop", port=emu, env=env).returncode in (0, 1)   # refused by state
    assert cli("swarm", "recall", port=emu, env=env).returncode == 0
    assert cli("estop", port=emu, env=env).returncode == 0


# ------------------------------------------------------------------- log --

def test_log_pull_verify_resume_and_tamper(emu, tmp_path):
    path = tmp_path / "hub.log"
    first = ok_json(cli("--json", "log", "pull", "-o", str(path), port=emu))
    assert first["verified"] and first["added"] > 0
    assert ok_json(cli("--json", "log", "verify", str(path)))["records"] == first["added"]
    ok_json(cli("--json", "swarm", "deploy", "5", "1", port=emu))
    again = ok_json(cli("--json", "log", "pull", "-o", str(path), "--resume", port=emu))
    assert again["start"] == first["added"] and again["added"] > 0 and again["verified"]
    records = auditlog.parse_records(path.read_bytes())
    assert [r["index"] for r in records] == list(range(len(records)))
    line = failed(cli("log", "pull", "-o", str(path), port=emu), 2)
    assert "--resume" in line
    data = bytearray(path.read_bytes())
    data[1 * auditlog.SIZE + 9] ^= 0x40
    path.write_bytes(data)
    line = failed(cli("log", "verify", str(path)), 1)
    assert "record 1" in line
    shown = cli("log", "show", str(path))
    assert shown.returncode == 0 and "BOOT" in shown.stdout


# ----------------------------------------------------------------- watch --

def test_watch_streams_json_lines(emu):
    proc = cli("--json", "watch", "--duration", "1.5", port=emu)
    assert proc.returncode == 0, proc.stderr
    lines = [json.loads(line) for line in proc.stdout.splitlines()]
    assert "HUB_STATUS" in {x["msg"] for x in lines}
    status = next(x for x in lines if x["msg"] == "HUB_STATUS")
    assert status["state"] == "SAFE"


def _read_until(fd, needle, timeout=15.0):
    buf = b""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        ready, _, _ = select.select([fd], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(fd, 65536)
            except OSError:
                break
            if not chunk:
                break
            buf += chunk
            if needle in buf:
                return buf
    raise AssertionError("%r not on screen; got %r" % (needle, buf[-2000:]))


def test_watch_dashboard_shows_the_swarm_and_stops_it_with_one_key(emu):
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 100, 0, 0))
    proc = subprocess.Popen([sys.executable, "-m", "nanohub.host.cli", "--port", emu.url,
                             "watch"], stdin=slave, stdout=slave, stderr=slave)
    os.close(slave)
    try:
        screen = _read_until(master, b"swarm ................")
        assert b"STATE" in screen and b"SAFE" in screen
        os.write(master, b"e")
        _read_until(master, b"all 16 bots confirmed disabled")
        os.write(master, b"q")
        assert proc.wait(10) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(master)
    with Hub.open(emu.url) as hub:
        assert hub.status()["state"] == "ESTOP"


# ------------------------------------------------------ emulator lifecycle --

def test_port_sim_runs_a_private_hub_and_leaves_nothing_behind(home):
    st = ok_json(cli("--json", "--port", "sim:bots=4", "status"))
    assert st["bots"]["total"] == 4
    assert ours(home) == []
    assert not list((home / "keys").glob("*.key"))


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL])
def test_nanohub_sim_prints_the_url_and_its_children_die_with_it(home, sig):
    proc = subprocess.Popen([sys.executable, "-m", "nanohub.host.cli", "--json", "sim",
                             "--bots", "4"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        first = json.loads(proc.stdout.readline())
        assert first["url"].startswith("nanohub+unix:///") and Path(first["key"]).exists()
        assert ok_json(cli("--json", "status", port=first["url"]))["bots"]["total"] == 4
        children = list(first["pids"].values())
        assert len(children) == 2 and set(children) <= set(ours(home))
        proc.send_signal(sig)
        code = proc.wait(15)
        assert code == (-signal.SIGKILL if sig == signal.SIGKILL else 0)
        wait_for(lambda: not ours(home), timeout=10, what="children to exit")
    finally:
        if proc.poll() is None:
            proc.kill()


def test_emulated_hub_context_manager_cleans_up(home):
    with EmulatedHub(bots=2) as emu:
        pids = list(emu.pids.values())
        store = emu.store
        assert store.exists() and (home / "keys" / ("%08x.key" % emu.hub_id)).exists()
    assert not store.exists()
    assert not set(pids) & set(ours(home))


# ------------------------------------------------------------ link errors --

def test_a_frozen_hub_is_a_link_timeout(emu):
    os.kill(emu.hub.pid, signal.SIGSTOP)
    try:
        line = failed(cli("--timeout", "0.5", "status", port=emu.hub_url), 3)
    finally:
        os.kill(emu.hub.pid, signal.SIGCONT)
    assert "no answer" in line


def test_a_hub_built_from_another_schema_is_a_protocol_mismatch(home, tmp_path):
    fw = tmp_path / "firmware"
    shutil.copytree(vm.firmware_dir(), fw)
    wire = fw / "hub" / "wire.py"
    text = wire.read_text()
    theirs = model.FINGERPRINT ^ 0x00FF00FF
    text = text.replace("SCHEMA = const(0x%08x)" % model.FINGERPRINT, "SCHEMA = const(0x%08x)"
                        % theirs)
    assert ("0x%08x" % theirs) in text, "wire.py no longer defines SCHEMA as expected"
    wire.write_text(text)
    port = free_port()
    argv, env = vm.vm_command([fw / "main.py", "--board", "unix", "--host",
                               "127.0.0.1:%d" % port, "--store", tmp_path / "store",
                               "--bots", "2"], heap=HEAP, path=[fw])
    log = open(tmp_path / "hub.log", "wb")
    hub = subprocess.Popen(argv, env=env, cwd=tmp_path, stdout=log, stderr=log)
    log.close()
    try:
        wait_for(lambda: _listening(port) or hub.poll() is not None, what="the hub to listen")
        assert hub.poll() is None, (tmp_path / "hub.log").read_text()
        line = failed(cli("info", port="socket://127.0.0.1:%d" % port), 3)
    finally:
        hub.kill()
        hub.wait()
    assert "protocol mismatch" in line
    assert "0x%08x" % theirs in line and "0x%08x" % model.FINGERPRINT in line


def _listening(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


@pytest.fixture
def repl_url(tmp_path):
    """The real MicroPython REPL on a pseudo-terminal, bridged to a TCP port."""
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    master, slave = pty.openpty()
    tty.setraw(slave)                   # a UART: no echo, no newline translation
    workdir = tmp_path / "board"
    workdir.mkdir()
    repl = subprocess.Popen([vm.find_micropython()], stdin=slave, stdout=slave, stderr=slave,
                            cwd=workdir, start_new_session=True)
    os.close(slave)
    # a board's REPL is up before anyone connects: wait for its prompt (a
    # loaded machine starts the VM late), and give its banner to the first client
    banner = bytearray()
    deadline = time.monotonic() + 30
    while b">>> " not in banner and time.monotonic() < deadline and repl.poll() is None:
        if select.select([master], [], [], 0.1)[0]:
            banner += os.read(master, 4096)
    assert b">>> " in banner, "the MicroPython REPL did not start: %r" % bytes(banner)

    def relay(conn):
        if banner:
            conn.sendall(bytes(banner))
            banner.clear()
        while repl.poll() is None:
            ready, _, _ = select.select([conn, master], [], [], 0.1)
            try:
                if conn in ready:
                    data = conn.recv(4096)
                    if not data:
                        return
                    os.write(master, data)
                if master in ready:
                    conn.sendall(os.read(master, 4096))
            except OSError:
                return
    serve(server, relay)
    yield "socket://127.0.0.1:%d" % port, workdir
    repl.kill()
    repl.wait()
    server.close()
    os.close(master)


def test_a_bare_micropython_repl_is_not_a_nanohub(home, repl_url):
    line = failed(cli("--timeout", "1", "info", port=repl_url[0]), 3)
    assert "MicroPython REPL answered" in line


def test_key_provision_writes_the_key_to_a_board_at_its_repl(home, repl_url, tmp_path):
    if shutil.which("mpremote", path=str(Path(sys.executable).parent)) is None:
        pytest.skip("mpremote is not installed")
    url, board = repl_url
    key = tmp_path / "hub.key"
    ok_json(cli("--json", "key", "init", "--out", str(key)))
    obj = ok_json(cli("--json", "--key", str(key), "key", "provision", "--hub-id", "0x5100beef",
                      port=url))
    assert (board / "hub.key").read_bytes() == key.read_bytes()
    assert Path(obj["stored"]).read_bytes() == key.read_bytes()


def test_key_provision_refuses_a_running_nanohub(emu, tmp_path):
    key = tmp_path / "hub.key"
    ok_json(cli("--json", "key", "init", "--out", str(key)))
    line = failed(cli("--key", str(key), "key", "provision", port=emu), 2)
    assert "never takes a key in the clear" in line


# ---------------------------------------------------------- exactly once --

def test_a_repeated_request_is_answered_from_the_cache_not_run_twice(emu):
    with Hub.open(emu.url) as hub:
        seq, wire = hub.build("DEPLOY", {"site": 40, "count": 2})
        acks = []
        w = hub._wait_for(lambda f: f.name == "ACK" and f["req"] == seq)
        with w:
            for _ in range(3):
                hub.send_raw(wire)
                acks.append(w.get(3.0))
        assert all(a is not None for a in acks)
        assert {(a["status"], a["detail"]) for a in acks} == {(1, 2)}
        # the ACKs came after the hub ran it: its bots are assigned by now
        def deployed():
            return [b for b in hub.bots() if b["site"] == 40 or b["state"] == "DEPLOYED"]
        wait_for(lambda: len(deployed()) >= 2, what="two bots deployed")
        assert len(deployed()) == 2
