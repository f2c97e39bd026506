"""Flash the nanohub firmware to a MicroPython board (``nanohub flash``).

1. Find the REPL on the port (or a nanohub already running there) and read
   the board: MicroPython version, ``.mpy`` bytecode version, platform, free
   RAM and filesystem (:mod:`nanohub.host.mcu`).
2. Refuse, in one line naming every problem, when MicroPython is older than
   1.22, the bytecode has no matching mpy-cross here, RAM or filesystem is
   too small (saying how much is needed), or no board module fits.
3. Compile ``firmware/`` to ``.mpy`` with mpy-cross and copy the modules the
   board needs; remove stale ``hub/`` and ``boards/`` modules (a stale ``.py``
   would shadow its ``.mpy``); provision ``hub.key``; write ``board.py`` (the
   board module's name) and ``main.py``.
4. Start the hub: reset the board (the unix port behind a PTY: ``import main``,
   since a reset ends the process) and wait for the nanohub handshake.

Nothing is written before every check passes. The hub id is kept in the
hub's state once it has booted: a board that already has one keeps it.

RAM budget: the hub with 16 bots allocates about 85 KB on the 64-bit unix
VM from the built ``.mpy`` (8-byte words; it does not start below a 105 KB
heap there). A 32-bit MCU needs roughly 60 % of that: boards must show 96 KB
free, the unix port 128 KB. Filesystem: the modules (each rounded up to whole
blocks) plus 56 KB for the store (8 audit segments of 256 records of 24 B,
state, params).
"""
import ast
import functools
import random
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from . import keys
from .errors import LinkError, NanohubError, UsageError

MIN_VERSION = (1, 22)
STORE_RESERVE = 56 * 1024
DEFAULT_BLOCK = 4096
BOTS = 16


class FlashRefused(NanohubError):
    """The board cannot take (or is not ready for) the firmware; nothing was written."""

    exit_code = 1


@functools.lru_cache(maxsize=None)
def board_facts(module):
    """What ``firmware/boards/<module>.py`` says of itself: (its ``STORE``, the
    hub's directory on the device; the other board modules it needs, in load
    order; the ``arch`` its Board class declares for mpy-cross ``-march``, or
    None). Read from the source: board modules import MicroPython-only ones."""
    from . import vm
    boards = vm.firmware_dir() / "boards"
    tree = ast.parse((boards / (module + ".py")).read_text())
    store = arch = None
    needs = []
    for node in ast.walk(tree):
        if (isinstance(node, ast.Assign) and len(node.targets) == 1
                and isinstance(node.targets[0], ast.Name) and node.targets[0].id == "arch"
                and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)):
            arch = node.value.value
    for node in tree.body:
        if (isinstance(node, ast.Assign) and len(node.targets) == 1
                and isinstance(node.targets[0], ast.Name) and node.targets[0].id == "STORE"):
            store = ast.literal_eval(node.value)
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("boards"):
            names = ([node.module[len("boards."):]] if node.module != "boards"
                     else [a.name for a in node.names])
            for name in names:
                for dep in board_facts(name)[1] + (name,):
                    if dep not in needs:
                        needs.append(dep)
    return store, tuple(needs), arch


@dataclass(frozen=True)
class Target:
    name: str              # --board value
    module: str            # firmware/boards/<module>.py
    platforms: tuple       # sys.platform values that mean this target
    ram: int               # free heap needed, bytes
    window_ms: int         # main.py's boot escape (three Ctrl-C) before the hub starts
    start: str             # "reset" the board, or "run" main (unix port: a reset ends it)
    title: str

    @property
    def store(self):
        """The hub's store directory on the device (the board module's STORE)."""
        return board_facts(self.module)[0]

    @property
    def needs(self):
        """The board modules to copy besides the target's own."""
        return board_facts(self.module)[1]


