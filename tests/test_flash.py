"""``nanohub flash``: plans, checks, and a real flash of the MicroPython unix
port behind a pseudo-terminal, then ``info``/``status`` over that terminal.

The terminal is socat's ``PTY,link=...`` + ``EXEC:micropython,pty,...`` when
socat is installed (scripts/ensure-qemu.sh installs it), else the same made
with Python's pty module: the PTY tests never skip for want of socat.
"""
import json
import os
import pty
import select
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import tty
from pathlib import Path

import pytest

from _cli import terminate
from _waiting import wait_for

from nanohub.host import flash, keys, vm
from nanohub.host.link.port import free_port
from nanohub.host.mcu import BoardInfo

ROOT = Path(__file__).resolve().parent.parent


def cli(*args, timeout=90):
    return subprocess.run([sys.executable, "-m", "nanohub.host.cli", *map(str, args)],
                          capture_output=True, text=True, timeout=timeout)


# ------------------------------------------------------------ the terminal --

class PtyVM:
    """The MicroPython unix port's REPL on a pseudo-terminal at ``self.url``.

    Its working directory ``dev`` is the device filesystem. socat when
    installed (and NANOHUB_TEST_PTY is not "python"), else two Python ptys
    and a relay thread.
    """

    def __init__(self, dev, link, heap=None):
        self.dev, self.url = Path(dev), str(link)
        self.dev.mkdir(parents=True, exist_ok=True)
        argv = [vm.find_micropython()] + (["-X", "heapsize=" + heap] if heap else [])
        env = dict(os.environ)
        env.pop("MICROPYPATH", None)
        self.log = open(self.dev.parent / ("%s.log" % self.dev.name), "ab")
        self.proc = self.child = None
        self._fds = []
        self._stop = threading.Event()
        if shutil.which("socat") and os.environ.get("NANOHUB_TEST_PTY") != "python":
            self.how = "socat"
            self.proc = subprocess.Popen(
                ["socat", "PTY,link=%s,raw,echo=0" % link,
                 "EXEC:%s,pty,setsid,ctty,raw,echo=0" % " ".join(argv)],
                cwd=self.dev, env=env, stdout=self.log, stderr=self.log, start_new_session=True)
        else:
            self.how = "python pty"
            m1, s1 = pty.openpty()          # the VM's terminal
            m2, s2 = pty.openpty()          # the host's end, at self.url
            tty.setraw(s1)
            tty.setraw(s2)
            os.symlink(os.ttyname(s2), link)
            self.child = subprocess.Popen(argv, cwd=self.dev, env=env, stdin=s1, stdout=s1,
                                          stderr=self.log, start_new_session=True)
            os.close(s1)
            self._fds = [m1, m2, s2]        # s2 stays open: the relay never sees a hang-up
            threading.Thread(target=self._relay, args=(m1, m2), daemon=True).start()
        wait_for(lambda: os.path.exists(link), 10,
                 "a pseudo-terminal at %s (%s)" % (link, self.how))

    def _relay(self, a, b):
        while not self._stop.is_set():
            try:
                ready, _, _ = select.select([a, b], [], [], 0.1)
                for fd in ready:
                    data = os.read(fd, 4096)
                    if not data:
                        return
                    os.write(b if fd == a else a, data)
            except OSError:
                if fd == a:
                    return                  # the VM ended
                time.sleep(0.05)            # nobody has the host end open

    def _children(self):
        if self.proc is None:
            return [self.child.pid] if self.child else []
        try:
            path = "/proc/%d/task/%d/children" % (self.proc.pid, self.proc.pid)
            return [int(p) for p in open(path).read().split()]
        except OSError:
            return []

    def close(self):
        pids = self._children()
        for proc in (self.proc, self.child):
            if proc is not None:
                terminate(proc)
        for pid in pids:                    # the VM socat started, by its id
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        self._stop.set()
        for fd in self._fds:
            try:
                os.close(fd)
            except OSError:
                pass
        if os.path.islink(self.url):
            os.unlink(self.url)
        self.log.close()


@pytest.fixture
def pty_vm(tmp_path):
    made = []

    def start(name="dev", heap=None):
        v = PtyVM(tmp_path / name, tmp_path / ("tty-" + name), heap)
        made.append(v)
        return v
    yield start
    for v in made:
        v.close()


