"""A real MCU serial peer: Debian's MicroPython 1.9.2 on QEMU's micro:bit
(nRF51822, Cortex-M0, 16 KB RAM), its UART on a TCP socket.

The hub cannot run there; the point is that the host copes with a real
microcontroller REPL (boot banner, raw REPL on firmware without raw-paste,
leftovers from a previous client, reconnecting) and that ``nanohub info`` and
``nanohub flash`` recognise a MicroPython board that is not running nanohub
and refuse with the precise reasons. Skips, saying why, only when
qemu-system-arm or firmware-microbit-micropython is missing
(scripts/ensure-qemu.sh installs them; ``make test`` runs it).
"""
import json
import os
import shutil
import socket
import subprocess
import sys
import time

import pytest

from _waiting import wait_for
import serial

from nanohub.host.link.port import free_port
from nanohub.host.mcu import DeviceError, Mcu

HEX = "/usr/share/firmware-microbit-micropython/firmware.hex"


def _missing():
    why = []
    if not shutil.which("qemu-system-arm"):
        why.append("qemu-system-arm")
    if not os.path.exists(HEX):
        why.append("firmware-microbit-micropython (%s)" % HEX)
    if why:
        return ("not installed: %s; run scripts/ensure-qemu.sh as root (make test does) or "
                "apt-get install qemu-system-arm firmware-microbit-micropython" % ", ".join(why))
    return None


pytestmark = pytest.mark.skipif(_missing() is not None, reason=str(_missing()))


class Microbit:
    def __init__(self, log):
        self.port = free_port()
        self.url = "socket://127.0.0.1:%d" % self.port
        self.proc = subprocess.Popen(
            ["qemu-system-arm", "-M", "microbit", "-device", "loader,file=" + HEX,
             "-nographic", "-monitor", "none",
             "-serial", "tcp:127.0.0.1:%d,server=on,wait=on" % self.port],
            stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)
        def listening():                 # wait=on: the guest starts with the first client
            if self.proc.poll() is not None:
                raise RuntimeError("QEMU exited (status %s)" % self.proc.returncode)
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.2).close()
                return True
            except OSError:
                return False
        wait_for(listening, 15, "QEMU to open its serial port")
        # That first client saw the boot banner and left; QEMU waits for the next.

    def close(self):
        if self.proc.poll() is None:
            self.proc.terminate()        # QEMU sometimes segfaults when stopped: ignore it
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


@pytest.fixture(scope="module")
def microbit(tmp_path_factory):
    log = open(tmp_path_factory.mktemp("qemu") / "qemu.log", "ab")
    board = Microbit(log)
    yield board
    board.close()
    log.close()


def cli(*args, timeout=60):
    return subprocess.run([sys.executable, "-m", "nanohub.host.cli", *map(str, args)],
                          capture_output=True, text=True, timeout=timeout)


def test_the_host_transport_copes_with_the_mcu_uart(microbit):
    # a plain client first: Ctrl-B makes the friendly REPL print its banner
    with serial.serial_for_url(microbit.url, timeout=0.1) as s:
        s.write(b"\r\x03\x02")
        seen = b""
        deadline = time.monotonic() + 5
        while b">>> " not in seen and time.monotonic() < deadline:
            seen += s.read(256)
        assert b"MicroPython v1.9.2" in seen
        s.write(b"\x05print('half a paste")      # leave the REPL in paste mode, mid-line
    with Mcu.open(microbit.url) as mcu:
        info = mcu.probe()
        assert info.version == (1, 9, 2) and info.platform == "microbit"
        assert info.mpy is None and info.fs_free is None    # 1.9.2 reports neither
        assert 0 < info.mem_free < 16 * 1024
        assert "micro:bit" in info.machine
        assert "MicroPython v1.9.2" in mcu.banner() and "micro:bit" in mcu.banner()
        assert mcu.eval("6 * 7") == 42           # raw REPL again after the banner
        with pytest.raises(DeviceError) as err:
            mcu.exec("import nanohub_nothing")
        assert "ImportError" in str(err.value)
        assert mcu.exec("print('x' * 300)").strip() == "x" * 300
    for _ in range(2):                           # reconnect: QEMU takes the next client
        with Mcu.open(microbit.url) as mcu:
            assert mcu.eval("sum(range(10))") == 45


def test_info_recognises_a_micropython_board_without_nanohub(microbit, home):
    r = cli("--port", microbit.url, "--timeout", "1.5", "info")
    assert r.returncode == 3, r.stderr
    assert "a MicroPython REPL answered on %s" % microbit.url in r.stderr
    assert "nanohub firmware is not running" in r.stderr and "Traceback" not in r.stderr


def test_flash_refuses_with_the_precise_reasons_and_writes_nothing(microbit, home, tmp_path):
    with Mcu.open(microbit.url) as mcu:
        before = mcu.eval("__import__('os').listdir()")
    key = tmp_path / "k.key"
    key.write_bytes(bytes(32))
    for extra in ((), ("--dry-run",), ("--board", "rp2", "--key", key)):
        r = cli("--port", microbit.url, "flash", *extra)
        assert r.returncode == 1, (extra, r.stderr)
        line = r.stderr.strip().splitlines()[-1]
        assert line.startswith("nanohub: cannot flash %s (MicroPython 1.9.2 on micro:bit with "
                               "nRF51822)" % microbit.url)
        assert "MicroPython 1.9.2 is too old (nanohub needs 1.22 or newer" in line
        assert "bytes of RAM free" in line and "the hub needs 98304 (96.0 KB)" in line
        if extra[:1] == ("--board",):
            assert "--board rp2 does not fit: the board says platform 'microbit'" in line
        else:
            assert "no nanohub board module for platform 'microbit'" in line
    j = cli("--port", microbit.url, "--json", "flash")
    out = json.loads(j.stdout)
    assert j.returncode == 1 and out["ok"] is False and out["exit"] == 1
    assert out["error"] == "FlashRefused" and "too old" in out["message"]
    with Mcu.open(microbit.url) as mcu:
        assert mcu.eval("__import__('os').listdir()") == before


def test_explain_says_why_nanohub_cannot_run_on_the_board(microbit):
    from nanohub.host.flash import explain
    line = explain(microbit.url)
    assert line.startswith("MicroPython 1.9.2 on micro:bit with nRF51822: nanohub cannot run")
    assert "too old" in line and "bytes of RAM free" in line
