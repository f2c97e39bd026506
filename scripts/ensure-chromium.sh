#!/bin/sh
# Install headless Chromium (Debian's package) for the report test
# (tests/test_record_report.py renders a session report in a real browser),
# with a font for its text. Needs root and apt-get; otherwise it says why it
# cannot and exits 1 (that test then skips with a printed reason). Safe to run
# again: when a chromium is already there it does nothing.
. "$(dirname "$0")/lib.sh"
for b in chromium chromium-browser; do
    if command -v "$b" >/dev/null 2>&1; then
        echo "ensure-chromium: $(command -v "$b") already installed"
        exit 0
    fi
done
apt_install ensure-chromium "chromium fonts-dejavu-core" "the browser test will skip"