# --------------------------------------------------------- plans, no board --

@pytest.mark.vm
def test_dry_run_without_a_port_plans_every_board(home):
    r = cli("--json", "flash", "--dry-run", "--board", "all")
    assert r.returncode == 0, r.stderr
    plans = {p["board"]: p for p in json.loads(r.stdout)["plans"]}
    assert sorted(plans) == ["rp2", "stm32", "unix"]
    mpy = "%d.%d" % vm.mpy_cross_version()
    for name, p in plans.items():
        paths = [f["path"] for f in p["files"]]
        assert "main.py" in paths and "hub/core.mpy" in paths and "boards/base.mpy" in paths
        assert all(f["bytes"] > 0 for f in p["files"])
        assert all(x.endswith(".mpy") for x in paths if x not in ("main.py", "board.py"))
        assert p["mpy"] == mpy and p["min_micropython"] == "1.22"
        assert p["ram_needed"] == flash.TARGETS[name].ram
        assert p["fs_needed"] > p["bytes"] + flash.STORE_RESERVE - 1
    assert "boards/rp2.mpy" in [f["path"] for f in plans["rp2"]["files"]]
    assert "boards/console.mpy" in [f["path"] for f in plans["stm32"]["files"]]
    assert "boards/tcpbus.mpy" in [f["path"] for f in plans["unix"]["files"]]
    assert "boards/tcpbus.mpy" not in [f["path"] for f in plans["rp2"]["files"]]
    assert "board.py" in [f["path"] for f in plans["stm32"]["files"]]
    assert "boards/unix_tty.mpy" in [f["path"] for f in plans["unix"]["files"]]
    assert "boards/unix.mpy" not in [f["path"] for f in plans["rp2"]["files"]]
    text = cli("flash", "--dry-run", "--board", "rp2")
    assert text.returncode == 0
    assert "board rp2" in text.stdout and "96.0 KB free RAM" in text.stdout
    assert "nothing written" in text.stdout


def test_flash_usage_errors_are_one_line_exit_2(home):
    for args, words in ((("flash", "--dry-run"), "needs --board"),
                        (("flash",), "no port given"),
                        (("--port", "sim", "flash"), "nothing to flash"),
                        (("--port", "/dev/null", "flash", "--board", "all"), "--board all"),
                        (("flash", "--dry-run", "--board", "rp2", "--hub-id", "zz"), "bad hub id")):
        r = cli(*args)
        assert r.returncode == 2, (args, r.stderr)
        assert words in r.stderr and "Traceback" not in r.stderr
        assert len(r.stderr.strip().splitlines()) == 1


def test_the_flash_store_paths_are_the_board_wiring():
    """flash reads each board's STORE from its source: the same path the board's
    wiring gives the firmware (the modules import MicroPython-only ones, so the
    check reads their assignments the way a board would evaluate them)."""
    import ast
    for name, module in (("rp2", "rp2"), ("stm32", "stm32"), ("unix", "unix_tty")):
        tree = ast.parse((ROOT / "firmware/boards" / (module + ".py")).read_text())
        ns = {}
        for node in tree.body:
            if isinstance(node, ast.Assign) and node.targets[0].id in ("STORE", "WIRING"):
                exec(compile(ast.Module([node], []), module, "exec"), ns)
        assert flash.TARGETS[name].store == ns["STORE"]
        if "WIRING" in ns:
            assert ns["WIRING"]["store"] == ns["STORE"]
    assert flash.TARGETS["unix"].needs == ("base", "console", "tcpbus")
    assert "tcpbus" not in flash.TARGETS["rp2"].needs


def test_board_py_names_the_board_module():
    ns = {}
    exec(flash.board_py(flash.TARGETS["unix"]).decode(), ns)
    assert ns["NAME"] == "unix_tty"


