#!/bin/sh
# Install Debian's ser2net, the serial-port server the link tests put in front of the hub
# (tests/test_links_*.py: RFC 2217 and raw TCP). Needs root and apt-get; otherwise it says
# why it cannot and exits 1 (those tests then skip with a printed reason). Safe to run
# again: an installed package is left alone. The tests run ser2net themselves, in the
# foreground, one private configuration each; no system service is used.
. "$(dirname "$0")/lib.sh"
apt_ensure ensure-ser2net "ser2net" "the ser2net link tests will skip" --no-install-recommends
