"""Run the MicroPython firmware tests (tests/mp/test_*.py) inside the real VM.

Each MicroPython test function becomes one pytest item per mode:
  py   from source:  MICROPYPATH=firmware:tests/mp:.frozen
  mpy  from .mpy only: firmware/, tests/mp/ and sim/ compiled with mpy-cross first,
       so bytecode a board would load is exercised too.
Each (mode, module) runs in the VM once; the items report its cached results.
A module may set its heap with a first-line comment ``# heap: 96k``.
"""

from __future__ import annotations

import re
import shlex
import subprocess
from pathlib import Path

import pytest

from nanohub.host import vm

ROOT = Path(__file__).resolve().parent.parent
MP_DIR = ROOT / "tests" / "mp"
MODES = ("py", "mpy")
DEFAULT_HEAP = "256k"
TIMEOUT = 120
_RESULT = re.compile(r"(PASS|FAIL|SKIP) (\S+?)(?:: (.*))?$")
_LIST_ERRORS: dict[str, str] = {}  # module -> why `mprun.py --list` failed


def _modules():
    return sorted(p.stem for p in MP_DIR.glob("test_*.py"))


def _heap(module):
    with open(MP_DIR / f"{module}.py", encoding="utf-8") as f:
        match = re.match(r"#\s*heap:\s*(\w+)", f.readline())
    return match.group(1) if match else DEFAULT_HEAP


def _run_vm(script_args, heap, path, cwd):
    """Run the VM; return (returncode or None on timeout, stdout, stderr, repro command)."""
    argv, env = vm.vm_command(script_args, heap=heap, path=path)
    env["NANOHUB_ROOT"] = str(ROOT)  # tests find repo data (vectors) from any cwd
    repro = f"cd {shlex.quote(str(cwd))} && MICROPYPATH={shlex.quote(env['MICROPYPATH'])} {shlex.join(argv)}"
    try:
        proc = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True, timeout=TIMEOUT)
    except subprocess.TimeoutExpired as e:
        # TimeoutExpired carries bytes even with text=True.
        out, err = (s.decode(errors="replace") if isinstance(s, bytes) else s or "" for s in (e.stdout, e.stderr))
        return None, out, err + f"\n[timed out after {TIMEOUT} s]", repro
    return proc.returncode, proc.stdout, proc.stderr, repro


def _vm_output(what, rc, out, err, repro):
    status = "timed out" if rc is None else f"exit status {rc}"
    return (f"{what} ({status})\nreproduce: {repro}\n"
            f"--- stdout ---\n{out.rstrip()}\n--- stderr ---\n{err.rstrip()}")


def _source_args(module, *extra):
    return [MP_DIR / "mprun.py", module, *extra], (vm.firmware_dir(), MP_DIR), ROOT


def _list_tests(module):
    """Names of the module's tests, from ``mprun.py --list`` run from source."""
    script, path, cwd = _source_args(module, "--list")
    rc, out, err, repro = _run_vm(script, _heap(module), path, cwd)
    names = [line[5:].strip() for line in out.splitlines() if line.startswith("TEST ")]
    if rc != 0 or not names:
        return [f"{module}.<list>"], _vm_output(f"listing {module} failed", rc, out, err, repro)
    return names, None


def _wheel_platform():
    import platform
    m = (platform.system(), platform.machine())
    return m in (("Linux", "x86_64"), ("Darwin", "arm64"))


def pytest_generate_tests(metafunc):
    """One item per (mode, MicroPython test function), e.g. test_mp[py-test_x.test_y]."""
    if "mp_test" not in metafunc.fixturenames:
        return
    try:
        vm.find_micropython()
    except vm.VMNotFound as e:
        # Where the pinned wheel exists the VM must be there: a missing VM is a
        # broken install, not a reason to pass without running the firmware.
        marks = () if _wheel_platform() else pytest.mark.skip(reason=str(e))
        _LIST_ERRORS["micropython"] = "no MicroPython VM: %s" % e
        metafunc.parametrize("mode,mp_test", [
            pytest.param(mode, "micropython", id=f"{mode}-micropython", marks=marks)
            for mode in MODES
        ])
        return
    listed = {module: _list_tests(module) for module in _modules()}
    _LIST_ERRORS.update({m: err for m, (_, err) in listed.items() if err})
    metafunc.parametrize("mode,mp_test", [
        pytest.param(mode, name, id=f"{mode}-{name}")
        for mode in MODES for module, (names, _) in listed.items() for name in names
    ])


