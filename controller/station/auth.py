"""Operators: argon2 password hashes, roles, default passwords refused, login throttling.

Roles: `operator` works the queue; `supervisor` also sees what is acknowledged and not closed
past the limit; `admin` also manages operators. A password is refused when it is short, equal to
the login or one of the well-known defaults; the station refuses to start while any operator's
password is one of those defaults (`defaults_in_use`).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from controller.errors import OfficeGuardError
from controller.station.store import Store

ROLES = ("operator", "supervisor", "admin")
MIN_PASSWORD = 10
DEFAULT_PASSWORDS = (
    "admin",
    "administrator",
    "password",
    "password1",
    "officeguard",
    "changeme",
    "123456",
    "12345678",
    "1234567890",
    "qwerty",
    "station",
    "operator",
    "supervisor",
)
# login throttling: this many failures within the window (per login and per client address)
# locks that login / address out for the lockout, doubled on each further failure up to an hour
THROTTLE_FAILURES = 5
THROTTLE_WINDOW_S = 15 * 60.0
THROTTLE_LOCKOUT_S = 60.0
THROTTLE_MAX_S = 3600.0

_hasher = PasswordHasher()
_DUMMY = _hasher.hash("an-operator-that-does-not-exist")


class OperatorError(OfficeGuardError, ValueError):
    """An operator or password the station refuses (the message says why)."""


def weak_password(login: str, password: str) -> str | None:
    """Why `password` is refused, or None."""
    if len(password) < MIN_PASSWORD:
        return f"a password has at least {MIN_PASSWORD} characters"
    low = password.lower()
    if low in DEFAULT_PASSWORDS or low == login.lower():
        return "a default password (or the login itself) is refused"
    return None


def hash_password(login: str, password: str) -> str:
    why = weak_password(login, password)
    if why:
        raise OperatorError(why)
    return _hasher.hash(password)


def verify(password_hash: str | None, password: str) -> bool:
    try:
        return _hasher.verify(password_hash or _DUMMY, password) and password_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def set_operator(
    store: Store, login: str, role: str, password: str | None, disabled: bool = False
) -> None:
    login = login.strip()
    if not login or len(login) > 100 or any(c.isspace() for c in login):
        raise OperatorError("a login is 1-100 characters without spaces")
    if role not in ROLES:
        raise OperatorError(f"a role is one of {', '.join(ROLES)}")
    store.put_operator(
        login, hash_password(login, password) if password is not None else None, role, disabled
    )


def authenticate(store: Store, login: str, password: str) -> dict[str, Any] | None:
    """The operator, if the login exists, is enabled and the password is right. Costs one
    argon2 verification either way, so a wrong login is not told from a wrong password."""
    op = store.operator(login)
    ok = verify(op["password_hash"] if op else None, password)
    if not ok or op is None or op["disabled"]:
        return None
    return op


def defaults_in_use(store: Store) -> list[str]:
    """The operators whose password is a well-known default (or their own login)."""
    found = []
    for o in store.operators():
        full = store.operator(o["login"])
        if full is None or full["disabled"]:
            continue
        for pw in (*DEFAULT_PASSWORDS, o["login"]):
            if verify(full["password_hash"], pw):
                found.append(o["login"])
                break
    return found


@dataclass
class Throttle:
    """Failed logins by key (a login, a client address) on the clock passed in."""

    failures: int = THROTTLE_FAILURES
    window_s: float = THROTTLE_WINDOW_S
    lockout_s: float = THROTTLE_LOCKOUT_S
    _fails: dict[str, deque[float]] = field(default_factory=dict)
    _until: dict[str, float] = field(default_factory=dict)

    def locked(self, key: str, now: float) -> float:
        """Seconds until `key` may try again (0: now)."""
        return max(0.0, self._until.get(key, 0.0) - now)

    def failed(self, key: str, now: float) -> None:
        q = self._fails.setdefault(key, deque())
        q.append(now)
        while q and q[0] < now - self.window_s:
            q.popleft()
        over = len(q) - self.failures
        if over >= 0:
            self._until[key] = now + min(THROTTLE_MAX_S, self.lockout_s * 2**over)
        if len(self._fails) > 100_000:  # bounded under a spray of logins
            self._fails.pop(next(iter(self._fails)))

    def succeeded(self, key: str) -> None:
        self._fails.pop(key, None)
        self._until.pop(key, None)
