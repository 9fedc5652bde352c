"""One snapshot from an IP camera over HTTP(S), bounded in time and memory.

`fetch_snapshot` asks the camera's snapshot URL with basic or digest authentication (httpx),
follows at most `MAX_REDIRECTS` redirects, verifies TLS (the system's CAs, or the camera's
`ca_file`), streams the body and stops reading once it passes `max_image` bytes (a 50 MB
answer is never held whole), and gives up after the camera's `timeout` for the whole exchange.
What comes back must look like a JPEG: SOI at the start, EOI at the end, a plausible size. It
needs no image library.

Every way it fails is a `SnapshotError` with a short `reason` (for the trouble and the status)
and a sentence; a credential never appears in either.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import httpx

from controller.errors import OfficeGuardError

if TYPE_CHECKING:
    from controller.config import Camera

MAX_REDIRECTS = 3
MIN_JPEG = 125  # the smallest JPEG a camera could send (a tiny image still has its tables)
SOI = b"\xff\xd8\xff"
EOI = b"\xff\xd9"

Reason = Literal[
    "credentials", "auth", "timeout", "too_big", "redirects", "tls", "not_jpeg", "http", "unreachable",
    "onvif",
]


class SnapshotError(OfficeGuardError):
    """A snapshot could not be had; `reason` says which way, the message says it to a person."""

    def __init__(self, reason: Reason, message: str) -> None:
        super().__init__(message)
        self.reason: Reason = reason


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str

    def __repr__(self) -> str:  # never shown, even in a traceback's locals
        return f"Credentials(username={self.username!r}, password=***)"


def read_credentials(path: str | None) -> Credentials | None:
    """`user:password` from the camera's root-only credentials file (first line)."""
    if path is None:
        return None
    try:
        with open(path, encoding="utf-8") as f:
            line = f.readline().strip()
    except (OSError, UnicodeDecodeError) as e:
        why = getattr(e, "strerror", None) or "not UTF-8 text"
        raise SnapshotError("credentials", f"cannot read the credentials file {path}: {why}") from e
    user, sep, password = line.partition(":")
    if not sep or not user:
        raise SnapshotError("credentials", f"the credentials file {path} is not one line user:password")
    return Credentials(user, password)


def jpeg_problem(data: bytes, max_size: int) -> str | None:
    """Why `data` is not a JPEG we keep, or None when it is one."""
    if len(data) < MIN_JPEG:
        return f"not a JPEG ({len(data)} bytes)"
    if len(data) > max_size:
        return f"answer over {max_size} bytes"
    if not data.startswith(SOI):
        return f"not a JPEG (starts {data[:4].hex()})"
    if not data.rstrip(b"\0\r\n").endswith(EOI):
        return "not a whole JPEG (no end-of-image marker)"
    return None


def _auth(cam: Camera, creds: Credentials | None) -> httpx.Auth | None:
    if cam.auth == "none" or creds is None:
        return None
    if cam.auth == "basic":
        return httpx.BasicAuth(creds.username, creds.password)
    return httpx.DigestAuth(creds.username, creds.password)


def _verify(cam: Camera) -> ssl.SSLContext | bool:
    if cam.ca_file is None:
        return True
    try:
        return ssl.create_default_context(cafile=cam.ca_file)
    except (OSError, ssl.SSLError) as e:
        raise SnapshotError("tls", f"cannot load ca_file {cam.ca_file}: {e}") from e


def make_client(cam: Camera) -> httpx.AsyncClient:
    """A client for one camera: TLS verified, redirects bounded, no proxy from the environment."""
    seconds = cam.timeout.total_seconds()
    return httpx.AsyncClient(
        verify=_verify(cam),
        timeout=httpx.Timeout(seconds),
        follow_redirects=True,
        max_redirects=MAX_REDIRECTS,
        trust_env=False,
        headers={"Accept": "image/jpeg", "Accept-Encoding": "identity"},
    )


@contextlib.asynccontextmanager
async def guard_http(cam: Camera) -> AsyncIterator[None]:
    """One exchange with `cam` within its timeout, every network failure a SnapshotError."""
    try:
        async with asyncio.timeout(cam.timeout.total_seconds()):
            yield
    except TimeoutError:
        raise SnapshotError("timeout", f"no whole answer within {cam.timeout.total_seconds():g} s") from None
    except httpx.TooManyRedirects:
        raise SnapshotError("redirects", f"more than {MAX_REDIRECTS} redirects") from None
    except httpx.TimeoutException:
        raise SnapshotError("timeout", f"no answer within {cam.timeout.total_seconds():g} s") from None
    except httpx.ConnectError as e:
        cause = e.__context__ or e.__cause__
        if isinstance(cause, ssl.SSLError) or "CERTIFICATE" in str(e).upper():
            raise SnapshotError("tls", f"TLS refused: {_short(e)}") from None
        raise SnapshotError("unreachable", f"cannot connect: {_short(e)}") from None
    except httpx.HTTPError as e:
        raise SnapshotError("unreachable", f"{type(e).__name__}: {_short(e)}") from None


async def fetch_snapshot(
    cam: Camera,
    creds: Credentials | None,
    client: httpx.AsyncClient | None = None,
    url: str | None = None,
) -> bytes:
    """One JPEG from `cam` (at `url`, its snapshot URL found by ONVIF, else its `url`), or
    SnapshotError. Bounded by `cam.timeout` and `cam.max_image`."""
    own = client is None
    http = make_client(cam) if client is None else client
    try:
        if url is None and cam.url is None:  # the CLI: ask the camera first
            from controller.camera.onvif import snapshot_uri

            url = await snapshot_uri(cam, creds, http)
        target = url or cam.url
        assert target is not None
        async with guard_http(cam):
            return await _get(cam, creds, http, target)
    finally:
        if own:
            await http.aclose()


def _short(e: BaseException) -> str:
    text = str(e) or type(e).__name__
    return text[:160]


async def _get(cam: Camera, creds: Credentials | None, http: httpx.AsyncClient, url: str) -> bytes:
    async with http.stream("GET", url, auth=_auth(cam, creds)) as resp:
        if resp.status_code in (401, 403):
            raise SnapshotError("auth", f"credentials refused (HTTP {resp.status_code})")
        if resp.status_code != 200:
            raise SnapshotError("http", f"HTTP {resp.status_code} {resp.reason_phrase}")
        encoding = resp.headers.get("Content-Encoding", "identity").lower()
        if encoding != "identity":  # a compressed body could grow past the cap when decoded
            raise SnapshotError("not_jpeg", f"a {encoding}-encoded answer, not a JPEG")
        declared = resp.headers.get("Content-Length")
        if declared is not None and declared.isdigit() and int(declared) > cam.max_image:
            raise SnapshotError("too_big", f"answer of {declared} bytes, over {cam.max_image}")
        body = bytearray()
        async for chunk in resp.aiter_raw():
            body += chunk
            if len(body) > cam.max_image:
                raise SnapshotError("too_big", f"answer over {cam.max_image} bytes")
    data = bytes(body)
    problem = jpeg_problem(data, cam.max_image)
    if problem is not None:
        kind = resp.headers.get("Content-Type", "no content type")
        raise SnapshotError("not_jpeg", f"{problem}, {kind}")
    return data
