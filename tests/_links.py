"""Shared by the tests/test_links_*.py files: the CLI in a subprocess, and the
hub on a pseudo-terminal started the way a user starts it (nanohub sim --pty)."""
import json
import os
import select
import signal
import subprocess
import sys
import time

import pytest

from _cli import one_line  # noqa: F401  (the links tests take it from here)
from nanohub.host.link.ser2net import find_ser2net


needs_vm = pytest.mark.vm           # skipped where the VM is missing (tests/conftest.py)
needs_ser2net = pytest.mark.skipif(
    find_ser2net() is None,
    reason="ser2net is not installed and could not be (scripts/ensure-ser2net.sh needs root "
           "and apt-get): the RFC 2217 and ser2net raw TCP tests did not run")


def cli_env(base):
    env = dict(os.environ, NANOHUB_HOME=str(base / "home"),
               NANOHUB_RUNTIME_DIR=str(base / "run"))
    env.pop("NANOHUB_PORT", None)
    env.pop("NANOHUB_KEY", None)
    return env


def cli(env, *args, timeout=60):
    return subprocess.run([sys.executable, "-m", "nanohub.host.cli", *map(str, args)],
                          capture_output=True, text=True, timeout=timeout, env=env)


class PtySim:
    """``nanohub sim --pty --json`` in a subprocess; ready once it printed its
    JSON line (it prints after the hub answered on its pseudo-terminal)."""

    def __init__(self, env, *extra, timeout=60):
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "nanohub.host.cli", "sim", "--pty", "--json", "--bots", "8",
             *extra], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
            start_new_session=True)
        line = b""
        deadline = time.monotonic() + timeout
        while not line.endswith(b"\n"):
            left = deadline - time.monotonic()
            if left <= 0 or self.proc.poll() is not None:
                err = self.proc.stderr.read() if self.proc.poll() is not None else b""
                self.close()
                raise RuntimeError("nanohub sim --pty did not start: %r %r" % (line, err))
            if select.select([self.proc.stdout], [], [], min(left, 0.5))[0]:
                chunk = os.read(self.proc.stdout.fileno(), 4096)
                if not chunk:
                    continue
                line += chunk
        self.info = json.loads(line)
        self.path = self.info["url"]

    def close(self):
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGINT)     # Ctrl-C, as a user stops it
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        return self.proc.returncode


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    """The CLI's environment for one test module (its own home and runtime directory)."""
    return cli_env(tmp_path_factory.mktemp("links"))


@pytest.fixture(scope="module")
def pty_hub(env):
    """The hub on a pseudo-terminal for one test module; stopped as a user stops
    it, it must exit 0."""
    sim = PtySim(env)
    yield sim
    assert sim.close() == 0
