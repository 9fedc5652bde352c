"""Badge numbers: how a guard's badge is written in the config, hashed and recognised.

A badge number is what the card carries: a Wiegand 26-bit card has a facility code (8 bits)
and a card number (16 bits), printed on most cards sold in Vietnam as "188,12345" or as the
combined decimal (facility * 65536 + card, "12333113"); a 34-bit card a 32-bit number. The
config takes either form; both become the combined decimal without leading zeros, so the
same card is the same badge however the installer copied it.

A badge is as good as a code for proving who walked the round, so it is kept like one: the
config should give `badge_hash` (scrypt, the same format as `code_hash`), and neither the
number nor its hash is ever logged or echoed. `BadgeBook.identify` is slow once per badge
(scrypt), then a keyed HMAC tag remembers it, as the Authenticator does for codes.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from controller.access import codes
from controller.errors import OfficeGuardError

if TYPE_CHECKING:
    from controller.config import User

_FACILITY_CARD = re.compile(r"^\s*(\d{1,5})\s*[,/-]\s*(\d{1,5})\s*$")
_DIGITS = re.compile(r"^\s*\d{1,10}\s*$")
MAX_BADGE = 2**32 - 1  # a 34-bit card's 32 data bits


class BadgeFormatError(OfficeGuardError, ValueError):
    """A badge number that is neither digits nor "facility,card". Never holds the number."""


def normalize_badge(text: str) -> str:
    """ "188,12345" or "0012333113" -> "12333113". Raises BadgeFormatError."""
    m = _FACILITY_CARD.match(text)
    if m:
        facility, card = int(m.group(1)), int(m.group(2))
        if facility > 255 or card > 65535:
            raise BadgeFormatError('facility is 0-255 and card 0-65535 in "facility,card"')
        return str(facility * 65536 + card)
    if not _DIGITS.match(text) or int(text) > MAX_BADGE:
        raise BadgeFormatError(
            'a badge number is up to 10 digits (at most 4294967295), or "facility,card"'
        )
    return str(int(text))


def hash_badge(number: str, params: codes.ScryptParams | None = None) -> str:
    """A salted scrypt hash of a badge number, in `code_hash`'s format (`scrypt$N$r$p$...`)."""
    norm = normalize_badge(number)
    prm = params if params is not None else codes.DEFAULT_PARAMS
    salt = secrets.token_bytes(codes.SALT_BYTES)
    digest = hashlib.scrypt(
        norm.encode("ascii"),
        salt=salt,
        n=prm.n,
        r=prm.r,
        p=prm.p,
        maxmem=prm.maxmem,
        dklen=codes.HASH_BYTES,
    )
    return f"{codes.PREFIX}${prm.n}${prm.r}${prm.p}${_b64(salt)}${_b64(digest)}"


def _b64(data: bytes) -> str:
    import base64

    return base64.b64encode(data).decode("ascii").rstrip("=")


@dataclass(frozen=True)
class BadgeOwner:
    user: str
    disabled: bool


@dataclass(frozen=True)
class _Entry:
    owner: BadgeOwner
    stored: str | None  # None: a plain badge, known by its tag from the start


class BadgeBook:
    """Recognises badges. `identify(number)` -> the owner (maybe disabled) or None."""

    def __init__(self, users: Iterable[User]) -> None:
        self._key = secrets.token_bytes(32)
        self._lock = threading.Lock()
        self._tags: dict[bytes, BadgeOwner] = {}
        self._pending: list[_Entry] = []
        self.verifications = 0
        for u in users:
            owner = BadgeOwner(u.name, u.disabled)
            if u.badge is not None:
                self._tags[self._tag(u.badge)] = owner
            elif u.badge_hash is not None and codes.is_hash(u.badge_hash):
                self._pending.append(_Entry(owner, u.badge_hash))

    def __repr__(self) -> str:
        return f"BadgeBook(badges={len(self._tags) + len(self._pending)})"

    def __len__(self) -> int:
        return len(self._tags) + len(self._pending)

    def _tag(self, number: str) -> bytes:
        return hmac.new(self._key, number.encode("ascii"), hashlib.sha256).digest()

    def known(self, number: str) -> tuple[bool, BadgeOwner | None]:
        """Without scrypt: (True, owner) for a badge known already, (True, None) when no hash
        is left to try (an unknown badge), (False, None) when `identify` must run (slow: in an
        executor, off the loop that sounds the sirens)."""
        try:
            norm = normalize_badge(number)
        except BadgeFormatError:
            return True, None
        with self._lock:
            owner = self._tags.get(self._tag(norm))
            return (True, owner) if owner is not None or not self._pending else (False, None)

    def identify(self, number: str) -> BadgeOwner | None:
        """The badge's owner or None; thread-safe. An unseen badge costs one scrypt check per
        hashed badge not seen yet (tens of ms each on a Pi)."""
        try:
            norm = normalize_badge(number)
        except BadgeFormatError:
            return None
        tag = self._tag(norm)
        with self._lock:
            owner = self._tags.get(tag)
            if owner is not None:
                return owner
            candidates = list(self._pending)
        for entry in candidates:
            with self._lock:
                self.verifications += 1
            if codes.verify_code(norm, entry.stored):
                with self._lock:
                    if entry in self._pending:
                        self._pending.remove(entry)
                    self._tags[tag] = entry.owner
                return entry.owner
        return None
