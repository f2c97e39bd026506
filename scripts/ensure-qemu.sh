#!/bin/sh
# Install the Debian packages the emulated-MCU tests use (tests/test_qemu_microbit.py,
# tests/test_flash.py): QEMU's micro:bit machine, Debian's MicroPython image for it, socat.
# Needs root and apt-get; otherwise it says why it cannot and exits 1 (the tests then
# skip with a printed reason). Safe to run again: installed packages are left alone.
PKGS="qemu-system-arm firmware-microbit-micropython socat"
missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
if [ -z "$missing" ]; then
    echo "ensure-qemu: $PKGS already installed"
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "ensure-qemu: cannot install$missing: apt-get not found (not Debian/Ubuntu); the QEMU and PTY tests will skip"
    exit 1
fi
if [ "$(id -u)" != 0 ]; then
    echo "ensure-qemu: cannot install$missing: not root (run: sudo apt-get install -y$missing); the QEMU and PTY tests will skip"
    exit 1
fi
echo "ensure-qemu: installing$missing"
export DEBIAN_FRONTEND=noninteractive
if ! apt-get install -y -q --no-install-recommends $missing >/tmp/ensure-qemu.log 2>&1; then
    apt-get update -q >>/tmp/ensure-qemu.log 2>&1
    if ! apt-get install -y -q --no-install-recommends $missing >>/tmp/ensure-qemu.log 2>&1; then
        echo "ensure-qemu: apt-get install$missing failed (log: /tmp/ensure-qemu.log); the QEMU and PTY tests will skip"
        tail -n 5 /tmp/ensure-qemu.log
        exit 1
    fi
fi
echo "ensure-qemu: installed$missing"