TARGETS = {
    "rp2": Target("rp2", "rp2", ("rp2",), 96 * 1024, 1000, "reset",
                  "Raspberry Pi RP2040/RP2350 boards (rp2 port)"),
    "stm32": Target("stm32", "stm32", ("pyboard",), 96 * 1024, 1000, "reset",
                    "STM32 boards (stm32 port: pyboard, STM32F4DISC, Nucleo)"),
    "unix": Target("unix", "unix_tty", ("linux", "darwin"), 128 * 1024, 0, "run",
                   "MicroPython unix port on a terminal (SITL over a PTY)"),
}


def _kb(n):
    return "%.1f KB" % (n / 1024)


def _blocks(size, block):
    return -(-size // block) * block if size else block


# ------------------------------------------------------------------ plan --

@dataclass
class Plan:
    target: Target
    files: list            # [(device path, bytes)]
    mpy: tuple             # (major, minor) the files carry
    hub_id: int = None
    key_source: str = ""   # "file", "new", "kept", "" (dry run without a port)
    key: bytes = None      # to provision (None: none, or the board's is kept)

    @property
    def size(self):
        return sum(len(d) for _, d in self.files)

    def fs_need(self, block=DEFAULT_BLOCK, existing=None, store_used=0):
        """Bytes of filesystem the flash needs, crediting files it replaces."""
        existing = existing or {}
        need = sum(_blocks(len(d), block) for _, d in self.files)
        need -= sum(_blocks(existing[p], block) for p, _ in self.files if p in existing)
        return max(0, need) + max(0, STORE_RESERVE - store_used)

    def to_dict(self, block=DEFAULT_BLOCK):
        return {"board": self.target.name, "module": "boards/%s" % self.target.module,
                "title": self.target.title,
                "files": [{"path": p, "bytes": len(d)} for p, d in self.files],
                "bytes": self.size, "mpy": "%d.%d" % self.mpy,
                "min_micropython": "%d.%d" % MIN_VERSION,
                "ram_needed": self.target.ram, "fs_needed": self.fs_need(block),
                "store": self.target.store,
                "hub_id": None if self.hub_id is None else "0x%08x" % self.hub_id,
                "key": self.key_source or None}

    def text(self, block=DEFAULT_BLOCK):
        t = self.target
        lines = ["board %s: %s" % (t.name, t.title),
                 "  needs MicroPython >= %d.%d with .mpy bytecode v%d, %s free RAM, %s free "
                 "filesystem (%s blocks)" % (MIN_VERSION + (self.mpy[0], _kb(t.ram),
                                                             _kb(self.fs_need(block)), block))]
        for path, data in self.files:
            lines.append("  %-26s %7d B" % (path, len(data)))
        lines.append("  %d files, %s; the hub's store in %s (hub.key%s)" % (
            len(self.files), _kb(self.size), t.store,
            {"file": ": from --key", "new": ": a new key", "kept": ": kept"}.get(
                self.key_source, "")))
        if self.hub_id is not None:
            lines.append("  hub id 0x%08x" % self.hub_id)
        return "\n".join(lines)


def board_py(target):
    """The one line that names the board module (read by firmware hub/config.py)."""
    return ('"""The board this hub runs on (written by nanohub flash)."""\nNAME = %r\n'
            % target.module).encode()


def main_py(target, hub_id, bots=BOTS):
    """The few lines that start the hub on the board (``board.py`` names the board)."""
    argv = ["--bots", str(bots), "--hub-id", "0x%08x" % hub_id]
    lines = ['"""Start the nanohub hub (written by nanohub flash)."""',
             "import micropython",
             "micropython.kbd_intr(-1)  # a stray 0x03 from the host must not stop the boot"]
    body = ["from hub.config import make",
            "board, hub = make(%r)" % argv,
            "try:",
            "    hub.run()",
            "finally:",
            "    micropython.kbd_intr(3)"]
    if target.window_ms:
        # falls through to the REPL on the escape (SystemExit would soft-reset a board)
        lines += ["from boards.console import boot_escape",
                  "if not boot_escape(%d):  # Ctrl-C three times now keeps the REPL (to reflash)"
                  % target.window_ms]
        body = ["    " + line for line in body]
    lines += body + [""]
    return "\n".join(lines).encode()


class Build:
    """The firmware compiled once to .mpy (a temporary directory); plans per target."""

    def __init__(self):
        from . import vm
        self._tmp = tempfile.TemporaryDirectory(prefix="nanohub-flash-")
        out = Path(self._tmp.name)
        try:
            cross = vm.find_mpy_cross()
            self.mpy = vm.mpy_cross_version(cross)
            vm.compile_tree(vm.firmware_dir(), out, mpy_cross=cross)
        except (vm.VMNotFound, vm.CompileError, FileNotFoundError, RuntimeError) as e:
            self.close()
            raise UsageError("cannot build the firmware: %s" % e) from None
        self.root = out

    def close(self):
        self._tmp.cleanup()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def native(self, target):
        """The modules that need a native emitter (viper), compiled for the
        board's architecture (its ``arch`` attribute), or none: without them
        the firmware runs its portable loops."""
        from . import vm
        arch = board_facts(target.module)[2]
        if not arch:
            return []
        out = self.root / (".native-" + arch)     # inside the build, out of its tree
        try:
            vm.compile_tree(vm.firmware_dir(), out, march=arch)
        except (vm.VMNotFound, vm.CompileError, FileNotFoundError, RuntimeError) as e:
            raise UsageError("cannot build the firmware for %s: %s" % (arch, e)) from None
        return [("hub/" + p.name, p.read_bytes()) for p in sorted((out / "hub").glob("*.mpy"))
                if not (self.root / "hub" / p.name).exists()]

    def plan(self, target, hub_id=None, bots=BOTS):
        files = [("hub/" + p.name, p.read_bytes()) for p in sorted((self.root / "hub").glob("*.mpy"))]
        files += self.native(target)
        for name in ("__init__",) + target.needs + (target.module,):
            files.append(("boards/%s.mpy" % name, (self.root / "boards" / (name + ".mpy")).read_bytes()))
        files.append(("board.py", board_py(target)))
        files.append(("main.py", main_py(target, hub_id if hub_id is not None else 0, bots)))
        return Plan(target, files, self.mpy, hub_id)


# ---------------------------------------------------------------- checks --

def pick_target(info, board):
    """(Target or None, problem or None) for what the board reports and --board."""
    found = next((t for t in TARGETS.values() if info.platform in t.platforms), None)
    if board in (None, "auto"):
        if found is None:
            return None, ("no nanohub board module for platform %r (supported: %s; see "
                          "docs/boards.md)" % (info.platform, ", ".join(sorted(TARGETS))))
        return found, None
    target = TARGETS[board]
    if info.platform not in target.platforms:
        return target, ("--board %s does not fit: the board says platform %r (%s)" % (
            board, info.platform, "use --board %s" % found.name if found else "unsupported"))
    return target, None


def problems(info, target, plan, mpy, existing=None, store_used=0):
    """Every reason this board cannot take the firmware (empty: it can)."""
    out = []
    if tuple(info.version[:2]) < MIN_VERSION:
        out.append("MicroPython %s is too old (nanohub needs %d.%d or newer: update the "
                   "board's MicroPython)" % ((info.version_text,) + MIN_VERSION))
    elif info.mpy is None:
        out.append("it does not report its .mpy bytecode version (sys.implementation._mpy)")
    elif info.mpy[0] != mpy[0]:
        out.append("its .mpy bytecode v%d.%d has no matching mpy-cross here (mpy-cross emits "
                   "v%d.%d: install the mpy-cross release for MicroPython %s, or update the "
                   "board)" % (info.mpy + mpy + (info.version_text,)))
    ram = target.ram if target else min(t.ram for t in TARGETS.values())
    if info.mem_free < ram:
        out.append("only %d bytes of RAM free (%s), the hub needs %d (%s)"
                   % (info.mem_free, _kb(info.mem_free), ram, _kb(ram)))
    if plan is not None and info.fs_free is not None:
        need = plan.fs_need(info.fs_block or DEFAULT_BLOCK, existing, store_used)
        if info.fs_free < need:
            out.append("only %s free on its filesystem, the firmware and the hub's store need "
                       "%s" % (_kb(info.fs_free), _kb(need)))
    return out


def _state_hub_id(data):
    """The hub id in a stored state.bin (see firmware hub/state.py), or None."""
    if data and len(data) >= 14 and data[:4] == b"NHST":
        return int.from_bytes(data[10:14], "little")
    return None


def running_hub(url, timeout=1.5, baudrate=115200):
    """HELLO_REPLY info of a nanohub answering on url, else None."""
    from .client import Hub
    try:
        with Hub.open(url, timeout=timeout, heartbeat=False, baudrate=baudrate) as hub:
            return dict(hub.info)
    except NanohubError:
        return None


# ----------------------------------------------------------------- flash --

def dry_run(board, hub_id=None, bots=BOTS):
    """Plans for ``board`` ("all": every target) without a port."""
    names = sorted(TARGETS) if board in (None, "all") else [board]
    with Build() as build:
        return [build.plan(TARGETS[n], hub_id, bots) for n in names]


class Flasher:
    """One flash of one board; ``say(text)`` reports steps, ``progress(done, total)`` bytes."""

    def __init__(self, url, board="auto", key_file=None, hub_id=None, bots=BOTS, wait=0.0,
                 start_timeout=20.0, say=None, progress=None, baudrate=115200):
        self.url, self.board, self.key_file = url, board, key_file
        self.baudrate = baudrate
        self.hub_id, self.bots, self.wait = hub_id, bots, wait
        self.start_timeout = start_timeout
        self.say = say or (lambda text: None)
        self.progress = progress or (lambda done, total: None)
        self.info = None
        self.key = None

    def connect(self):
        from .mcu import Mcu, NotMicroPython
        try:
            return Mcu.open(self.url, wait=self.wait, baudrate=self.baudrate)
        except NotMicroPython as e:
            hub = running_hub(self.url, baudrate=self.baudrate)
            if hub is None:
                raise
            raise FlashRefused(
                "nanohub %d.%d.%d already runs on %s (hub 0x%08x, board %s) and owns the "
                "console: to reflash, reset the board while nanohub flash --wait 10 waits (its "
                "main.py gives the REPL back on three Ctrl-C in its first second), or restart "
                "the unix port"
                % (hub["fw_major"], hub["fw_minor"], hub["fw_patch"], self.url, hub["hub_id"],
                   hub["board"])) from e

    def run(self, dry=False):
        """Check (and unless ``dry``, flash and start); returns a result dict."""
        self.key = keys.load_key(self.key_file) if self.key_file else None   # usage errors first
        mcu = self.connect()
        try:
            info = self.info = mcu.probe()
            self.say("found %s" % info.describe())
            target, why = pick_target(info, self.board)
            with Build() as build:
                plan = build.plan(target, 0, self.bots) if target else None
                existing, store_used, old_id, has_key = {}, 0, None, False
                bad = problems(info, target, plan, build.mpy)
                if why:
                    bad.insert(0, why)
                if not bad:
                    existing, store_used, old_id, has_key = self._survey(mcu, target)
                    bad = problems(info, target, plan, build.mpy, existing, store_used)
                if bad:
                    raise FlashRefused("cannot flash %s (%s): %s" % (
                        self.url, info.describe(), "; ".join(bad)))
                plan = self._final_plan(build, target, old_id, has_key)
                result = {"url": self.url, "board": info, "plan": plan.to_dict(info.fs_block
                                                                               or DEFAULT_BLOCK)}
                if dry:
                    result["text"] = plan.text(info.fs_block or DEFAULT_BLOCK)
                    return result
                self._write(mcu, plan, existing)
                result["key_path"] = self._remember_key(plan)
                self.say("starting the hub")
                self._start(mcu, target)
                mcu = None
        finally:
            if mcu is not None:
                mcu.close()
        result["hub"] = self._handshake(target)
        return result

    # ------------------------------------------------------------- steps --
    def _survey(self, mcu, target):
        existing = mcu.files(("hub", "boards"), ("main.py", "main.mpy"))
        store = mcu.files((target.store,))
        used = sum(size for path, size in store.items())
        old_id = _state_hub_id(mcu.read_file(target.store + "/state.bin"))
        return existing, used, old_id, (target.store + "/hub.key") in store

    def _final_plan(self, build, target, old_id, has_key):
        hub_id = self.hub_id
        if old_id is not None:
            if hub_id is not None and hub_id != old_id:
                self.say("note: the board already is hub 0x%08x (its state and audit log belong "
                         "to it): keeping that id, not 0x%08x" % (old_id, hub_id))
            hub_id = old_id
        elif hub_id is None:
            hub_id = (0x4E << 24) | random.getrandbits(24)
        plan = build.plan(target, hub_id, self.bots)
        if self.key is not None:
            plan.key = self.key
            plan.key_source = "file"
        elif has_key:
            plan.key = None
            plan.key_source = "kept"
        else:
            plan.key = keys.new_key()
            plan.key_source = "new"
        return plan

    def _write(self, mcu, plan, existing):
        wanted = {p for p, _ in plan.files}
        stale = [p for p in existing if p not in wanted and p.endswith((".py", ".mpy"))]
        for path in stale:
            mcu.remove(path)
        if stale:
            self.say("removed %d stale module(s): %s" % (len(stale), ", ".join(sorted(stale))))
        mcu.mkdir("hub")
        mcu.mkdir("boards")
        total = plan.size + (len(plan.key) if plan.key else 0)
        done = 0
        self.progress(0, total)
        # main.py last: a board reset half way through must not start half a firmware
        for path, data in sorted(plan.files, key=lambda f: f[0] == "main.py"):
            base = done
            mcu.write_file(path, data, progress=lambda n, size, b=base: self.progress(b + n, total))
            done += len(data)
            self.progress(done, total)
        if plan.key:
            mcu.mkdir(plan.target.store)
            mcu.write_file(plan.target.store + "/hub.key", plan.key)
            done += len(plan.key)
            self.progress(done, total)

    def _remember_key(self, plan):
        if not plan.key:
            return None
        return str(keys.save_key(plan.hub_id, plan.key))

    def _start(self, mcu, target):
        try:
            if target.start == "run":
                mcu.run("import main")
            else:
                mcu.run("import machine\nmachine.reset()")
        except LinkError:
            pass                    # the USB port vanished with the reset: expected
        finally:
            mcu.close()

    def _handshake(self, target):
        if target.window_ms:
            time.sleep(target.window_ms / 1000 + 0.3)   # talk only after the boot escape
        deadline = time.monotonic() + self.start_timeout
        while True:
            hub = running_hub(self.url, timeout=2.0, baudrate=self.baudrate)
            if hub is not None:
                return hub
            if time.monotonic() >= deadline:
                raise LinkError(
                    "flashed, but no nanohub answered on %s within %.0f s: see what the board "
                    "prints (mpremote connect %s%s repl), or retry nanohub --port %s info"
                    % (self.url, self.start_timeout, self.url,
                       " resume" if target.start == "run" else "", self.url))
            time.sleep(0.5)


def explain(url, baudrate=115200):
    """One line on what MicroPython board answers on ``url`` and whether nanohub
    can be flashed there (for ``nanohub info`` when a bare REPL answers); None
    when no MicroPython REPL answers."""
    from .mcu import Mcu
    try:
        with Mcu.open(url, baudrate=baudrate) as mcu:
            info = mcu.probe()
    except NanohubError:
        return None
    except ImportError:         # mpremote comes with the mcu extra only
        return "to identify the board and flash it, install mpremote: pip install 'nanohub[mcu]'"
    target, why = pick_target(info, "auto")
    from . import vm
    try:
        mpy = vm.mpy_cross_version()
    except (vm.VMNotFound, RuntimeError):
        mpy = info.mpy or (6, 0)
    bad = ([why] if why else []) + problems(info, target, None, mpy)
    if bad:
        return "%s: nanohub cannot run there: %s" % (info.describe(), "; ".join(bad))
    return "%s: nanohub can be flashed there (nanohub flash --port %s)" % (info.describe(), url)
