"""The local control socket: how `officeguard status`, `sim`, `arm` and `disarm` reach the
running daemon. A unix stream socket in the state directory (mode 0660), one JSON request line
in, one JSON reply line out. Only local users with access to the state directory can use it.

If the state directory cannot hold the socket (the SD card came back read-only, a wrong owner),
the daemon puts it in its runtime directory instead (`$RUNTIME_DIRECTORY`, which systemd gives
the unit, else /run/officeguard), and the CLI looks there too; if neither works the daemon runs
without it: the alarm never depends on the control socket.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import os
import socket
import struct
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

from controller.errors import OfficeGuardError

log = logging.getLogger(__name__)

SOCKET_NAME = "control.sock"
MAX_REQUEST = 64 * 1024

Handler = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]


class ControlError(OfficeGuardError):
    """A request the daemon refuses: the message is shown to the user as it is; `reason`, a
    stable key (wrong_code, unknown_zone...), goes along in the reply for scripts."""

    def __init__(self, message: str, reason: str | None = None):
        super().__init__(message)
        self.reason = reason


def socket_path(state_dir: str | Path) -> Path:
    return Path(state_dir) / SOCKET_NAME


def runtime_file(
    state_dir: str | Path, stem: str, suffix: str, env: Mapping[str, str] | None = None
) -> Path:
    """A file in the runtime directory (`$RUNTIME_DIRECTORY`, else /run/officeguard) that
    stands in for one in the state directory, one name per state directory (so that several
    daemons on a test machine never meet): `<stem>-<tag><suffix>`."""
    env = os.environ if env is None else env
    runtime = Path(env.get("RUNTIME_DIRECTORY", "").split(":")[0] or "/run/officeguard")
    tag = hashlib.sha256(str(Path(state_dir).resolve()).encode()).hexdigest()[:12]
    return runtime / f"{stem}-{tag}{suffix}"


def fallback_socket_path(state_dir: str | Path, env: Mapping[str, str] | None = None) -> Path:
    """Where the socket goes when the state directory cannot hold it: the runtime directory."""
    return runtime_file(state_dir, "control", ".sock", env)


def find_socket(state_dir: str | Path) -> Path:
    """The socket of the daemon running with this state directory (its usual place first)."""
    primary = socket_path(state_dir)
    if primary.exists():
        return primary
    fallback = fallback_socket_path(state_dir)
    return fallback if fallback.exists() else primary


class ControlServer:
    def __init__(self, state_dir: Path, handlers: dict[str, Handler]):
        self.state_dir = state_dir
        self.path: Path | None = socket_path(state_dir)
        self.handlers = handlers
        self._server: asyncio.base_events.Server | None = None
        self._identity: tuple[int, int] | None = None  # (device, inode) of the socket we made

    async def start(self) -> None:
        """Listen in the state directory, else in the runtime directory, else not at all (logged:
        the alarm goes on; only `status`, `sim` and the local arm/disarm are unavailable)."""
        for path in (socket_path(self.state_dir), fallback_socket_path(self.state_dir)):
            try:
                await self._listen(path)
            except OSError as e:
                log.error("control socket: cannot listen at %s: %s", path, e.strerror or e)
                continue
            if path != socket_path(self.state_dir):
                log.warning("control socket at %s (the state directory refused it)", path)
            self.path = path
            return
        self.path = None
        log.error("control socket: none; the alarm runs, but the CLI cannot reach this daemon")

    async def _listen(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o750)
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        old = os.umask(0o117)
        try:
            self._server = await asyncio.start_unix_server(
                self._client, path=str(path), limit=MAX_REQUEST
            )
        finally:
            os.umask(old)
        st = path.stat()
        self._identity = (st.st_dev, st.st_ino)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 1.0)
        if self.path is not None:
            remove_own_socket(self.path, self._identity)
            self._identity = None

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            try:
                line = await asyncio.wait_for(reader.readline(), 10.0)
            except (ValueError, asyncio.LimitOverrunError):
                reply: dict[str, Any] = {"ok": False, "error": "request too large"}
            else:
                reply = await self._dispatch(line, peer_user(writer))
            writer.write(json.dumps(reply, ensure_ascii=False).encode() + b"\n")
            await writer.drain()
        except (TimeoutError, ConnectionError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def _dispatch(self, line: bytes, peer: str | None = None) -> dict[str, Any]:
        try:
            req = json.loads(line)
        except (json.JSONDecodeError, UnicodeDecodeError):
            return {"ok": False, "error": "request is not JSON"}
        if not isinstance(req, dict) or not isinstance(req.get("cmd"), str):
            return {"ok": False, "error": "request needs a cmd"}
        # who is asking, from the kernel (never from the request): each socket user has a
        # lockout of their own
        req[PEER] = peer
        handler = self.handlers.get(req["cmd"])
        if handler is None:
            return {"ok": False, "error": f"unknown command {req['cmd']!r}"}
        try:
            result = await handler(req)
        except ControlError as e:
            return {"ok": False, "error": str(e), **({"reason": e.reason} if e.reason else {})}
        except Exception:
            log.exception("control command %s failed", req["cmd"])
            return {"ok": False, "error": f"internal error in {req['cmd']} (see the daemon's log)"}
        return {"ok": True, **result}


PEER = "_peer"  # the key under which a request carries its sender's identity


def peer_user(writer: asyncio.StreamWriter) -> str | None:
    """`uid<N>` of the process at the other end of a unix socket, or None where the kernel
    does not say (SO_PEERCRED is Linux's)."""
    sock = writer.get_extra_info("socket")
    opt = getattr(socket, "SO_PEERCRED", None)
    if sock is None or opt is None:
        return None
    try:
        _pid, uid, _gid = struct.unpack("3i", sock.getsockopt(socket.SOL_SOCKET, opt, 12))
    except (OSError, struct.error):
        return None
    return f"uid{uid}"


def remove_own_socket(path: Path, identity: tuple[int, int] | None) -> bool:
    """Remove the socket at `path` only if it is still the one this process made (same device
    and inode): another daemon may have put its own there since, and it must stay reachable."""
    try:
        st = path.stat()
    except OSError:
        return False
    if identity is None or (st.st_dev, st.st_ino) != identity:
        log.warning("control socket %s is not ours any more: left in place", path)
        return False
    with contextlib.suppress(OSError):
        path.unlink()
        return True
    return False


def exchange(path: str | Path, data: bytes, timeout: float = 30.0) -> bytes:
    """Send raw bytes on the control socket at `path` and read one reply line (no checks on
    either: the CLI's `request` and the tests that send garbage both use it)."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect(str(path))
        s.sendall(data)
        buf = b""
        while not buf.endswith(b"\n"):
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
    finally:
        s.close()
    return buf


def request(state_dir: str | Path, cmd: str, timeout: float = 30.0, **args: Any) -> dict[str, Any]:
    """Send one request to the daemon and return its reply (raises ControlError on refusal,
    ConnectionError when no daemon listens)."""
    path = find_socket(state_dir)
    try:
        buf = exchange(path, json.dumps({"cmd": cmd, **args}).encode() + b"\n", timeout)
    except (FileNotFoundError, ConnectionRefusedError) as e:
        raise ConnectionError(
            f"no daemon is running with state directory {state_dir} ({e.strerror})"
        ) from None
    except PermissionError:
        raise ConnectionError(
            f"no permission to use {path} (run as the officeguard user or root)"
        ) from None
    if not buf:
        raise ConnectionError("the daemon closed the connection without a reply")
    reply: dict[str, Any] = json.loads(buf)
    if not reply.get("ok"):
        raise ControlError(reply.get("error", "refused"), reply.get("reason"))
    return reply
