"""User codes: how a keypad code is stored in the config file and checked.

A code (4 to 8 digits) is never written to the config in the clear if it can be helped:
`officeguard hash-code` turns it into a line like

    code_hash: "scrypt$4096$8$1$<salt>$<hash>"

which is safe to keep in the file: it cannot be turned back into the code except by trying
codes one by one, and each try is made deliberately slow. The parameters are written into the
hash itself, so hashes made today keep working if the defaults are raised later.

Why these parameters (N=2**12, r=8, p=1, 4 MiB of memory per check): a keypad check must feel
instant to a guard, and with no cache one code may be checked against every user's hash, so
one check should cost roughly 50-100 ms on the slowest supported board, a Raspberry Pi 3.
Measured on the development machine (AMD EPYC, OpenSSL 3.0): N=2**12 takes ~16 ms, 2**13
~33 ms, 2**14 ~63 ms. A Pi 3 (Cortex-A53 at 1.2 GHz, LPDDR2) runs OpenSSL's scrypt about 4-6
times slower, so N=2**12 lands near 65-100 ms there; re-measure on the real board with
`python -m controller.access.codes --bench` and raise N (a power of two) on faster boards (Pi 4/5).
Honest limit: a 4-digit code has only 10,000 possibilities, so anyone who can read the config
file can still find a short code in minutes; keep the file readable by root only and prefer
6-8 digit codes. The slow hash mainly protects longer codes and the codes' reuse elsewhere.

Nothing in this module logs or echoes a code or a hash.
"""

from __future__ import annotations

import base64
import binascii
import getpass
import hashlib
import hmac
import re
import secrets
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TextIO

from controller.errors import OfficeGuardError

CODE_RE = re.compile(r"^[0-9]{4,8}$")
PREFIX = "scrypt"
SALT_BYTES = 16
HASH_BYTES = 32

# Bounds on what a stored hash may ask for, so a mistyped or hostile hash in a config file
# cannot make verification eat the Pi's memory or hang the daemon: such a hash never matches.
MAX_N = 2**20
MAX_R = 32
MAX_P = 16
MAX_MEMORY = 256 * 1024 * 1024


def _params_ok(n: object, r: object, p: object) -> bool:
    if not (isinstance(n, int) and isinstance(r, int) and isinstance(p, int)):
        return False
    if isinstance(n, bool) or isinstance(r, bool) or isinstance(p, bool):
        return False
    if not (2 <= n <= MAX_N and n & (n - 1) == 0):
        return False
    if not (1 <= r <= MAX_R and 1 <= p <= MAX_P):
        return False
    return 128 * r * (n + p) <= MAX_MEMORY


def _maxmem(n: int, r: int, p: int) -> int:
    # OpenSSL needs 128*r*(n+p+2) bytes plus a little; give it 1 MiB of slack.
    return 128 * r * (n + p + 2) + 2**20


@dataclass(frozen=True)
class ScryptParams:
    """scrypt cost parameters: n (CPU/memory cost, a power of two), r (block size),
    p (parallelism). Memory used per check is about 128 * n * r bytes."""

    n: int = 2**12
    r: int = 8
    p: int = 1

    def __post_init__(self) -> None:
        if not _params_ok(self.n, self.r, self.p):
            raise ValueError(
                f"scrypt parameters out of range: n must be a power of two from 2 to {MAX_N}, "
                f"r 1-{MAX_R}, p 1-{MAX_P}, memory at most {MAX_MEMORY // 2**20} MiB"
            )

    @property
    def maxmem(self) -> int:
        return _maxmem(self.n, self.r, self.p)


# The parameters new hashes get. Tests replace this (monkeypatch) with a cheaper setting so
# the suite stays fast; verification always uses the parameters written in the hash.
DEFAULT_PARAMS = ScryptParams()


class CodeFormatError(OfficeGuardError, ValueError):
    """A code that is not 4 to 8 digits. The message never contains the code."""


def is_valid_code(code: object) -> bool:
    """True for a string of 4 to 8 ASCII digits."""
    return isinstance(code, str) and CODE_RE.fullmatch(code) is not None


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    if not re.fullmatch(r"[A-Za-z0-9+/]+={0,2}", text):
        raise ValueError("not base64")
    text = text.rstrip("=")
    return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)


def _derive(code: str, salt: bytes, n: int, r: int, p: int, dklen: int) -> bytes:
    return hashlib.scrypt(
        code.encode("utf-8"), salt=salt, n=n, r=r, p=p, maxmem=_maxmem(n, r, p), dklen=dklen
    )


def hash_code(code: str, params: ScryptParams | None = None, *, salt: bytes | None = None) -> str:
    """A salted scrypt hash of `code`, as `scrypt$<N>$<r>$<p>$<salt b64>$<hash b64>`.

    Raises CodeFormatError (without the code in the message) unless the code is 4-8 digits.
    `salt` is for reproducible tests only; by default 16 random bytes.
    """
    if not is_valid_code(code):
        raise CodeFormatError("a code is 4 to 8 digits")
    prm = params if params is not None else DEFAULT_PARAMS
    salt = secrets.token_bytes(SALT_BYTES) if salt is None else salt
    if not isinstance(salt, bytes) or not 8 <= len(salt) <= 64:
        raise ValueError("salt must be 8 to 64 bytes")
    digest = _derive(code, salt, prm.n, prm.r, prm.p, HASH_BYTES)
    return f"{PREFIX}${prm.n}${prm.r}${prm.p}${_b64(salt)}${_b64(digest)}"


