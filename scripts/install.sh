#!/bin/sh
# OfficeGuard installer for Raspberry Pi OS (Debian with systemd). Run as root from a checkout:
#
#   sudo make install            # or: sudo scripts/install.sh install
#   sudo make uninstall          # keeps /etc/officeguard and the logbook in /var/lib/officeguard
#   sudo make uninstall PURGE=1  # removes those too
#
# What `install` does (every step is skipped when already done, so a second run changes nothing
# and says so):
#   - the system user `officeguard` (no login shell, no home), in the groups gpio and dialout
#     where those groups exist;
#   - a venv in /opt/officeguard/venv (--system-site-packages, so apt's python3-lgpio is
#     visible) with this checkout installed; rebuilt only when the checkout's code changed;
#   - /etc/officeguard (0750 root:officeguard); site.yaml copied from config/office-a.yaml ONLY
#     when missing (an installer's config is never overwritten), 0640 root:officeguard; secrets
#     (mqtt.pass, command.key, *.key, *.pass, *.pem) set to 0640 root:officeguard; the site's
#     command key (command.key: 32 random bytes from the kernel, as 64 hex digits) made when
#     missing, the key that signs disarm/bypass/silence commands (docs/security.md);
#   - /var/lib/officeguard (0750 officeguard:officeguard): the logbook;
#   - the unit in /etc/systemd/system/officeguard.service (SupplementaryGroups limited to the
#     groups that exist); `officeguard check-config` on site.yaml (it refuses the published
#     example codes, missing secret files, no GPIO); then, only once it passes and where systemd
#     runs, `systemctl daemon-reload` and `systemctl enable --now officeguard` (restart when the
#     code, the unit or nothing but a stopped service changed).
#
# Everything is overridable through the environment, for packaging and for the tests:
#   OG_ROOT        root prefix for every path below (DESTDIR-style), default "" (the real /)
#   OG_PREFIX      /opt/officeguard         OG_ETC   /etc/officeguard
#   OG_STATE       /var/lib/officeguard     OG_UNITDIR  /etc/systemd/system
#   OG_USER        officeguard              OG_GROUP    (same as OG_USER)
#   OG_PYTHON      python3 (the interpreter the venv is made from)
#   OG_PIP_ARGS    extra pip arguments (e.g. --no-index --find-links DIR on a site without network)
#   OG_EXTRAS      extras of the package to install too, e.g. "pi" (lgpio from PyPI instead of
#                  apt's python3-lgpio)
#   OG_CONFIG_SRC  config/office-a.yaml of this checkout
#   OG_DRY_SYSTEM=1  do not touch the machine's users or systemd: print useradd/usermod/
#                    systemctl (and chown to a user that does not exist) instead of running them
#   PURGE=1        (uninstall) also remove the config and the logbook
set -eu
# the venv must be readable by the service user whatever umask sudo gives us; files that hold
# secrets get their own modes below
umask 022

SRC=$(cd "$(dirname "$0")/.." && pwd)
OG_ROOT=${OG_ROOT:-}
OG_ROOT=${OG_ROOT%/}
PREFIX=${OG_PREFIX:-/opt/officeguard}
ETC=${OG_ETC:-/etc/officeguard}
STATE=${OG_STATE:-/var/lib/officeguard}
UNITDIR=${OG_UNITDIR:-/etc/systemd/system}
USER_NAME=${OG_USER:-officeguard}
GROUP_NAME=${OG_GROUP:-$USER_NAME}
PYTHON=${OG_PYTHON:-python3}
PIP_ARGS=${OG_PIP_ARGS:-}
EXTRAS=${OG_EXTRAS:-}
CONFIG_SRC=${OG_CONFIG_SRC:-$SRC/config/office-a.yaml}
DRY=${OG_DRY_SYSTEM:-0}
PURGE=${PURGE:-0}
UNIT=officeguard.service
WANTED_GROUPS="gpio dialout"

CHANGES=0

say() { printf '%s\n' "officeguard-install: $*"; }
changed() { CHANGES=$((CHANGES + 1)); say "$*"; }
die() { printf '%s\n' "officeguard-install: error: $*" >&2; exit 1; }

# a command that changes the machine's users or services: printed instead when OG_DRY_SYSTEM=1
system() {
    if [ "$DRY" = 1 ]; then
        say "would run: $*"
    else
        "$@"
    fi
}

# the same, counted as a change when it ran
system_change() { # system_change MESSAGE COMMAND...
    msg=$1
    shift
    if [ "$DRY" = 1 ]; then
        say "would run: $*"
    else
        "$@"
        changed "$msg"
    fi
}

