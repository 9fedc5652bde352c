#!/bin/sh
# `make demo`, `make test` and `make bench` start their own Mosquitto (controller/demo/mosquitto.py).
# There is no pip-installable Mosquitto: it comes from the system's packages. Run as root (as CI
# does), this installs it with apt-get where it is missing; otherwise it stops with the one
# command to run. Installing the Debian package may also start a system mosquitto service on
# port 1883: harmless, the demo and the tests use ports of their own.
set -eu

found() {
    PATH="$PATH:/usr/sbin:/usr/local/sbin" command -v mosquitto >/dev/null 2>&1 \
        && PATH="$PATH:/usr/sbin:/usr/local/sbin" command -v mosquitto_passwd >/dev/null 2>&1
}

found && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "Mosquitto is missing: installing it (apt-get install -y mosquitto)"
    apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q mosquitto
    found && exit 0
fi
echo "Mosquitto is not installed: run \`sudo apt-get install mosquitto\`" >&2
exit 1
