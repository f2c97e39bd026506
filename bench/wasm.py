"""Run scripts on the 32-bit MicroPython VM (the WebAssembly port under Node).

``scripts/ensure-mpwasm.sh`` installs the pinned port into build/mpwasm;
``tests/wasm/run.mjs`` loads it, copies the given directories onto its
filesystem and runs one script. ``missing()`` says why it cannot run here.
"""
import json
import shutil
import subprocess

from .report import ROOT

RUNNER = ROOT / "tests" / "wasm" / "run.mjs"
PACKAGE = ROOT / "build" / "mpwasm" / "node_modules" / "@micropython" / \
    "micropython-webassembly-pyscript" / "package.json"
VERSION = "1.27.0"


def missing():
    """None when the 32-bit VM can run here, else the reason it cannot."""
    if shutil.which("node") is None:
        return "Node is missing (no node on PATH): the 32-bit WebAssembly VM cannot run"
    if not PACKAGE.exists():
        return ("the 32-bit WebAssembly VM is not installed: run scripts/ensure-mpwasm.sh "
                "(make test does; it needs npm and network access)")
    try:
        version = json.loads(PACKAGE.read_text())["version"]
    except (OSError, ValueError, KeyError):
        version = "?"
    if version != VERSION:
        return "build/mpwasm holds version %s of the VM, not %s: run scripts/ensure-mpwasm.sh" % (
            version, VERSION)
    return None


def run(script, args=(), path=(), heap="4m", timeout=600, files=(), board=None):
    """Run ``script`` with ``args``; (returncode or None on timeout, stdout, stderr).

    ``path``: directories on its sys.path and filesystem; ``files``: more files
    copied onto its filesystem (same absolute paths); ``board``: a firmware tree
    put at the filesystem's root, where a board holds it (module file names,
    which the VM keeps as interned strings, are then a board's).
    """
    argv = ["node", str(RUNNER), "--heap", heap, "--root", str(ROOT)]
    if path:
        argv += ["--path", ":".join(str(p) for p in path)]
    if board:
        argv += ["--board", str(board)]
    for f in files:
        argv += ["--file", str(f)]
    argv += [str(script), *map(str, args)]
    try:
        proc = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as e:
        out = e.stdout.decode(errors="replace") if isinstance(e.stdout, bytes) else e.stdout or ""
        return None, out, "timed out after %d s" % timeout
    return proc.returncode, proc.stdout, proc.stderr


def run_json(script, args=(), path=(), heap="4m", timeout=600, files=(), board=None):
    """Run ``script`` and return its last JSON line; RuntimeError if it failed."""
    rc, out, err = run(script, args, path, heap, timeout, files, board)
    lines = [line for line in out.splitlines() if line.startswith("{")]
    if rc != 0 or not lines:
        raise RuntimeError("%s %s on the 32-bit VM failed (%s): %s" % (
            script, " ".join(map(str, args)), rc, (err or out)[-1500:]))
    return json.loads(lines[-1])
