"""Every pyserial URL kind against a real peer: a device path (the hub on a
pseudo-terminal, nanohub sim --pty), socket:// (the emulated hub's socket),
loop:// (pyserial's loopback: not a hub), and malformed or dead URLs.
Each failure is one line with exit 2 or 3; --json says it as JSON."""
import json
import os
import socket
import termios

import pytest

from _waiting import wait_for

from nanohub.host.errors import LinkError, UsageError
from nanohub.host.link import port as port_mod
from nanohub.host.link.port import open_port, port_options

from _links import env, pty_hub  # noqa: F401  (fixtures)
from _links import PtySim, cli, needs_vm, one_line


# ------------------------------------------------------ options per kind --

def test_each_url_kind_gets_only_the_options_its_handler_supports():
    assert port_options("/dev/ttyACM0", 57600) == {
        "timeout": port_mod.READ_TIMEOUT, "baudrate": 57600,
        "write_timeout": port_mod.WRITE_TIMEOUT, "exclusive": True}
    rfc = port_options("rfc2217://127.0.0.1:7000?ign_set_control", 57600)
    assert rfc["baudrate"] == 57600 and "write_timeout" not in rfc
    sock = port_options("socket://127.0.0.1:7000")
    assert "baudrate" not in sock and sock["write_timeout"] == port_mod.WRITE_TIMEOUT
    assert port_options("loop://", 9600)["baudrate"] == 9600
    assert port_options("spy:///dev/ttyACM0")["exclusive"] is True


def test_a_loop_port_opens_with_its_options_and_carries_bytes():
    p = open_port("loop://", 57600)
    try:
        assert p.baudrate == 57600 and p.write_timeout == port_mod.WRITE_TIMEOUT
        p.write(b"\0abc\0")
        assert p.read(5) == b"\0abc\0"
    finally:
        p.close()


@pytest.mark.parametrize("url", ["socket://127.0.0.1", "socket://:7000", "socket://h:port",
                                 "rfc2217://127.0.0.1", "socket://127.0.0.1:99999"])
def test_a_malformed_network_url_is_a_usage_error_before_pyserial_sees_it(url):
    with pytest.raises(UsageError, match="write it as"):
        open_port(url)


def test_a_malformed_socket_url_on_the_command_line_exits_2_in_one_line(env):
    r = cli(env, "--port", "socket://127.0.0.1", "status")
    assert r.returncode == 2
    assert "write it as socket://HOST:PORT" in one_line(r)


def test_an_unknown_url_kind_is_a_usage_error(env):
    r = cli(env, "--port", "nosuch://x", "--json", "status")
    assert r.returncode == 2
    assert json.loads(r.stdout)["error"] == "UsageError"


def test_a_bad_baud_rate_is_a_usage_error(env):
    r = cli(env, "--baud", "fast", "--port", "loop://", "status")
    assert r.returncode == 2 and "bad baud rate" in r.stderr


def test_loop_is_named_a_loopback_not_a_hub_with_exit_3(env):
    r = cli(env, "--port", "loop://", "status")
    assert r.returncode == 3
    assert "echoes what the host sends" in one_line(r)


def test_an_estop_that_cannot_reach_the_hub_says_so_and_exits_3_with_json(env):
    with socket.socket() as s:      # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        dead = "socket://127.0.0.1:%d" % s.getsockname()[1]
    r = cli(env, "--port", dead, "--json", "estop")
    assert r.returncode == 3
    out = json.loads(r.stdout)
    assert out["ok"] is False and out["exit"] == 3
    assert out["message"].startswith("EMERGENCY STOP NOT CONFIRMED")
    assert "connection refused" in one_line(r)


def test_a_spy_url_whose_log_file_cannot_be_opened_is_one_line_and_exit_3(env):
    r = cli(env, "--port", "spy://loop://?file=/nonexistent-dir/x", "status")
    assert r.returncode == 3, r.stderr
    one_line(r)


def test_a_missing_device_path_is_a_link_error():
    with pytest.raises(LinkError, match="no such port"):
        open_port("/dev/nanohub-no-such-tty")


# ---------------------------------------------------- the hub on a PTY --

@needs_vm
def test_sim_pty_prints_a_terminal_path_and_registers_itself(pty_hub, env):
    assert pty_hub.path.startswith("/dev/pts/") and os.path.exists(pty_hub.path)
    assert pty_hub.info["pty"] is True
    r = cli(env, "--json", "ports")
    assert r.returncode == 0, r.stderr
    sims = [e for e in json.loads(r.stdout)["endpoints"] if e["kind"] == "sim"]
    assert [(e["url"], e["pid"]) for e in sims] == [(pty_hub.path, pty_hub.proc.pid)]


