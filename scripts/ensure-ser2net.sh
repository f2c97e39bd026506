#!/bin/sh
# Install Debian's ser2net, the serial-port server the link tests put in front of the hub
# (tests/test_links_*.py: RFC 2217 and raw TCP). Needs root and apt-get; otherwise it says
# why it cannot and exits 1 (those tests then skip with a printed reason). Safe to run
# again: an installed package is left alone. The tests run ser2net themselves, in the
# foreground, one private configuration each; no system service is used.
. "$(dirname "$0")/lib.sh"
PKGS="ser2net"
missing=$(apt_missing "$PKGS")
if [ -z "$missing" ]; then
    echo "ensure-ser2net: $PKGS already installed"
    exit 0
fi
apt_install ensure-ser2net "$missing" "the ser2net link tests will skip" --no-install-recommends
