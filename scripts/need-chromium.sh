#!/bin/sh
# The station's browser test (tests/station/test_browser.py) drives Chromium from the system's
# packages through Selenium and /usr/bin/chromedriver (never a downloaded browser). Run as root
# (as CI does), this installs both with apt-get where they are missing; otherwise it stops with
# the one command to run.
set -eu

found() {
    command -v chromium >/dev/null 2>&1 && command -v chromedriver >/dev/null 2>&1
}

found && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "Chromium is missing: installing it (apt-get install -y chromium chromium-driver)"
    apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium chromium-driver
    found && exit 0
fi
echo "Chromium is not installed: run \`sudo apt-get install chromium chromium-driver\`" >&2
exit 1