have_user() { getent passwd "$1" >/dev/null 2>&1; }
have_group() { getent group "$1" >/dev/null 2>&1; }

existing_groups() {
    out=""
    for g in $WANTED_GROUPS; do
        if have_group "$g"; then out="$out $g"; fi
    done
    printf '%s' "${out# }"
}

# owner and mode of a path, changed only when they differ
own() { # own PATH USER GROUP MODE
    path=$1 u=$2 g=$3 mode=$4
    cur_mode=$(stat -c '%a' "$path")
    if [ "$cur_mode" != "$mode" ]; then
        chmod "$mode" "$path"
        changed "mode $mode on $path"
    fi
    if have_user "$u" && have_group "$g" && [ "$(id -u)" = 0 ]; then
        cur=$(stat -c '%U:%G' "$path")
        if [ "$cur" != "$u:$g" ]; then
            chown "$u:$g" "$path"
            changed "owner $u:$g on $path"
        fi
    else
        # a dry run (the user was not created) or an unprivileged install into OG_ROOT
        say "would run: chown $u:$g $path"
    fi
}

make_dir() { # make_dir PATH USER GROUP MODE
    if [ ! -d "$1" ]; then
        mkdir -p "$1"
        chmod "$4" "$1"
        changed "created $1"
    fi
    own "$@"
}

# install a file whose content we own (replaced when it differs)
put_file() { # put_file SRC DST USER GROUP MODE
    src=$1 dst=$2
    shift 2
    if [ -f "$dst" ] && cmp -s "$src" "$dst"; then
        :
    else
        if [ -f "$dst" ]; then what="updated"; else what="installed"; fi
        cp "$src" "$dst.og-new"
        mv -f "$dst.og-new" "$dst"
        changed "$what $dst"
    fi
    own "$dst" "$@"
}

source_hash() {
    (
        cd "$SRC"
        find controller hardware -type f \( -name '*.py' -o -name '*.json' \) | LC_ALL=C sort |
            xargs sha256sum
        sha256sum pyproject.toml
        "$PYTHON" -c 'import sys; print(sys.version)'
        printf 'extras=%s\n' "$EXTRAS"
    ) | sha256sum | cut -d' ' -f1
}

# the unit as it is installed: the paths and user of this installation, existing groups only
render_unit() {
    groups=$(existing_groups)
    sed -e "s|/opt/officeguard|$PREFIX|g" \
        -e "s|/etc/officeguard/|$ETC/|g" \
        -e "s|--state-dir /var/lib/officeguard|--state-dir $STATE|" \
        -e "s|^User=.*|User=$USER_NAME|" \
        -e "s|^Group=.*|Group=$GROUP_NAME|" \
        "$SRC/systemd/$UNIT" |
        if [ -n "$groups" ]; then
            sed -e "s|^SupplementaryGroups=.*|SupplementaryGroups=$groups|"
        else
            sed -e '/^SupplementaryGroups=/d'
        fi
}

# ------------------------------------------------------------------------------------ install

do_user() {
    groups=$(existing_groups)
    if have_user "$USER_NAME"; then
        say "user $USER_NAME exists"
    else
        nologin=/usr/sbin/nologin
        [ -x "$nologin" ] || nologin=/bin/false
        system_change "created system user $USER_NAME" \
            useradd --system --user-group --no-create-home --home-dir /nonexistent \
            --shell "$nologin" --comment "OfficeGuard alarm controller" "$USER_NAME"
    fi
    for g in $groups; do
        if have_user "$USER_NAME" && id -nG "$USER_NAME" | tr ' ' '\n' | grep -qx "$g"; then
            continue
        fi
        system_change "added $USER_NAME to group $g" usermod -a -G "$g" "$USER_NAME"
    done
    for g in $WANTED_GROUPS; do
        case " $groups " in
            *" $g "*) ;;
            *) say "group $g does not exist here: not used (on a Raspberry Pi it does)" ;;
        esac
    done
}

