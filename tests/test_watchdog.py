"""The SITL watchdog: a hung loop is killed, and the hub boots SAFE saying why.

The firmware on the MicroPython VM really hangs (a test hook makes its loop
spin forever); the unix board's watchdog thread notices the missing feeds,
records the reset cause and kills the process, as a hardware watchdog resets
a board. The next boot logs the watchdog reset and never resumes treatment.
"""
import subprocess
import time

from _waiting import wait_for
from nanohub.host import vm
from nanohub.host.client import Hub
from nanohub.host.link.port import free_port
from nanohub.protocol import schema
from nanohub.host.simport import HEAP


def _start(store, port, *extra):
    argv, env = vm.vm_command([str(vm.firmware_dir() / "main.py"), "--board", "unix",
                               "--host", "127.0.0.1:%d" % port, "--store", str(store),
                               "--bots", "4", *extra], heap=HEAP)
    return subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def _hello(port, deadline=10.0):
    """A connection to the hub on ``port`` once it listens."""
    def connect():
        try:
            return Hub.open("socket://127.0.0.1:%d" % port, timeout=1.0)
        except Exception as e:
            last[0] = e
            return None
    last = [None]
    try:
        return wait_for(connect, deadline, "the hub on port %d" % port, interval=0.1)
    except AssertionError:
        if last[0] is None:
            raise
        raise last[0]


def test_a_hung_loop_is_reset_by_the_watchdog_and_boots_safe_with_the_cause(tmp_path):
    port = free_port()
    p = _start(tmp_path, port, "--hang-after-ms", "1500")
    try:
        rc = p.wait(timeout=15)
    finally:
        p.kill()
    assert rc == -9, "the watchdog kills the hung process (exit %s)" % rc
    assert (tmp_path / "reset.cause").read_bytes() == b"watchdog"
    p = _start(tmp_path, port)
    try:
        with _hello(port) as hub:
            assert hub.info["reset_cause"] == schema.enum_value("RESET", "WATCHDOG")
            assert hub.info["state"] == schema.enum_value("HUB", "SAFE")
            st = hub.status()
            assert st["state"] == "SAFE"
            codes = {a["code"] for a in hub.alarms()}
            assert "WATCHDOG" in codes or schema.enum_value("ALARM", "WATCHDOG") in codes
    finally:
        p.kill()
        p.wait()
    assert not (tmp_path / "reset.cause").exists(), "the cause is consumed by the boot that reports it"


def test_a_healthy_loop_keeps_feeding_the_watchdog(tmp_path):
    port = free_port()
    p = _start(tmp_path, port)
    try:
        with _hello(port) as hub:
            time.sleep(3.0)                 # the thing under test: longer than the 2 s watchdog period
            assert hub.status()["state"] == "SAFE"
        assert p.poll() is None
    finally:
        p.kill()
        p.wait()
    assert not (tmp_path / "reset.cause").exists()
