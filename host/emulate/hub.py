"""An emulated hub: the real firmware on the MicroPython VM plus the swarm gateway.

    with EmulatedHub(bots=16, scenario="nominal", seed=1) as emu:
        with Hub.open(emu.url) as hub:
            hub.status()

The launcher creates a store directory holding a development key
(``hub.key``), installs the same key in the host key store for the hub id it
assigns, starts ``python -m nanohub.sim.gateway`` (when it exists) and then
``firmware/main.py`` on the VM, and waits until the hub's host port accepts a
connection. Children run in their own process groups, die with the launcher
(PR_SET_PDEATHSIG on Linux) and are killed on exit, SIGINT and SIGTERM.
"""
import atexit
import ctypes
import importlib.util
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from .. import keys
from ..errors import LinkError, UsageError
from ..link.port import free_port
from ..simport import HEAP

START_TIMEOUT = 20.0
_PR_SET_PDEATHSIG = 1
_LIVE = set()


def _cleanup_all():
    for emu in list(_LIVE):
        emu.close()


atexit.register(_cleanup_all)


def _random_hub_id():
    return (0x51 << 24) | random.getrandbits(24)      # 0x51xxxxxx: emulated hubs


def _prctl():
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None


def _child_setup(parent, prctl):
    """In the child before exec: own process group, die with the launcher.

    PR_SET_PDEATHSIG fires when the launcher *thread* that spawned the child
    ends: start an EmulatedHub from a thread that outlives it (the main one).
    """
    os.setpgrp()
    if prctl is not None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent:    # the launcher died before prctl took effect
        os._exit(1)