class ModuleRun:
    """Parsed output of one VM run of one test module."""

    def __init__(self, rc, out, err, repro):
        self.rc, self.out, self.err, self.repro = rc, out, err, repro
        self.results = {}  # name -> (status, message, detail lines)
        current, captured = None, []
        for line in out.splitlines():
            match = _RESULT.match(line)
            if line.startswith("  | ") and current:
                current[2].append(line[4:])
            elif match:
                status, name, message = match.groups()
                detail = ["MicroPython traceback:"] if status == "FAIL" else []
                current = self.results[name] = (status, message or "", detail)
                if captured:
                    detail[:0] = ["captured output:", *captured, ""]
                    captured = []
            else:
                current = None
                captured.append(line)

    def missing(self, name):
        return _vm_output(f"no result for {name} from the MicroPython runner", self.rc, self.out, self.err, self.repro)


class MpResults:
    """Session cache: runs each (mode, module) once, compiling for mpy lazily."""

    def __init__(self, tmp_path_factory):
        self._tmp = tmp_path_factory
        self._runs = {}
        self._mpy = None  # (firmware dir, tests dir) or an Exception to re-raise
        self.compile_errors = ""  # files mpy-cross rejected; shown with mpy failures

    def _compiled(self):
        if self._mpy is None:
            try:
                self._mpy = self._compile()
            except Exception as e:  # remembered so every mpy item reports it
                self._mpy = e
        if isinstance(self._mpy, vm.VMNotFound):
            pytest.skip(str(self._mpy))
        if isinstance(self._mpy, Exception):
            pytest.fail(f"cannot prepare .mpy files: {self._mpy}", pytrace=False)
        return self._mpy

    def _compile(self):
        vm_path, cross = vm.find_micropython(), vm.find_mpy_cross()
        want, have = vm.mpy_version_of(vm_path), vm.mpy_cross_version(cross)
        if want != have:
            raise RuntimeError(f"mpy-cross emits .mpy v{have[0]}.{have[1]} but {vm_path} "
                               f"loads v{want[0]}.{want[1]}; install matching versions")
        out = self._tmp.mktemp("mpy")
        march = vm.native_arch_of(vm_path)  # so @micropython.viper code compiles
        # sim/ too: the bot model imports the firmware's wire module, whose
        # build keeps only formats and tables (constants are inlined)
        dirs = ((vm.firmware_dir(), out / "firmware"), (MP_DIR, out / "tests_mp"),
                (ROOT / "sim", out / "sim"))
        for src, dst in dirs:
            dst.mkdir()
            try:
                vm.compile_tree(src, dst, march=march, mpy_cross=cross, keep_going=True)
            except vm.CompileError as e:  # the VM will report the missing modules
                self.compile_errors += f"{e}\n"
        return tuple(dst for _, dst in dirs)

    def get(self, mode, module) -> ModuleRun:
        key = (mode, module)
        if key not in self._runs:
            if mode == "py":
                script, path, cwd = _source_args(module)
            else:
                # -m runs the compiled runner; cwd (sys.path[0] = '') holds only .mpy files.
                fw, tests, sim = self._compiled()
                script, path, cwd = ["-m", "mprun", module], (fw, tests, sim), tests
            self._runs[key] = ModuleRun(*_run_vm(script, _heap(module), path, cwd))
        return self._runs[key]


@pytest.fixture(scope="session")
def mp_results(tmp_path_factory):
    return MpResults(tmp_path_factory)


def test_mp(mode, mp_test, mp_results):
    module = mp_test.split(".", 1)[0]
    if module in _LIST_ERRORS:
        pytest.fail(_LIST_ERRORS[module], pytrace=False)
    run = mp_results.get(mode, module)
    notes = []
    if mode == "mpy" and mp_results.compile_errors:  # may explain a missing module
        notes = [f"\n--- mpy-cross errors ---\n{mp_results.compile_errors}"]
    if mp_test not in run.results:
        pytest.fail("\n".join([run.missing(mp_test), *notes]), pytrace=False)
    status, message, detail = run.results[mp_test]
    if status == "SKIP":
        pytest.skip(f"{mp_test}: {message}")
    if status == "FAIL":
        notes = notes if message.startswith("ImportError") else []
        pytest.fail("\n".join([message, "", *detail, "", f"reproduce: {run.repro}", *notes]), pytrace=False)
