"""What a site's MQTT settings expose to others on the broker and the network, said before it
runs: `check-config` prints these as warnings, and the daemon logs them at start.

* Plaintext MQTT (`mqtt://`) to a broker that is not on this machine, with a user name or a
  password: the password crosses the network in clear, and so does every code in a command.
* `require_signature` on (the default) without a command key: disarm, bypass and silence over
  MQTT are refused until the site has one.
* `require_signature: false`: a code alone disarms remotely; whoever can read `P/cmd` learns
  the codes in it and can replay the command later.

docs/security.md says what each means and how to close it.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from urllib.parse import urlsplit

from controller.config import Mqtt
from controller.remote.commands import SIGNED_ONLY

LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})


@dataclass(frozen=True)
class Exposure:
    path: str
    message: str
    blocks_ok: bool  # check-config should not say OK with it


def is_loopback(host: str) -> bool:
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def plaintext_credentials(m: Mqtt) -> Exposure | None:
    u = urlsplit(m.url)
    if u.scheme not in ("mqtt", "tcp") or not u.hostname or is_loopback(u.hostname):
        return None
    if m.username is None and m.password_file is None:
        return None
    return Exposure(
        "mqtt.url",
        f"plaintext MQTT to {u.hostname} with a login: the password and every code in a"
        " remote command cross the network in clear; use mqtts:// (docs/security.md)",
        True,
    )


def signature_exposure(m: Mqtt) -> Exposure | None:
    actions = ", ".join(sorted(SIGNED_ONLY))
    if not m.require_signature:
        return Exposure(
            "mqtt.require_signature",
            f"false: {actions} over MQTT take a code alone; anyone who can read P/cmd learns"
            " the codes and can replay a command later; keep P/cmd readable by this site"
            " alone (docs/security.md)",
            False,
        )
    if m.command_key_file is None:
        return Exposure(
            "mqtt.command_key_file",
            f"not set: {actions} over MQTT are refused until the site has a command key"
            " (the installer makes /etc/officeguard/command.key)",
            False,
        )
    return None


def exposures(m: Mqtt) -> list[Exposure]:
    return [e for e in (plaintext_credentials(m), signature_exposure(m)) if e is not None]