do_venv() {
    venv=$R_PREFIX/venv
    want=$(source_hash)
    stamp=$R_PREFIX/.source-hash
    if [ -x "$venv/bin/officeguard" ] && [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
        say "venv $venv is up to date"
        return
    fi
    if [ ! -x "$venv/bin/python" ]; then
        "$PYTHON" -m venv --system-site-packages "$venv" ||
            die "cannot make a venv with $PYTHON (on Raspberry Pi OS: apt install python3-venv)"
    fi
    say "installing OfficeGuard from $SRC into $venv (a minute or two on a Pi)"
    # build from a copy: pip writes build/ and *.egg-info beside the sources, and the checkout
    # belongs to whoever cloned it, not to root
    build=$(mktemp -d)
    cp -R "$SRC/pyproject.toml" "$SRC/README.md" "$SRC/controller" "$SRC/hardware" "$build/"
    find "$build" -name __pycache__ -prune -exec rm -rf {} +
    target=$build
    [ -z "$EXTRAS" ] || target="${build}[${EXTRAS}]"
    # shellcheck disable=SC2086 # PIP_ARGS is a list of words on purpose
    if ! "$venv/bin/python" -m pip install --quiet --disable-pip-version-check $PIP_ARGS "$target"; then
        rm -rf "$build"
        die "pip could not install OfficeGuard into $venv"
    fi
    rm -rf "$build"
    case $(uname -m) in
        aarch64 | armv7l | armv6l)
            if ! "$venv/bin/python" -c 'import lgpio' 2>/dev/null; then
                say "warning: lgpio is not importable in $venv: the GPIO pins will not work."
                say "  apt install python3-lgpio (seen through --system-site-packages), or OG_EXTRAS=pi"
            fi
            ;;
    esac
    printf '%s\n' "$want" >"$stamp"
    CODE_CHANGED=1
    changed "installed OfficeGuard $("$venv/bin/officeguard" --version 2>/dev/null | cut -d' ' -f2) into $venv"
}