@dataclass(frozen=True, repr=False)
class ParsedHash:
    n: int
    r: int
    p: int
    salt: bytes
    digest: bytes

    def __repr__(self) -> str:
        return f"ParsedHash(n={self.n}, r={self.r}, p={self.p}, salt=<hidden>, digest=<hidden>)"


def parse_hash(stored: object) -> ParsedHash | None:
    """The parts of a stored hash, or None when it is malformed or asks for too much work."""
    if not isinstance(stored, str) or len(stored) > 512:
        return None
    parts = stored.split("$")
    if len(parts) != 6 or parts[0] != PREFIX:
        return None
    if not all(re.fullmatch(r"[1-9][0-9]{0,8}", x) for x in parts[1:4]):
        return None
    n, r, p = (int(x) for x in parts[1:4])
    if not _params_ok(n, r, p):
        return None
    try:
        salt = _unb64(parts[4])
        digest = _unb64(parts[5])
    except (ValueError, binascii.Error):
        return None
    if not 8 <= len(salt) <= 64 or not 16 <= len(digest) <= 64:
        return None
    return ParsedHash(n, r, p, salt, digest)


def is_hash(stored: object) -> bool:
    """True when `stored` is a well-formed hash this module can verify against."""
    return parse_hash(stored) is not None


def verify_code(code: object, stored: object) -> bool:
    """True when `code` is the code behind `stored`. Compares in constant time; never raises:
    a malformed hash, a non-string code or any scrypt failure is simply False."""
    if not isinstance(code, str) or len(code) > 64:
        return False
    parsed = parse_hash(stored)
    if parsed is None:
        return False
    try:
        computed = _derive(code, parsed.salt, parsed.n, parsed.r, parsed.p, len(parsed.digest))
    except (ValueError, MemoryError, OverflowError, UnicodeError):
        return False
    return hmac.compare_digest(computed, parsed.digest)


# ----------------------------------------------------------------------------- hash-code CLI

EXIT_OK = 0
EXIT_BAD_INPUT = 65  # EX_DATAERR


def hash_code_interactive(
    stdin: TextIO | None = None,
    tty: bool | TextIO | None = None,
    *,
    out: TextIO | None = None,
    err: TextIO | None = None,
    prompt: Callable[[str], str] = getpass.getpass,
    params: ScryptParams | None = None,
) -> int:
    """`officeguard hash-code`: read a code and print only its hash (for `code_hash:`).

    On a terminal (`tty` true, by default when stdin is a terminal) the code is asked twice
    without echo (getpass) and must match; otherwise one line is read from `stdin` (for
    scripts: `echo 2468 | officeguard hash-code`). The code must be 4-8 digits. Returns the
    exit status: 0, or 65 with a message on `err` that never repeats the code.
    A text stream given as `tty` is taken as the output stream (the terminal is then detected
    from `stdin`), so `hash_code_interactive(sys.stdin, sys.stdout)` works too.
    """
    if tty is not None and not isinstance(tty, bool):
        # called as hash_code_interactive(stdin, stdout): the second argument is the output
        out = tty if out is None else out
        tty = None
    stdin = sys.stdin if stdin is None else stdin
    out = sys.stdout if out is None else out
    err = sys.stderr if err is None else err
    if tty is None:
        try:
            tty = stdin.isatty()
        except (AttributeError, ValueError, OSError):
            tty = False
    try:
        if tty:
            first = prompt("Code (4-8 digits): ")
            if not is_valid_code(first):
                print("error: a code is 4 to 8 digits", file=err)
                return EXIT_BAD_INPUT
            second = prompt("Repeat the code: ")
            if not hmac.compare_digest(first.encode(), second.encode()):
                print("error: the two entries differ; nothing written", file=err)
                return EXIT_BAD_INPUT
            code = first
        else:
            line = stdin.readline(64)
            code = line.rstrip("\r\n")
            if not is_valid_code(code):
                print("error: a code is 4 to 8 digits (one line on stdin)", file=err)
                return EXIT_BAD_INPUT
    except (EOFError, KeyboardInterrupt):
        print("error: no code read", file=err)
        return EXIT_BAD_INPUT
    except UnicodeDecodeError:
        print("error: a code is 4 to 8 digits", file=err)
        return EXIT_BAD_INPUT
    print(hash_code(code, params), file=out)
    return EXIT_OK


def _bench(params: ScryptParams, rounds: int = 5) -> float:
    """Milliseconds per verification with `params` on this machine."""
    stored = hash_code("12345678", params)
    t0 = time.perf_counter()
    for _ in range(rounds):
        verify_code("12345678", stored)
    return (time.perf_counter() - t0) / rounds * 1000.0


if __name__ == "__main__":  # pragma: no cover - a measuring aid for installers
    if "--bench" in sys.argv[1:]:
        for exp in range(10, 16):
            prm = ScryptParams(n=2**exp)
            print(f"N=2**{exp} r={prm.r} p={prm.p}: {_bench(prm):7.1f} ms per check")
    else:
        sys.exit(hash_code_interactive())
