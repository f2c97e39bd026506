"""Shared pytest configuration and fixtures of the nanohub tests.

Markers (registered in pyproject.toml):

- ``vm``: needs the MicroPython VM (and the firmware); skipped, with the
  reason, where the VM cannot be found. Whole files get it from ``VM_FILES``.
- ``slow``: many seconds of real time (emulated sessions, VM stress runs,
  the unread console). ``make test-quick`` leaves them out. Whole files get
  it from ``SLOW_FILES``, single tests by ``@pytest.mark.slow``.
- ``late``: runs after all others; it checks on work started in the
  background when the session began (see tests/_unread.py). Before it, the
  tests that flood a link (``FLOOD_FILES``).
"""
import functools
from pathlib import Path

import pytest
from hypothesis import settings

# Property tests scale their own number of examples by the profile's
# max_examples per 100 (tests/_examples.py): half by default, ten times as
# many with --hypothesis-profile=long.
settings.register_profile("default", max_examples=50)
settings.register_profile("long", max_examples=1000)
settings.load_profile("default")

# tests/mp/ holds MicroPython test modules: they run inside the VM via
# tests/test_firmware_mp.py, never under CPython, so pytest must not collect them.
collect_ignore = ["mp"]

ROOT = Path(__file__).resolve().parent.parent

VM_FILES = {
    "test_attackers", "test_audit_keyed_e2e", "test_broker", "test_broker_e2e", "test_demo_story",
    "test_host_e2e", "test_host_unread", "test_link_faults", "test_study_story",
    "test_treat_start_cli",
}
SLOW_FILES = {      # whole files of emulated sessions, VM stress runs and real boards' tools
    "test_attackers", "test_audit_keyed_e2e", "test_bench_smoke", "test_broker_e2e",
    "test_demo_story", "test_flash", "test_fleet", "test_fuzz_vm", "test_heap_full_scenario",
    "test_host_e2e", "test_host_unread", "test_inputs", "test_link_faults", "test_links_ser2net",
    "test_powercut", "test_qemu_microbit", "test_readme", "test_record_report",
    "test_study_cluster", "test_study_story", "test_wasm_vm", "test_wheel",
}
# Floods of the link (hub or broker) as fast as the machine goes: they run after
# the other tests, so that no run in the background (tests/_background.py) is
# beside them (beside the attack tests' floods a session's hub stalled).
FLOOD_FILES = {"test_attackers", "test_broker"}


@functools.lru_cache(maxsize=None)
def vm_missing():
    """Why the firmware cannot run on the MicroPython VM here, or None."""
    from nanohub.host import vm
    try:
        if not (vm.firmware_dir() / "main.py").exists():
            return "firmware/main.py does not exist"
        vm.find_micropython()
    except (vm.VMNotFound, FileNotFoundError) as e:
        return str(e)
    return None


def pytest_collection_modifyitems(session, config, items):
    for item in items:
        stem = Path(str(item.fspath)).stem
        if stem in VM_FILES:
            item.add_marker(pytest.mark.vm)
        if stem in SLOW_FILES:
            item.add_marker(pytest.mark.slow)
        if item.get_closest_marker("vm") is not None and vm_missing() is not None:
            item.add_marker(pytest.mark.skip(reason=vm_missing()))
    items.sort(key=lambda item: (item.get_closest_marker("late") is not None,   # stable
                                 Path(str(item.fspath)).stem in FLOOD_FILES))


def pytest_collection_finish(session):
    if session.config.option.collectonly or vm_missing() is not None:
        return
    import _background
    import _unread
    if _unread.selected(session.items):
        _unread.start()
    for module in {item.module for item in session.items if hasattr(item, "module")}:
        runs = getattr(module, "BACKGROUND", [])
        for run in [runs] if isinstance(runs, tuple) else runs:      # one (name, start) or a list
            _background.get(*run)


def pytest_sessionfinish(session, exitstatus):
    import sys
    if "_unread" in sys.modules:
        sys.modules["_unread"].stop()
    if "_background" in sys.modules:
        sys.modules["_background"].close_all()


def pytest_terminal_summary(terminalreporter):
    import sys
    if "_unread" in sys.modules:
        line = sys.modules["_unread"].summary()
        if line:
            terminalreporter.write_line(line)


# ------------------------------------------------------------ fixtures --

def _isolate(mp, tmp):
    """A fresh nanohub home and runtime directory; no port or key from the caller."""
    mp.setenv("NANOHUB_HOME", str(tmp / "home"))
    mp.setenv("NANOHUB_RUNTIME_DIR", str(tmp / "run"))     # where nanohub://NAME is found
    for var in ("NANOHUB_PORT", "NANOHUB_KEY", "NANOHUB_CLINIC"):
        mp.delenv(var, raising=False)
    return tmp / "home"


@pytest.fixture
def home(tmp_path, monkeypatch):
    """NANOHUB_HOME for one test (tmp_path/home), nothing inherited: its path."""
    return _isolate(monkeypatch, tmp_path)


@pytest.fixture(scope="module")
def module_home(tmp_path_factory):
    """``home`` for a whole module (hubs shared by its tests): the directory above it."""
    tmp = tmp_path_factory.mktemp("home")
    with pytest.MonkeyPatch.context() as mp:
        _isolate(mp, tmp)
        yield tmp


@pytest.fixture(scope="module")
def nominal_hub(module_home):
    """An emulated hub (firmware on the VM, 16 bots, nominal scenario) shared by a
    module's tests that leave it usable."""
    from nanohub.host.emulate.hub import EmulatedHub
    with EmulatedHub(bots=16, scenario="nominal", seed=1) as hub:
        yield hub


def _hub8(seed):
    from nanohub.host.emulate.hub import EmulatedHub
    return EmulatedHub(bots=8, scenario="nominal", seed=seed)


@pytest.fixture(scope="module")
def hub8(module_home):
    """An emulated hub of 8 bots (nominal scenario) shared by a module's tests
    that leave it usable."""
    with _hub8(3) as hub:
        yield hub


@pytest.fixture
def own_hub8(home):
    """An emulated hub of 8 bots for one test alone: one that latches an
    emergency stop or floods it."""
    with _hub8(4) as hub:
        yield hub


@pytest.fixture(scope="session")
def presentation_night():
    """One presentation night (64 bots), recorded, on the hub as shipped: compiled
    bytecode in a 160 KB heap. The heap test and the recorder's tests judge the
    same session (a minute of real time, run once, in the background from the
    session's start: tests/_night.py): (db path, Session, workdir)."""
    import _night
    return _night.result()


@pytest.fixture(scope="module")
def micropython():
    """The MicroPython VM's command; skips the test where there is none."""
    from nanohub.host import vm
    try:
        return vm.find_micropython()
    except vm.VMNotFound as e:
        pytest.skip(str(e))
