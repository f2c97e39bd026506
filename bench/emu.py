"""The emulated hub as the benches need it: an isolated key store, a tap on
the bot bus, and firmware loaded from compiled ``.mpy`` files."""
import contextlib
import os
import shutil
import tempfile
import threading
from pathlib import Path

from nanohub.host import vm
from nanohub.host.emulate.hub import EmulatedHub
from nanohub.host.emulate.pace import Pacer
from nanohub.protocol import codec, schema

OP_DISABLE = schema.enum_value("OP", "DISABLE")
BOT_DISABLED = schema.enum_value("BOT", "DISABLED")


@contextlib.contextmanager
def isolated_home():
    """Keys and counters the benches create go to a temporary NANOHUB_HOME."""
    old = os.environ.get("NANOHUB_HOME")
    home = tempfile.mkdtemp(prefix="nanohub-bench-home-")
    os.environ["NANOHUB_HOME"] = home
    try:
        yield Path(home)
    finally:
        if old is None:
            os.environ.pop("NANOHUB_HOME", None)
        else:
            os.environ["NANOHUB_HOME"] = old
        shutil.rmtree(home, ignore_errors=True)


class BusWatch:
    """Timestamps what crosses the bot bus (a ``Pacer`` tap, no pacing).

    ``up`` is hub to swarm (BOT_CMDS), ``down`` swarm to hub (BOT_REPORTS).
    """

    def __init__(self, bots):
        self.n = bots
        self.lock = threading.Lock()
        self._up = codec.StreamDecoder()
        self._down = codec.StreamDecoder()
        self.disables = []        # (t, bots named by a DISABLE, or None for all)
        self.confirms = []        # (t, bots reporting DISABLED)

    def __call__(self, way, data, t):
        if way == "up":
            for f in self._up.feed(data):
                if isinstance(f, codec.CodecError) or f.name != "BOT_CMDS":
                    continue
                bots = [r["bot"] for r in f.records if r["op"] == OP_DISABLE]
                if bots:
                    whole = schema.ADDR_ALL in bots
                    with self.lock:
                        self.disables.append((t, None if whole else bots))
        else:
            for f in self._down.feed(data):
                if isinstance(f, codec.CodecError) or f.name != "BOT_REPORTS":
                    continue
                first = f["first"]
                bots = [first + k for k, r in enumerate(f.records) if r["state"] == BOT_DISABLED]
                if bots:
                    with self.lock:
                        self.confirms.append((t, bots))

    def all_disabled(self, since):
        """When DISABLE had been sent to every bot, counting from ``since``."""
        return self._cover(self.disables, since)

    def all_confirmed(self, since):
        """When every bot had reported DISABLED, counting from ``since``."""
        return self._cover(self.confirms, since)

    def _cover(self, events, since):
        with self.lock:
            evs = [e for e in events if e[0] >= since]
        seen = set()
        for t, bots in evs:
            if bots is None:
                return t
            seen.update(bots)
            if len(seen) >= self.n:
                return t
        return None


class BenchHub(EmulatedHub):
    """EmulatedHub plus: a tap between hub and gateway (``watch``), and the
    firmware from a directory of compiled ``.mpy`` files (``mpy_dir``)."""

    def __init__(self, *a, mpy_dir=None, tap=True, **kw):
        super().__init__(*a, **kw)
        self.mpy_dir = Path(mpy_dir) if mpy_dir else None
        self.watch = BusWatch(self.bots) if tap else None
        self._bus_tap = None

    def _start_gateway(self):
        super()._start_gateway()
        if self.watch is not None and self.bus_port:
            if self._bus_tap is not None:
                self._bus_tap.close()
            self._bus_tap = Pacer("127.0.0.1:%d" % self.bus_port, baud=None,
                                  tap=self.watch).start()
            self.bus_port = self._bus_tap.port

    def _start_hub(self, main):
        if self.mpy_dir is None:
            return super()._start_hub(main)
        shutil.copy(vm.firmware_dir() / "main.py", self.mpy_dir / "main.py")
        args = [self.mpy_dir / "main.py", "--board", "unix",
                "--host", "127.0.0.1:%d" % self.host_port, "--store", self.store,
                "--bots", self.bots, "--hub-id", self.hub_id]
        if self.bus_port:
            args[5:5] = ["--bus", "127.0.0.1:%d" % self.bus_port]
        argv, env = vm.vm_command(args, heap=self.heap, path=[self.mpy_dir])
        self.hub = self._spawn(argv, "hub", env=env)
        return self._wait_listening()

    def close(self):
        super().close()
        if self._bus_tap is not None:
            self._bus_tap.close()
            self._bus_tap = None

    def hub_log(self):
        try:
            return (self.store / "hub.log").read_text(errors="replace")
        except (OSError, TypeError):
            return ""


def compile_firmware(dst):
    """Compile firmware/ to ``.mpy`` under ``dst``; returns (dst, total .mpy bytes)."""
    outs = vm.compile_tree(vm.firmware_dir(), dst)
    return Path(dst), sum(p.stat().st_size for p in outs)