do_config() {
    make_dir "$R_ETC" root "$GROUP_NAME" 750
    site=$R_ETC/site.yaml
    if [ -e "$site" ]; then
        say "keeping the existing $site"
    else
        [ -f "$CONFIG_SRC" ] || die "no example config at $CONFIG_SRC"
        (umask 077 && cp "$CONFIG_SRC" "$site.og-new") # never readable by others, not even briefly
        chmod 640 "$site.og-new"
        mv "$site.og-new" "$site"
        changed "installed $site from $(basename "$CONFIG_SRC"): edit it for this site"
    fi
    own "$site" root "$GROUP_NAME" 640
    key=$R_ETC/command.key
    if [ ! -e "$key" ]; then
        # the site's own key for signed commands; the office's console gets a copy (by hand,
        # never over the broker): docs/security.md
        (umask 077 && od -An -tx1 -N32 /dev/urandom | tr -d ' \n' >"$key.og-new" && echo >>"$key.og-new")
        [ "$(wc -c <"$key.og-new")" -eq 65 ] || die "could not make $key from /dev/urandom"
        chmod 640 "$key.og-new"
        mv "$key.og-new" "$key"
        changed "made the site's command key $ETC/command.key: give the office a copy"
    fi
    for f in "$R_ETC"/*; do
        [ -f "$f" ] || continue
        case $(basename "$f") in
            site.yaml) ;;
            *.pass | *.key | *.pem | *.crt | *.yaml | *.yml | *.secret) own "$f" root "$GROUP_NAME" 640 ;;
            *) ;;
        esac
    done
    # the broker password: typed at the terminal, never on a command line (shell history, ps)
    if [ ! -e "$R_ETC/mqtt.pass" ]; then
        say "no $ETC/mqtt.pass yet: if the config names it, type it in with"
        say "  sudo sh -c 'umask 027; stty -echo; head -n 1 > $ETC/mqtt.pass; stty echo'"
        say "  and run this again (it sets the file to 0640 root:$GROUP_NAME)"
    fi
}

do_state() {
    make_dir "$R_STATE" "$USER_NAME" "$GROUP_NAME" 750
}

do_unit() {
    tmp=$(mktemp)
    render_unit >"$tmp"
    mkdir -p "$R_UNITDIR"
    before=$CHANGES
    put_file "$tmp" "$R_UNITDIR/$UNIT" root root 644
    rm -f "$tmp"
    [ "$CHANGES" = "$before" ] || UNIT_CHANGED=1
    doc=$R_PREFIX/README.md
    put_file "$SRC/README.md" "$doc" root root 644
}

do_check() {
    cli=$R_PREFIX/venv/bin/officeguard
    say "checking $ETC/site.yaml"
    if "$cli" check-config --strict -c "$R_ETC/site.yaml"; then
        CONFIG_OK=1
    else
        CONFIG_OK=0
        say "the config has problems (listed above): fix $ETC/site.yaml, then run this again"
    fi
}

# systemctl can be used (or, in a dry run, printed)
systemd_usable() {
    [ "$DRY" = 1 ] && return 0
    [ -z "$OG_ROOT" ] && [ -d /run/systemd/system ]
}

do_enable() {
    if cmp -s "$R_ETC/site.yaml" "$CONFIG_SRC"; then
        # the first install: the example's users and codes are public, never guard a site with them
        say "$ETC/site.yaml is still the example: set the site id, pins, users (code_hash from"
        say "  '$PREFIX/venv/bin/officeguard hash-code') and broker, then run this again to start it"
        return 0
    fi
    if [ "$CONFIG_OK" != 1 ]; then
        # check-config --strict refuses the published example codes, secret files
        # the config names but that are missing, no GPIO, pins the Pi keeps for itself
        say "not enabling the service until $ETC/site.yaml passes check-config"
        return 1
    fi
    if ! systemd_usable; then
        if [ -n "$OG_ROOT" ]; then
            say "installed under OG_ROOT=$OG_ROOT: enable it on the target with"
        else
            say "systemd is not running here: start the service with"
        fi
        say "  systemctl daemon-reload && systemctl enable --now officeguard"
        return 0
    fi
    if [ "$DRY" = 1 ]; then
        system systemctl enable --now "$UNIT"
        return 0
    fi
    if ! systemctl is-enabled --quiet "$UNIT" 2>/dev/null; then
        systemctl enable --now "$UNIT"
        changed "enabled and started $UNIT"
    elif [ "$CODE_CHANGED" = 1 ] || [ "$UNIT_CHANGED" = 1 ]; then
        systemctl restart "$UNIT"
        changed "restarted $UNIT (new code or unit)"
    elif ! systemctl is-active --quiet "$UNIT"; then
        systemctl start "$UNIT"
        changed "started $UNIT"
    else
        say "$UNIT is enabled and running (after editing site.yaml: systemctl reload officeguard)"
    fi
}

install_all() {
    CODE_CHANGED=0 UNIT_CHANGED=0 CONFIG_OK=0
    do_user
    make_dir "$R_PREFIX" root root 755
    do_venv
    do_config
    do_state
    do_unit
    if [ "$UNIT_CHANGED" = 1 ] && systemd_usable; then
        system systemctl daemon-reload
    fi
    do_check
    rc=0
    do_enable || rc=$?
    if [ "$CHANGES" = 0 ]; then
        say "nothing changed: OfficeGuard is installed and up to date"
    else
        say "done: $CHANGES change(s)"
    fi
    return "$rc"
}

# ---------------------------------------------------------------------------------- uninstall

remove() {
    if [ -e "$1" ] || [ -L "$1" ]; then
        rm -rf "$1"
        changed "removed $1"
    fi
}

uninstall_all() {
    if [ -e "$R_UNITDIR/$UNIT" ]; then
        if systemd_usable; then
            system systemctl disable --now "$UNIT"
        fi
    fi
    remove "$R_UNITDIR/$UNIT"
    if systemd_usable; then
        system systemctl daemon-reload
    fi
    remove "$R_PREFIX"
    if [ "$PURGE" = 1 ]; then
        remove "$R_ETC"
        remove "$R_STATE"
        if have_user "$USER_NAME"; then
            system_change "removed user $USER_NAME" userdel "$USER_NAME"
        fi
    else
        [ -e "$R_ETC" ] && say "kept $ETC (the site config; PURGE=1 removes it)"
        [ -e "$R_STATE" ] && say "kept $STATE (the logbook; PURGE=1 removes it)"
        have_user "$USER_NAME" && say "kept user $USER_NAME (PURGE=1 removes it)"
    fi
    if [ "$CHANGES" = 0 ]; then
        say "nothing to remove"
    else
        say "done: $CHANGES change(s)"
    fi
}

# -------------------------------------------------------------------------------------- main

R_PREFIX=$OG_ROOT$PREFIX
R_ETC=$OG_ROOT$ETC
R_STATE=$OG_ROOT$STATE
R_UNITDIR=$OG_ROOT$UNITDIR

if [ "$(id -u)" != 0 ] && [ -z "$OG_ROOT" ]; then
    die "run as root: sudo make ${1:-install} (or set OG_ROOT to install into a folder)"
fi

case ${1:-install} in
    install) install_all ;;
    uninstall) uninstall_all ;;
    unit) render_unit ;;
    *) die "usage: $0 [install|uninstall|unit]" ;;
esac