def _kill(proc, grace=2.0):
    if proc is None or proc.poll() is not None:
        return
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, grace)):
        try:
            os.killpg(proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            return
        try:
            proc.wait(wait)
            return
        except subprocess.TimeoutExpired:
            continue


def _tail(path, lines=15):
    try:
        text = Path(path).read_text(errors="replace").strip().splitlines()
    except OSError:
        return ""
    return "\n".join(text[-lines:])


class EmulatedHub:
    """Firmware on the MicroPython VM and the swarm gateway, as one context manager."""

    def __init__(self, bots=16, scenario="nominal", seed=1, heap=HEAP, speed=1.0, firmware=None,
                 store=None, hub_id=None, gateway=True, trace=None, start_timeout=START_TIMEOUT,
                 pty=False):
        if not 1 <= int(bots) <= 255:
            raise UsageError("--bots must be 1..255, got %s" % bots)
        self.bots, self.scenario, self.seed = int(bots), scenario, int(seed)
        self.heap, self.speed = heap, float(speed)
        self.firmware = firmware    # a firmware tree (e.g. compiled .mpy); default: the source
        self._random_id = hub_id is None
        self.hub_id = _random_hub_id() if hub_id is None else int(hub_id)
        self.use_gateway = gateway
        self.trace = trace
        self.start_timeout = start_timeout
        self._own_store = store is None
        self.store = Path(store) if store else None
        self.pty = bool(pty)       # the unix_tty board on a pseudo-terminal, not a socket
        self.relay = None
        self.hub = self.gateway = None
        self.host_port = self.bus_port = self.proxy_port = None
        self.notes = []
        self._installed_key = False
        self._closed = False

    # ----------------------------------------------------------- life --

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.close()

    @property
    def url(self):
        """Where the host connects: the gateway's relay of the host link when it
        runs (so host-link-loss scenarios can cut it), else the hub itself; with
        ``pty`` the pseudo-terminal's path."""
        if self.relay is not None:
            return self.relay.path
        return "socket://127.0.0.1:%d" % (self.proxy_port or self.host_port)

    @property
    def hub_url(self):
        if self.relay is not None:
            return self.relay.path
        return "socket://127.0.0.1:%d" % self.host_port

    @property
    def key_path(self):
        return self.store / "hub.key"

    @property
    def pids(self):
        return {name: p.pid for name, p in (("hub", self.hub), ("gateway", self.gateway)) if p}

    def describe(self):
        return {"url": self.url, "hub_url": self.hub_url, "pty": self.pty,
                "key": str(self.key_path),
                "hub_id": "0x%08x" % self.hub_id,
                "store": str(self.store), "bus": self.bus_port, "pids": self.pids,
                "bots": self.bots, "scenario": self.scenario, "seed": self.seed,
                "heap": self.heap, "speed": self.speed, "notes": self.notes}

    def start(self):
        from .. import vm
        try:
            main = self._firmware() / "main.py"
            vm.find_micropython()       # fail early, with the install hint
        except (vm.VMNotFound, FileNotFoundError) as e:
            raise LinkError("cannot start the emulated hub: %s" % e) from None
        if not main.exists():
            raise LinkError("cannot start the emulated hub: %s does not exist yet" % main)
        _LIVE.add(self)
        try:
            self._prepare_store()
            for attempt in range(3):    # a free port may be taken before the VM binds it
                self.host_port = free_port()
                if self.use_gateway:
                    self._start_gateway()
                if self._start_hub(main):
                    return self
                if self.hub.poll() is None or attempt == 2:
                    break
                _kill(self.gateway)
            problem = self.alive()
            where = ("answering on its pseudo-terminal" if self.pty
                     else "listening on 127.0.0.1:%d" % self.host_port)
            raise LinkError("the emulated hub did not start %s within "
                            "%.0f s%s" % (where, self.start_timeout,
                                          ": " + problem if problem else ""))
        except BaseException:
            self.close()
            raise

    def _firmware(self):
        from .. import vm
        return Path(self.firmware) if self.firmware else vm.firmware_dir()

    def close(self):
        if self._closed:
            return
        self._closed = True
        _LIVE.discard(self)
        _kill(self.hub)
        _kill(self.gateway)
        if self.relay is not None:
            self.relay.close()
        if self._installed_key:         # the store's hub.key stays the truth
            keys.remove_key(self.hub_id)
        if self._own_store and self.store is not None:
            shutil.rmtree(self.store, ignore_errors=True)

    def alive(self):
        """None while every child runs, else one line saying which one stopped and why."""
        for name, proc in (("hub", self.hub), ("gateway", self.gateway)):
            if proc is not None and proc.poll() is not None:
                last = _tail(self.store / ("%s.log" % name), 1)
                return "the emulated %s exited with status %s%s" % (
                    name, proc.returncode, ": " + last if last else "")
        return None

    # ------------------------------------------------------- children --

    def _prepare_store(self):
        if self.store is None:
            self.store = Path(tempfile.mkdtemp(prefix="nanohub-sim-"))
        self.store.mkdir(parents=True, exist_ok=True)
        if not self.key_path.exists():
            keys.write_private(self.key_path, keys.new_key())
        key = keys.load_key(self.key_path)
        while keys.key_path(self.hub_id).exists():
            if keys.load_key(keys.key_path(self.hub_id)) == key:
                return                  # already installed (a kept store): leave it
            if not self._random_id:     # never overwrite another hub's key
                raise UsageError("the key store already holds another key for hub 0x%08x: "
                                 "choose another --hub-id" % self.hub_id)
            self.hub_id = _random_hub_id()
        keys.save_key(self.hub_id, key)
        keys.counter_path(self.hub_id).unlink(missing_ok=True)
        self._installed_key = True

    def _spawn(self, argv, name, env=None, stdout=None, stdin=subprocess.DEVNULL):
        log = open(self.store / ("%s.log" % name), "ab")
        setup = (lambda parent=os.getpid(), prctl=_prctl(): _child_setup(parent, prctl))
        try:
            return subprocess.Popen(
                argv, env=env, cwd=self.store, stdin=stdin,
                stdout=stdout if stdout is not None else log, stderr=log,
                preexec_fn=setup)
        finally:
            log.close()

    def _start_gateway(self):
        if importlib.util.find_spec("nanohub.sim.gateway") is None:
            self.notes.append("no swarm gateway (nanohub.sim.gateway missing): hub runs without a bus")
            return
        try:
            from nanohub.sim.scenario import ScenarioError, load
        except ImportError:
            pass
        else:
            try:
                load(self.scenario)
            except ScenarioError as e:
                raise UsageError(str(e)) from None
        argv = [sys.executable, "-m", "nanohub.sim.gateway", "--listen", "127.0.0.1:0",
                "--scenario", _scenario_arg(self.scenario), "--seed", str(self.seed),
                "--bots", str(self.bots), "--speed", str(self.speed)]
        if not self.pty:        # relay the socket host link (host-link-loss scenarios cut it)
            argv += ["--hub-host", "127.0.0.1:%d" % self.host_port, "--host-proxy", "127.0.0.1:0"]
        if self.trace:
            argv += ["--trace", str(self.trace)]
        proc = self.gateway = self._spawn(argv, "gateway", stdout=subprocess.PIPE)
        first = {}

        def read_first():
            first["line"] = proc.stdout.readline()
            with open(self.store / "gateway.log", "ab") as log:
                for rest in proc.stdout:   # keep draining so it never blocks
                    log.write(rest)
                    log.flush()
        threading.Thread(target=read_first, daemon=True).start()
        deadline = time.monotonic() + self.start_timeout
        while "line" not in first and time.monotonic() < deadline:
            if proc.poll() is not None:
                time.sleep(0.1)
                break
            time.sleep(0.02)
        try:
            ports = json.loads(first.get("line") or b"{}")
            self.bus_port = int(ports["bus"])
            self.proxy_port = int(ports["host"]) if ports.get("host") else None
        except (ValueError, KeyError, TypeError):
            raise LinkError("the swarm gateway did not start: %s" % (
                self.alive() or "it printed no {\"bus\": PORT} line")) from None

    def _start_hub(self, main):
        from .. import vm
        if self.pty:
            return self._start_pty_hub(main)
        args = [main, "--board", "unix", "--host", "127.0.0.1:%d" % self.host_port,
                "--store", self.store, "--bots", self.bots, "--hub-id", self.hub_id]
        if self.bus_port:
            args[5:5] = ["--bus", "127.0.0.1:%d" % self.bus_port]
        argv, env = vm.vm_command(args, heap=self.heap, path=[self._firmware()])
        self.hub = self._spawn(argv, "hub", env=env)
        return self._wait_listening()

    def _start_pty_hub(self, main):
        """The unix_tty board: the hub's console is a terminal, relayed to a PTY."""
        from .. import vm
        from ..link.ptyport import PtyRelay
        args = [main, "--board", "unix_tty", "--store", self.store, "--bots", self.bots,
                "--hub-id", self.hub_id]
        if self.bus_port:
            args += ["--bus", "127.0.0.1:%d" % self.bus_port]
        argv, env = vm.vm_command(args, heap=self.heap, path=[self._firmware()])
        if self.relay is not None:
            self.relay.close()
        self.relay = PtyRelay()
        self.hub = self._spawn(argv, "hub", env=env, stdin=self.relay.child_fd,
                               stdout=self.relay.child_fd)
        self.relay.start()
        return self._wait_answering()

    def _wait_answering(self):
        """Ready when the hub answers HELLO on its PTY (a terminal has no listen state)."""
        from ..errors import NanohubError
        from ..link.session import Link

        def answers():
            try:
                Link.open(self.url, timeout=1.0, retries=2, heartbeat=False).close()
                return True
            except NanohubError:
                return False
        return self._wait_until(answers)

    def _wait_listening(self):
        def listens():
            try:
                with socket.create_connection(("127.0.0.1", self.host_port), timeout=0.5):
                    return True
            except OSError:
                return False
        return self._wait_until(listens)

    def _wait_until(self, ready):
        """True once ``ready()`` is, False when the hub exits or ``start_timeout`` passes."""
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self.hub.poll() is not None:
                return False
            if ready():
                return True
            time.sleep(0.05)
        return False


def from_port(url, **settings):
    """Start the emulated hub a ``sim`` port URL asks for (``sim`` or
    ``sim:bots=8,scenario=S,seed=N``) and return it, running: the caller
    closes it. ``settings`` are further EmulatedHub arguments; a bad URL is
    a UsageError that names the bad part."""
    from ..simport import url_options
    try:
        options = url_options(url)
    except ValueError as e:
        raise UsageError("bad --port %r: %s" % (url, e)) from None
    return EmulatedHub(**dict(settings, **options)).start()


def _scenario_arg(scenario):
    """A scenario file as an absolute path: the gateway runs in the hub's store."""
    text = str(scenario)
    return os.path.abspath(text) if os.path.isfile(text) else text
