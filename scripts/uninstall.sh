#!/bin/sh
# Remove OfficeGuard: stop and disable the service, remove the unit and /opt/officeguard.
# Keeps /etc/officeguard (the site config) and /var/lib/officeguard (the logbook) unless PURGE=1.
# Same environment overrides as install.sh (OG_ROOT, OG_DRY_SYSTEM...).
exec "$(dirname "$0")/install.sh" uninstall "$@"
