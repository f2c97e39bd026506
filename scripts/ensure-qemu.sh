#!/bin/sh
# Install the Debian packages the emulated-MCU tests use (tests/test_qemu_microbit.py,
# tests/test_flash.py): QEMU's micro:bit machine, Debian's MicroPython image for it, socat.
# Needs root and apt-get; otherwise it says why it cannot and exits 1 (the tests then
# skip with a printed reason). Safe to run again: installed packages are left alone.
. "$(dirname "$0")/lib.sh"
apt_ensure ensure-qemu "qemu-system-arm firmware-microbit-micropython socat" "the QEMU and PTY tests will skip" --no-install-recommends
