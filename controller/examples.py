"""The secrets this project publishes as examples, so that none of them guards a real site.

The example configs (config/*.yaml, and the reference site they copy) carry codes and code
hashes that the README and the demo use in the open: with them in a production site.yaml
anyone who has read the documentation can disarm it. Only fingerprints are kept here (the
SHA-256 of the exact string in the file, or of a key file's stripped contents), and
tests/daemon/test_example_secrets.py checks that every secret in every shipped config is among them,
so a new example cannot slip by. A published code hashed again with a fresh salt is not caught
here: that takes choosing the code on purpose.
"""

from __future__ import annotations

import hashlib

from controller.config import SiteConfig

EXAMPLE_FINGERPRINTS: frozenset[str] = frozenset(
    {
        # config/demo.yaml and the reference site: plain codes of bao-ve-1, giam-doc and its duress code
        "a1fb4e703a9ef1fa4936801721ff285a97ac85330856674412e054892afe6972",
        "f3e055913a0b1eb0f07317896f9a1bc466b9a50db85a7f882f3ffde9ffb23aca",
        "40207240ec43f8d817b96f2ee3e78aacd508dd2bea5634bb3284157eb824839a",
        # config/office-a.yaml: the same three codes as scrypt hashes
        "9c00e6b6fae6322f4597a190715c6f949f5904a7b425473ae40561c9a1498b08",
        "2cc0b35d1bf2151d69c6743578a3b2a3551f2b71faeb56af713e64b63661169f",
        "f769ef01f74d67b9645f8d8142fb818d6ecbbe95aa43cbe0a463dcec740de6fe",
    }
)

SECRET_FIELDS = ("code", "code_hash", "duress_code", "duress_code_hash")
SECRET_FILES = ("password_file", "command_key_file")


def fingerprint(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def secrets_in(cfg: SiteConfig) -> list[tuple[str, str]]:
    """(config path, secret) for every code and hash in the file, and the contents of the key
    and password files it names where they can be read."""
    out: list[tuple[str, str]] = []
    for i, user in enumerate(cfg.users):
        for name in SECRET_FIELDS:
            value = getattr(user, name)
            if value is not None:
                out.append((f"users[{i}].{name}", value))
    for name in SECRET_FILES:
        path = getattr(cfg.mqtt, name)
        if path is None:
            continue
        try:
            with open(path, encoding="utf-8") as f:
                out.append((f"mqtt.{name}", f.read().strip()))
        except (OSError, UnicodeDecodeError):
            continue  # preflight reports the unreadable file
    for i, cam in enumerate(cfg.cameras):
        if cam.credentials_file is None:
            continue
        try:
            with open(cam.credentials_file, encoding="utf-8") as f:
                _, _, password = f.readline().strip().partition(":")
        except (OSError, UnicodeDecodeError):
            continue  # the camera is a trouble, and check-config says why
        if password:
            out.append((f"cameras[{i}].credentials_file", password))
    return out


def example_secrets(cfg: SiteConfig) -> list[str]:
    """The config paths whose secret is a published example (never the secret itself)."""
    return [path for path, value in secrets_in(cfg) if fingerprint(value) in EXAMPLE_FINGERPRINTS]
