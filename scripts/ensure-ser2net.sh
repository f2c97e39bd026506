#!/bin/sh
# Install Debian's ser2net, the serial-port server the link tests put in front of the hub
# (tests/test_links_*.py: RFC 2217 and raw TCP). Needs root and apt-get; otherwise it says
# why it cannot and exits 1 (those tests then skip with a printed reason). Safe to run
# again: an installed package is left alone. The tests run ser2net themselves, in the
# foreground, one private configuration each; no system service is used.
PKGS="ser2net"
missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
if [ -z "$missing" ]; then
    echo "ensure-ser2net: $PKGS already installed"
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "ensure-ser2net: cannot install$missing: apt-get not found (not Debian/Ubuntu); the ser2net link tests will skip"
    exit 1
fi
if [ "$(id -u)" != 0 ]; then
    echo "ensure-ser2net: cannot install$missing: not root (run: sudo apt-get install -y$missing); the ser2net link tests will skip"
    exit 1
fi
echo "ensure-ser2net: installing$missing"
export DEBIAN_FRONTEND=noninteractive
if ! apt-get install -y -q --no-install-recommends $missing >/tmp/ensure-ser2net.log 2>&1; then
    apt-get update -q >>/tmp/ensure-ser2net.log 2>&1
    if ! apt-get install -y -q --no-install-recommends $missing >>/tmp/ensure-ser2net.log 2>&1; then
        echo "ensure-ser2net: apt-get install$missing failed (log: /tmp/ensure-ser2net.log); the ser2net link tests will skip"
        tail -n 5 /tmp/ensure-ser2net.log
        exit 1
    fi
fi
echo "ensure-ser2net: installed$missing"
