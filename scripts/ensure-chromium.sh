#!/bin/sh
# Install headless Chromium (Debian's package) for the report test
# (tests/test_record_report.py renders a session report in a real browser),
# with a font for its text. Needs root and apt-get; otherwise it says why it
# cannot and exits 1 (that test then skips with a printed reason). Safe to run
# again: when a chromium is already there it does nothing.
for b in chromium chromium-browser; do
    if command -v "$b" >/dev/null 2>&1; then
        echo "ensure-chromium: $(command -v "$b") already installed"
        exit 0
    fi
done
PKGS="chromium fonts-dejavu-core"
if ! command -v apt-get >/dev/null 2>&1; then
    echo "ensure-chromium: cannot install chromium: apt-get not found (not Debian/Ubuntu); the browser test will skip"
    exit 1
fi
if [ "$(id -u)" != 0 ]; then
    echo "ensure-chromium: cannot install chromium: not root (run: sudo apt-get install -y $PKGS); the browser test will skip"
    exit 1
fi
echo "ensure-chromium: installing $PKGS"
export DEBIAN_FRONTEND=noninteractive
LOG=/tmp/ensure-chromium.log
if ! apt-get install -y -q $PKGS >$LOG 2>&1; then
    apt-get update -q >>$LOG 2>&1
    if ! apt-get install -y -q $PKGS >>$LOG 2>&1; then
        echo "ensure-chromium: apt-get install $PKGS failed (log: $LOG); the browser test will skip"
        tail -n 5 $LOG
        exit 1
    fi
fi
echo "ensure-chromium: installed $PKGS"
