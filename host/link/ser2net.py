"""Debian's ser2net in front of a serial device, run in the foreground.

    with Ser2net("/dev/pts/3") as s:
        s.raw_url       # socket://127.0.0.1:PORT   (raw TCP)
        s.rfc2217_url   # rfc2217://127.0.0.1:PORT?ign_set_control

The configuration is the ser2net 4.x YAML one, written to a private file:
one connection per accepter, each opening the device at 115200n81 with
``local`` (no modem lines) and ``chardelay: false`` (with its default
character delay every request took 4-5x longer), and ``tcp(nodelay)`` (or a
reply queued behind unacknowledged telemetry waits for a delayed ACK, up to
40 ms). ``?ign_set_control`` lets
pyserial past the DTR/RTS requests ser2net does not confirm on a PTY. ser2net
serves the device to one client at a time; others get "Port already in use".
"""
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from ..errors import LinkError
from .port import free_port

CONFIG = """connection: &{name}
  accepter: {accepter},127.0.0.1,{port}
  connector: serialdev,{device},{baud}n81,local
  options:
    chardelay: {chardelay}
"""


def find_ser2net():
    """Path of the ser2net program, or None (Debian installs it in /usr/sbin)."""
    return shutil.which("ser2net") or shutil.which("ser2net", path="/usr/sbin:/usr/local/sbin")


def config_text(device, raw_port=None, rfc2217_port=None, baud=115200, chardelay=False):
    """The YAML that serves ``device`` as raw TCP and/or RFC 2217 on loopback.

    ``chardelay=True`` keeps ser2net's default: it waits a few character
    times for more bytes before it sends what it has (for comparison only).
    """
    flag = "true" if chardelay else "false"
    parts = []
    if raw_port:
        parts.append(CONFIG.format(name="raw", accepter="tcp(nodelay)", port=raw_port,
                                   device=device, baud=baud, chardelay=flag))
    if rfc2217_port:
        parts.append(CONFIG.format(name="rfc2217", accepter="telnet(rfc2217),tcp(nodelay)",
                                   port=rfc2217_port, device=device, baud=baud, chardelay=flag))
    return "\n".join(parts)


class Ser2net:
    """ser2net serving ``device`` on two loopback ports while the context lasts."""

    def __init__(self, device, baud=115200, start_timeout=10.0, chardelay=False):
        self.device, self.baud, self.start_timeout = device, baud, start_timeout
        self.chardelay = chardelay
        self.raw_port = self.rfc2217_port = None
        self.proc = None
        self.dir = None

    @property
    def raw_url(self):
        return "socket://127.0.0.1:%d" % self.raw_port

    @property
    def rfc2217_url(self):
        return "rfc2217://127.0.0.1:%d?ign_set_control" % self.rfc2217_port

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.close()

    def start(self):
        exe = find_ser2net()
        if exe is None:
            raise LinkError("ser2net is not installed (Debian: apt-get install ser2net)")
        self.dir = Path(tempfile.mkdtemp(prefix="nanohub-ser2net-"))
        self.raw_port, self.rfc2217_port = free_port(), free_port()
        config = self.dir / "ser2net.yaml"
        config.write_text(config_text(self.device, self.raw_port, self.rfc2217_port, self.baud,
                                      self.chardelay))
        log = open(self.dir / "ser2net.log", "wb")
        # -n: foreground; -u: no UUCP lock files; -P: a private pid file
        self.proc = subprocess.Popen([exe, "-n", "-u", "-c", str(config), "-P",
                                      str(self.dir / "ser2net.pid")],
                                     stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                     start_new_session=True)
        log.close()
        try:
            self._wait_ready()
        except BaseException:
            self.close()
            raise
        return self

    def _wait_ready(self):
        """Both accepters listen (a connect is refused until then)."""
        deadline = time.monotonic() + self.start_timeout
        pending = [self.raw_port, self.rfc2217_port]
        while pending:
            if self.proc.poll() is not None:
                raise LinkError("ser2net exited with status %s: %s" % (
                    self.proc.returncode, self.log_tail()))
            if time.monotonic() > deadline:
                raise LinkError("ser2net did not listen within %.0f s: %s" % (
                    self.start_timeout, self.log_tail()))
            if _listening(pending[0]):
                pending.pop(0)
            else:
                time.sleep(0.02)

    def log_tail(self):
        try:
            lines = (self.dir / "ser2net.log").read_text(errors="replace").strip().splitlines()
        except OSError:
            return "(no log)"
        return " / ".join(lines[-3:]) or "(empty log)"

    def close(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(3)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.dir is not None:
            shutil.rmtree(self.dir, ignore_errors=True)
            self.dir = None


def _listening(port):
    """True when something listens on the loopback port. Read from the kernel's
    table, not by connecting: ser2net opens its device for each connection and
    would refuse the next client while it lets that one go."""
    want = ":%04X" % port
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                rows = f.read().splitlines()[1:]
        except OSError:
            continue
        for row in rows:
            cols = row.split()
            if len(cols) > 3 and cols[1].endswith(want) and cols[3] == "0A":     # LISTEN
                return True
    return False


__all__ = ["Ser2net", "config_text", "find_ser2net"]