def _info(version, mpy=(6, 3), mem=200_000, fs=(4096, 1 << 30), platform="rp2"):
    return BoardInfo.from_probe(("micropython", version, -1 if mpy is None else
                                 mpy[0] | mpy[1] << 8, platform, "board", mem, fs and
                                 (fs[0], fs[1] // fs[0], 0), "/"))


def test_the_checks_name_every_problem_and_how_much_is_needed():
    target = flash.TARGETS["rp2"]
    plan = flash.Plan(target, [("hub/a.mpy", b"x" * 5000), ("main.py", b"y")], (6, 3))
    assert flash.problems(_info((1, 24, 1)), target, plan, (6, 3)) == []
    old = flash.problems(_info((1, 9, 2), mpy=None, mem=9000, fs=None), target, plan, (6, 3))
    assert len(old) == 2
    assert "MicroPython 1.9.2 is too old (nanohub needs 1.22" in old[0]
    assert "only 9000 bytes of RAM free" in old[1] and "needs 98304" in old[1]
    bc = flash.problems(_info((1, 22, 0), mpy=(5, 0)), target, plan, (6, 3))
    assert bc == [bc[0]] and ".mpy bytecode v5.0 has no matching mpy-cross" in bc[0]
    small = flash.problems(_info((1, 22, 0), fs=(4096, 40960)), target, plan, (6, 3))
    need = 8192 + 4096 + flash.STORE_RESERVE       # whole blocks: 5000 B -> 2, 1 B -> 1
    assert small == ["only 40.0 KB free on its filesystem, the firmware and the hub's store "
                     "need %.1f KB" % (need / 1024)]
    # files it replaces and the store already there count as free
    assert plan.fs_need(4096, {"hub/a.mpy": 4000}, flash.STORE_RESERVE) == 8192


def test_the_board_is_picked_from_its_platform():
    assert flash.pick_target(_info((1, 24), platform="pyboard"), "auto")[0].name == "stm32"
    assert flash.pick_target(_info((1, 24), platform="linux"), "auto")[0].module == "unix_tty"
    target, why = flash.pick_target(_info((1, 24), platform="esp32"), "auto")
    assert target is None and "no nanohub board module for platform 'esp32'" in why
    target, why = flash.pick_target(_info((1, 24), platform="pyboard"), "rp2")
    assert "--board rp2 does not fit" in why and "use --board stm32" in why


def test_main_py_starts_the_hub_with_the_boot_escape_on_boards_only():
    board = flash.main_py(flash.TARGETS["rp2"], 0x4E000001).decode()
    compile(board, "main.py", "exec")
    assert "if not boot_escape(1000):" in board and "'--hub-id', '0x4e000001'" in board
    assert board.index("kbd_intr(-1)") < board.index("boot_escape")
    assert "SystemExit" not in board     # it would soft-reset a board into main.py again
    unix = flash.main_py(flash.TARGETS["unix"], 7, bots=8).decode()
    compile(unix, "main.py", "exec")
    assert "boot_escape" not in unix and "'8'" in unix and "--board" not in unix


def test_the_hub_id_is_read_from_a_stored_state():
    import struct
    rec = struct.pack("<4sHIIIIBBBB", b"NHST", 1, 5, 0x5100BEEF, 0, 3, 0, 0, 0, 0)
    assert flash._state_hub_id(rec + b"\0" * 4) == 0x5100BEEF
    assert flash._state_hub_id(b"junk") is None and flash._state_hub_id(None) is None


# ------------------------------------------------ not a MicroPython board --

def _listener(talk):
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(4)
    stop = threading.Event()

    def answer(c):                      # a modem: ERROR to whatever it is sent
        with c:
            while not stop.is_set():
                try:
                    if c.recv(256) and talk:
                        c.sendall(b"ERROR\r\n")
                except socket.timeout:
                    continue
                except OSError:
                    return

    def serve():
        srv.settimeout(0.2)
        while not stop.is_set():
            try:
                c, _ = srv.accept()
            except OSError:
                continue
            c.settimeout(0.2)
            threading.Thread(target=answer, args=(c,), daemon=True).start()
    threading.Thread(target=serve, daemon=True).start()
    return srv, stop


@pytest.mark.parametrize("talk", [False, True], ids=["silent", "chatty"])
def test_a_port_without_micropython_is_refused_as_a_link_error(home, talk):
    srv, stop = _listener(talk)
    try:
        r = cli("--port", "socket://127.0.0.1:%d" % srv.getsockname()[1], "flash")
    finally:
        stop.set()
        srv.close()
    assert r.returncode == 3, r.stderr
    want = "answered, but no MicroPython REPL" if talk else "no MicroPython REPL answered"
    assert want in r.stderr and "Traceback" not in r.stderr


_GARBLED = (b"", b'Traceback (most recent call last):\r\n  File "<stdin>", line 1\r\n'
                 b"SyntaxError: invalid syntax for number\r\n")


def test_code_an_old_board_read_garbled_is_sent_again_slower():
    # mpremote's transport as a board without raw-paste flow control sees it
    # when its UART dropped bytes: a SyntaxError in code that has none
    from nanohub.host.mcu import DeviceError, Mcu
    calls = []

    class OldBoard:
        use_raw_paste = False
        garbled = 2                 # sendings read with bytes missing

        def exec_raw(self, code, timeout=None):
            calls.append(mcu.chunk)
            return _GARBLED if len(calls) <= self.garbled else (b"42\r\n", b"")

    board = OldBoard()
    mcu = Mcu(board, "fake://")
    assert mcu.exec("print(42)").strip() == "42"
    assert calls == [32, 16, 8]
    # three garbled sendings: the error stands, and says what the board said
    calls.clear()
    board.garbled, mcu.chunk = 3, 32
    with pytest.raises(DeviceError, match="SyntaxError"):
        mcu.exec("print(42)")
    assert len(calls) == 3
    # a real SyntaxError, or a board with flow control: never sent again
    for code, raw_paste in (("print(42", False), ("print(42)", True)):
        calls.clear()
        board.use_raw_paste = raw_paste
        with pytest.raises(DeviceError):
            mcu.exec(code)
        assert len(calls) == 1, (code, raw_paste)


def test_a_port_nobody_listens_on_is_a_link_error(home):
    r = cli("--port", "socket://127.0.0.1:%d" % free_port(), "flash")
    assert r.returncode == 3 and "connection refused" in r.stderr


# ---------------------------------------------- the unix port over a PTY --

@pytest.mark.vm
def test_flash_then_info_and_status_over_the_same_terminal(home, tmp_path, pty_vm):
    v = pty_vm()
    (v.dev / "hub").mkdir()
    (v.dev / "hub" / "core.py").write_text("raise ImportError('stale source')\n")
    (v.dev / "hub" / "gone.mpy").write_bytes(b"M")
    key_file = tmp_path / "k.key"
    key = bytes(range(32))
    key_file.write_bytes(key)
    r = cli("--port", v.url, "--json", "--key", key_file, "flash", "--hub-id", "0x5100beef",
            "--bots", "8")
    assert r.returncode == 0, r.stderr + r.stdout
    out = json.loads(r.stdout)
    assert out["hub"]["hub_id"] == "0x5100beef" and out["hub"]["board"] == "unix_tty"
    assert out["hub"]["keyed"] is True and out["hub"]["bots"] == 8
    assert out["board"]["platform"] == "linux" and out["plan"]["board"] == "unix"
    assert "copied 100%" in r.stderr and "removed 2 stale module(s)" in r.stderr
    # what the device filesystem now holds
    assert (v.dev / "nanohub" / "hub.key").read_bytes() == key
    assert not (v.dev / "hub" / "core.py").exists() and not (v.dev / "hub" / "gone.mpy").exists()
    assert (v.dev / "hub" / "core.mpy").exists() and (v.dev / "boards" / "unix_tty.mpy").exists()
    assert keys.load_key(keys.key_path(0x5100BEEF)) == key
    # the hub owns the terminal now: the host talks to it on the same port
    info = cli("--port", v.url, "--json", "info")
    assert info.returncode == 0, info.stderr
    d = json.loads(info.stdout)
    assert d["hub_id"] == "0x5100beef" and d["keyed"] and d["state"] == "SAFE"
    assert d["host_key"]
    status = cli("--port", v.url, "status")
    assert status.returncode == 0, status.stderr
    assert status.stdout.startswith("state    SAFE")
    # a second flash cannot break in: it says what runs and how to reflash
    again = cli("--port", v.url, "flash")
    assert again.returncode == 1
    assert "nanohub 0.1.0 already runs on" in again.stderr and "--wait 10" in again.stderr


@pytest.mark.vm
def test_a_reflash_keeps_the_hub_id_and_key_of_a_hub_that_has_booted(home, tmp_path, pty_vm):
    v = pty_vm("a")
    assert cli("--port", v.url, "flash", "--hub-id", "0x5100aaaa").returncode == 0
    key = (v.dev / "nanohub" / "hub.key").read_bytes()
    assert keys.load_key(keys.key_path(0x5100AAAA)) == key
    v.close()
    w = PtyVM(v.dev, tmp_path / "tty-b")     # the same files: a power cycle
    try:
        r = cli("--port", w.url, "--json", "flash", "--hub-id", "0x5100bbbb")
        assert r.returncode == 0, r.stderr
        out = json.loads(r.stdout)
        assert out["hub"]["hub_id"] == "0x5100aaaa" and out["plan"]["key"] == "kept"
        assert "keeping that id, not 0x5100bbbb" in r.stderr
        assert out["hub"]["boots"] == 2
        assert (v.dev / "nanohub" / "hub.key").read_bytes() == key
    finally:
        w.close()


@pytest.mark.vm
def test_a_dry_run_on_the_terminal_checks_the_board_and_writes_nothing(home, pty_vm):
    v = pty_vm()
    r = cli("--port", v.url, "flash", "--dry-run")
    assert r.returncode == 0, r.stderr
    assert "can take nanohub" in r.stdout and "boards/unix_tty.mpy" in r.stdout
    assert "nothing written" in r.stdout
    assert sorted(os.listdir(v.dev)) == []
    # the transport flash uses: directories by absolute and relative path, files
    from nanohub.host.mcu import Mcu
    absolute = v.dev.parent / "abs" / "store"
    with Mcu.open(v.url) as mcu:
        mcu.mkdir(str(absolute))
        mcu.mkdir("rel/dir")
        mcu.write_file("rel/dir/f.bin", bytes(range(256)) * 3)
        assert mcu.files(("rel/dir",), ("nope.py",)) == {"rel/dir/f.bin": 768}
        assert mcu.read_file("rel/dir/f.bin") == bytes(range(256)) * 3
        assert mcu.read_file("rel/none") is None
    assert absolute.is_dir() and (v.dev / "rel" / "dir").is_dir()


@pytest.mark.vm
def test_a_vm_with_too_little_heap_is_refused_with_the_amount_needed(home, pty_vm):
    v = pty_vm(heap="96k")
    r = cli("--port", v.url, "flash")
    assert r.returncode == 1, r.stderr
    line = r.stderr.strip().splitlines()[-1]
    assert line.startswith("nanohub: cannot flash %s (MicroPython " % v.url)
    assert "bytes of RAM free" in line and "the hub needs 131072 (128.0 KB)" in line
    assert sorted(os.listdir(v.dev)) == []


@pytest.mark.vm
def test_wait_breaks_in_during_the_boot_escape_window(home, pty_vm):
    """What nanohub flash --wait does on a board being reset, on the unix port:
    main.py sits in its boot escape; three Ctrl-C give the REPL back."""
    import dataclasses
    from nanohub.host.mcu import Mcu
    v = pty_vm()
    (v.dev / "boards").mkdir()
    for name in ("__init__", "console", "base"):
        shutil.copy(ROOT / "firmware" / "boards" / (name + ".py"), v.dev / "boards")
    shutil.copytree(ROOT / "firmware" / "hub", v.dev / "hub")
    slow = dataclasses.replace(flash.TARGETS["unix"], window_ms=4000)
    (v.dev / "main.py").write_bytes(flash.main_py(slow, 0x5100CCCC))
    with Mcu.open(v.url) as mcu:
        mcu.run("import main")             # in the window now: Ctrl-C is off
    start = time.monotonic()
    with Mcu.open(v.url, wait=5) as mcu:
        assert mcu.eval("1 + 2") == 3      # the REPL, not the hub
    assert time.monotonic() - start < 4    # broke in, did not wait the window out
    assert not (v.dev / "nanohub").exists()   # the hub never started
