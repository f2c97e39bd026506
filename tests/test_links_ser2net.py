"""Debian's ser2net in front of the hub's pseudo-terminal (nanohub sim --pty),
as RFC 2217 (rfc2217://) and as raw TCP (socket://): every verb a user runs
first exits 0 through both, a busy port says so, and nanohub flash writes a
MicroPython board behind ser2net's RFC 2217 and hands over to the hub."""
import json
import os
import subprocess
import termios

import pytest

from nanohub.host import vm
from nanohub.host.link.port import open_port
from nanohub.host.link.ptyport import PtyRelay
from nanohub.host.link.ser2net import Ser2net, config_text

from _links import env, pty_hub  # noqa: F401  (fixtures)
from _links import cli, needs_ser2net, needs_vm, one_line

pytestmark = [needs_vm, needs_ser2net]


@pytest.fixture(scope="module")
def served(pty_hub):
    """The hub on a PTY, and ser2net serving that PTY on two loopback ports."""
    with Ser2net(pty_hub.path) as s2n:
        yield pty_hub, s2n


@pytest.fixture(params=["rfc2217", "raw"])
def url(request, served):
    _, s2n = served
    return s2n.rfc2217_url if request.param == "rfc2217" else s2n.raw_url


def test_the_configuration_is_ser2net_4_yaml_with_chardelay_and_nagle_off():
    text = config_text("/dev/pts/9", 7001, 7002)
    assert "accepter: tcp(nodelay),127.0.0.1,7001" in text
    assert "accepter: telnet(rfc2217),tcp(nodelay),127.0.0.1,7002" in text
    assert text.count("connector: serialdev,/dev/pts/9,115200n81,local") == 2
    assert text.count("chardelay: false") == 2


@pytest.mark.parametrize("verb", [["--json", "info"], ["status"]])
def test_info_and_status_exit_0_through_ser2net(env, url, verb):
    r = cli(env, "--port", url, *verb)
    assert r.returncode == 0, r.stderr
    if "info" in verb:
        assert json.loads(r.stdout)["board"] == "unix_tty"
    else:
        assert r.stdout.startswith("state ")


def test_watch_json_streams_telemetry_through_ser2net(env, url):
    r = cli(env, "--port", url, "watch", "--json", "--duration", "1")
    assert r.returncode == 0, r.stderr
    lines = [json.loads(line) for line in r.stdout.splitlines()]
    assert lines and any("state" in line for line in lines)


def test_log_pull_exits_0_through_ser2net(env, url, tmp_path):
    out = tmp_path / "hub.log"
    r = cli(env, "--port", url, "--json", "log", "pull", "-o", out)
    assert r.returncode == 0, r.stderr
    assert out.stat().st_size > 0 and json.loads(r.stdout)["ok"] is True


def test_estop_confirms_every_bot_through_ser2net(env, url):
    r = cli(env, "--port", url, "--json", "estop")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["ok"] is True and out["confirmed"] == out["total"] == 8


def test_the_baud_rate_reaches_the_device_through_rfc2217(served):
    sim, s2n = served
    held = open_port(s2n.rfc2217_url, 57600)
    try:
        fd = os.open(sim.path, os.O_RDONLY | os.O_NOCTTY | os.O_NONBLOCK)
        try:
            speed = termios.tcgetattr(fd)[4]
        finally:
            os.close(fd)
    finally:
        held.close()
    assert speed == termios.B57600          # without --baud pyserial would ask for 9600


@pytest.mark.parametrize("holder", ["rfc2217", "raw"])
def test_a_port_ser2net_gives_to_another_client_reads_port_in_use(env, served, url, holder):
    _, s2n = served
    held = open_port(s2n.rfc2217_url if holder == "rfc2217" else s2n.raw_url)
    try:
        r = cli(env, "--port", url, "status")
    finally:
        held.close()
    assert r.returncode == 3
    line = one_line(r)
    assert "port in use by another program" in line and "cable" not in line


# ------------------------------------------------ flash through RFC 2217 --

@pytest.fixture
def repl_behind_ser2net(tmp_path):
    """A bare MicroPython REPL (the unix port) on a PTY, served by ser2net."""
    dev = tmp_path / "dev"
    dev.mkdir()
    relay = PtyRelay()
    env = dict(os.environ)
    env.pop("MICROPYPATH", None)
    with open(tmp_path / "vm.log", "wb") as log:
        proc = subprocess.Popen([vm.find_micropython()], stdin=relay.child_fd,
                                stdout=relay.child_fd, stderr=log, cwd=dev, env=env,
                                start_new_session=True)
    relay.start()
    try:
        with Ser2net(relay.path) as s2n:
            yield dev, s2n
    finally:
        proc.kill()
        proc.wait()
        relay.close()


def test_flash_through_rfc2217_writes_the_board_and_the_hub_answers(env, repl_behind_ser2net,
                                                                   tmp_path):
    dev, s2n = repl_behind_ser2net
    key = tmp_path / "k.key"
    key.write_bytes(bytes(range(32)))
    r = cli(env, "--port", s2n.rfc2217_url, "--json", "--key", key, "flash", "--hub-id",
            "0x5100cafe", "--bots", "4", timeout=240)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["hub"]["hub_id"] == "0x5100cafe" and out["hub"]["board"] == "unix_tty"
    assert (dev / "nanohub" / "hub.key").read_bytes() == bytes(range(32))
    # the REPL session was closed cleanly: the hub now answers on the same ser2net port
    for url in (s2n.rfc2217_url, s2n.raw_url):
        info = cli(env, "--port", url, "--json", "info")
        assert info.returncode == 0, info.stderr
        assert json.loads(info.stdout)["hub_id"] == "0x5100cafe"


def test_pyserials_rfc2217_write_timeout_refusal_is_classed_as_the_links(served):
    import serial

    from nanohub.host.cli import _from_the_link
    _, s2n = served
    with pytest.raises(NotImplementedError) as refused:
        serial.serial_for_url(s2n.rfc2217_url, baudrate=115200, write_timeout=2.0)
    assert _from_the_link(refused.value)    # what once ended nanohub with exit 70