@needs_vm
@pytest.mark.parametrize("verb", [["--json", "info"], ["status"], ["--json", "status"]])
def test_the_device_path_of_the_pty_hub_answers_every_read(pty_hub, env, verb):
    r = cli(env, "--port", pty_hub.path, *verb)
    assert r.returncode == 0, r.stderr
    if "info" in verb:
        assert json.loads(r.stdout)["board"] == "unix_tty"


@needs_vm
def test_the_baud_rate_is_set_on_a_device(pty_hub):
    p = open_port(pty_hub.path, 57600)
    try:
        speed = termios.tcgetattr(p.fileno())[4]
        assert speed == termios.B57600
    finally:
        p.close()


@needs_vm
def test_a_second_opener_of_the_held_device_is_told_it_is_busy(pty_hub, env):
    held = open_port(pty_hub.path)
    try:
        r = cli(env, "--port", pty_hub.path, "status")
    finally:
        held.close()
    assert r.returncode == 3
    assert "busy" in one_line(r)


@needs_vm
def test_the_pty_hub_watches_pulls_its_log_and_stops(pty_hub, env, tmp_path):
    w = cli(env, "--port", pty_hub.path, "watch", "--json", "--duration", "1")
    assert w.returncode == 0, w.stderr
    assert any("state" in json.loads(line) for line in w.stdout.splitlines())
    log = cli(env, "--port", pty_hub.path, "log", "pull", "-o", tmp_path / "hub.log")
    assert log.returncode == 0, log.stderr
    assert (tmp_path / "hub.log").stat().st_size > 0
    stop = cli(env, "--port", pty_hub.path, "estop")
    assert stop.returncode == 0, stop.stderr
    assert "all 8 bots confirmed disabled" in stop.stdout


@needs_vm
def test_the_emulated_hubs_socket_answers_through_socket_urls(env, monkeypatch):
    from nanohub.host.emulate.hub import EmulatedHub
    monkeypatch.setenv("NANOHUB_HOME", env["NANOHUB_HOME"])
    with EmulatedHub(bots=4, gateway=False) as emu:
        r = cli(env, "--port", emu.hub_url, "--baud", "9600", "--json", "info")
        assert r.returncode == 0, r.stderr
        assert json.loads(r.stdout)["board"] == "unix"


def test_an_exception_raised_inside_pyserial_is_classed_as_the_links():
    import serial

    from nanohub.host.cli import _from_the_link
    port = serial.serial_for_url("loop://", do_not_open=True)
    with pytest.raises(ValueError) as inside:
        port.baudrate = -1                  # pyserial's own check raises it
    assert _from_the_link(inside.value)
    with pytest.raises(ValueError) as ours:
        int("not a number")
    assert not _from_the_link(ours.value)


@needs_vm
def test_a_stopped_sim_leaves_nanohub_ports(env):
    sim = PtySim(env)
    listed = json.loads(cli(env, "--json", "ports").stdout)["endpoints"]
    assert sim.path in [e["url"] for e in listed]
    assert sim.close() == 0
    r = cli(env, "ports")
    assert r.returncode == 0 and sim.path not in r.stdout
    assert "rfc2217://HOST:PORT" in r.stdout


@needs_vm
def test_bench_links_measures_the_status_round_trip_of_a_given_url(pty_hub):
    import subprocess
    import sys
    r = subprocess.run([sys.executable, "-m", "bench.links", "--count", "20", "--json",
                        pty_hub.path], capture_output=True, text=True, timeout=60,
                       cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    assert r.returncode == 0, r.stderr
    row = json.loads(r.stdout)
    assert row["url"] == pty_hub.path and row["n"] == 20
    assert 0 < row["p50_ms"] <= row["p99_ms"] <= row["max_ms"]


CHATTY_CHILD = """
import sys
sys.stdout.buffer.write(b"x" * 1000000)
sys.stdout.flush()
sys.stdin.buffer.readline()
sys.stdout.buffer.write(b"fresh\\n")
sys.stdout.flush()
"""


def test_a_pty_nobody_opened_never_stops_the_writer_and_the_next_opener_gets_fresh_bytes():
    import subprocess
    import sys
    import time

    from nanohub.host.link.ptyport import PtyRelay
    relay = PtyRelay()
    child = subprocess.Popen([sys.executable, "-c", CHATTY_CHILD], stdin=relay.child_fd,
                             stdout=relay.child_fd)
    relay.start()
    try:
        # 1 MB is far more than a terminal buffers: a writer on a bare PTY would block
        wait_for(lambda: relay.dropped >= 1000000, 20, "the writer's 1 MB dropped")
        assert relay.dropped == 1000000 and not relay.attached
        p = open_port(relay.path)
        try:
            p.write(b"go\n")
            got = b""
            deadline = time.monotonic() + 10
            while not got.endswith(b"\n") and time.monotonic() < deadline:
                got += p.read(64)
            assert got == b"fresh\n"
        finally:
            p.close()
        assert child.wait(10) == 0
    finally:
        child.kill()
        relay.close()
