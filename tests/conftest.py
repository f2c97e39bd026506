"""Shared pytest configuration for the nanohub tests (add shared fixtures here)."""

# tests/mp/ holds MicroPython test modules: they run inside the VM via
# tests/test_firmware_mp.py, never under CPython, so pytest must not collect them.
collect_ignore = ["mp"]


# Tests marked ``late`` run after all others: they check on work started in the
# background when the session began (see tests/_unread.py).
def pytest_configure(config):
    config.addinivalue_line("markers", "late: runs at the end of the session")


def pytest_collection_modifyitems(session, config, items):
    items.sort(key=lambda item: item.get_closest_marker("late") is not None)   # stable


def pytest_collection_finish(session):
    import _unread
    if _unread.selected(session.items) and not session.config.option.collectonly:
        _unread.start()


def pytest_sessionfinish(session, exitstatus):
    import sys
    if "_unread" in sys.modules:
        sys.modules["_unread"].stop()
