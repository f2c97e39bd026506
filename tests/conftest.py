"""Shared pytest configuration for the nanohub tests (add shared fixtures here)."""

# tests/mp/ holds MicroPython test modules: they run inside the VM via
# tests/test_firmware_mp.py, never under CPython, so pytest must not collect them.
collect_ignore = ["mp"]
