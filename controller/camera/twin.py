"""The simulated camera: a local HTTP server with digest authentication (RFC 7616, MD5, qop
auth, as Hikvision and Dahua cameras answer) that serves a generated JPEG with the time
printed in the picture. The demo and the tests use it in place of an IP camera.

It can also misbehave the ways a real camera does, for the fault tests: answer slowly, send a
huge body, redirect to itself forever, or send something that is not a JPEG (`mode`).

It also answers the two ONVIF Media service calls the controller makes (`onvif_url`):
GetProfiles (two profiles, `Profile_1` the main stream and `Profile_2` the sub stream) and
GetSnapshotUri (the picture URL of that profile's channel), each only with a valid
WS-Security UsernameToken digest (Base64(SHA-1(nonce + created + password)), a nonce used
once), else the SOAP fault `ter:NotAuthorized` that cameras send.

Pillow draws the picture; it is imported here only, never by the fetcher or the daemon's hot
path (a real site has real cameras and does not need it).
"""

from __future__ import annotations

import base64
import hashlib
import io
import secrets
import ssl
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal

from controller.errors import OfficeGuardError

Mode = Literal["ok", "slow", "huge", "huge_unsized", "redirect_loop", "not_jpeg", "stall"]
REALM = "IP Camera(sim)"


class TwinError(OfficeGuardError):
    """The simulated camera cannot start (Pillow missing, port taken)."""


def render_jpeg(at: datetime, label: str = "cam", size: tuple[int, int] = (320, 240)) -> bytes:
    """A small JPEG with `label` and the time `at` printed on it."""
    try:
        from PIL import Image, ImageDraw
    except ImportError as e:  # pragma: no cover - a dev dependency
        raise TwinError("the simulated camera needs Pillow (pip install pillow)") from e
    img = Image.new("RGB", size, (40, 60, 80))
    draw = ImageDraw.Draw(img)
    draw.rectangle((8, 8, size[0] - 8, size[1] - 8), outline=(200, 200, 200))
    draw.text((16, 16), label, fill=(255, 255, 255))
    draw.text((16, 36), at.strftime("%Y-%m-%d %H:%M:%S %z"), fill=(255, 255, 0))
    out = io.BytesIO()
    img.save(out, format="JPEG", quality=70)
    return out.getvalue()


def _md5(text: str) -> str:
    # digest authentication is defined over MD5 (the cameras we stand in for speak only it);
    # it identifies the user here, it protects nothing of ours
    return hashlib.md5(text.encode("utf-8"), usedforsecurity=False).hexdigest()


def _parse_digest(header: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for part in header.removeprefix("Digest ").split(","):
        key, sep, value = part.strip().partition("=")
        if sep:
            out[key.strip()] = value.strip().strip('"')
    return out


class CameraTwin:
    """One simulated camera on 127.0.0.1, in a thread of its own."""

    def __init__(
        self,
        username: str = "admin",
        password: str = "",
        *,
        label: str = "cam",
        mode: Mode = "ok",
        now: Callable[[], datetime] | None = None,
        tls: ssl.SSLContext | None = None,
        delay: float = 10.0,
        port: int = 0,
    ) -> None:
        self.username = username
        self.password = password
        self.label = label
        self.mode: Mode = mode
        self.now = now or (lambda: datetime.now(UTC))
        self.delay = delay  # how long `slow` and `stall` keep a client waiting
        self.served = 0  # pictures sent
        self.refused = 0  # requests without valid credentials
        self.onvif_calls: list[str] = []  # ONVIF operations answered (with valid credentials)
        self._ws_nonces: set[str] = set()
        self._opaque = secrets.token_hex(8)
        self._nonces: set[str] = set()
        self._picture: tuple[datetime, bytes] | None = None  # drawn once per second shown
        twin = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                twin._answer(self)

            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                twin._soap(self)

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        if tls is not None:
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
        self.scheme = "https" if tls is not None else "http"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return self._base + "/ISAPI/Streaming/channels/101/picture"

    @property
    def onvif_url(self) -> str:
        return self._base + "/onvif/media_service"

    @property
    def _base(self) -> str:
        host, port = self.server.server_address[:2]
        return f"{self.scheme}://{host!s}:{port}"

    def start(self) -> CameraTwin:
        self._thread.start()
        return self

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> CameraTwin:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ answering
    def _authorized(self, req: BaseHTTPRequestHandler) -> bool:
        given = _parse_digest(req.headers.get("Authorization", ""))
        if given.get("username") != self.username or given.get("nonce") not in self._nonces:
            return False
        ha1 = _md5(f"{self.username}:{REALM}:{self.password}")
        ha2 = _md5(f"GET:{given.get('uri', '')}")
        expect = _md5(
            f"{ha1}:{given['nonce']}:{given.get('nc', '')}:{given.get('cnonce', '')}:auth:{ha2}"
        )
        return secrets.compare_digest(expect, given.get("response", ""))

    def _challenge(self, req: BaseHTTPRequestHandler) -> None:
        nonce = secrets.token_hex(16)
        self._nonces.add(nonce)
        req.send_response(401)
        req.send_header(
            "WWW-Authenticate",
            f'Digest realm="{REALM}", qop="auth", nonce="{nonce}", opaque="{self._opaque}", '
            'algorithm=MD5',
        )
        req.send_header("Content-Length", "0")
        req.end_headers()

    def _answer(self, req: BaseHTTPRequestHandler) -> None:
        if self.mode == "redirect_loop":
            req.send_response(302)
            req.send_header("Location", req.path)
            req.send_header("Content-Length", "0")
            req.end_headers()
            return
        if not self._authorized(req):
            if "Authorization" in req.headers:
                self.refused += 1
            self._challenge(req)
            return
        if self.mode == "slow":
            time.sleep(self.delay)
        if self.mode in ("huge", "huge_unsized"):  # 50 MB, with or without saying so first
            length = 50_000_000 if self.mode == "huge" else None
            self._send(req, b"\xff\xd8" + b"\0" * 65534, length=length, repeat=763)
            return
        body = b"<html>login</html>" if self.mode == "not_jpeg" else self._jpeg()
        if self.mode == "stall":  # headers, then half the picture, then nothing
            self._send(req, body[: len(body) // 2], length=len(body), stall=self.delay)
            return
        self.served += 1
        self._send(req, body, length=len(body))

    def _jpeg(self) -> bytes:
        at = self.now().replace(microsecond=0)
        cached = self._picture
        if cached is None or cached[0] != at:
            cached = self._picture = (at, render_jpeg(at, self.label))
        return cached[1]

    def _send(
        self,
        req: BaseHTTPRequestHandler,
        chunk: bytes,
        *,
        length: int | None,
        repeat: int = 1,
        stall: float = 0.0,
    ) -> None:
        req.send_response(200)
        req.send_header("Content-Type", "image/jpeg")
        if length is not None:
            req.send_header("Content-Length", str(length))
        req.end_headers()  # without a length the body ends when the connection closes
        try:
            for _ in range(repeat):
                req.wfile.write(chunk)
            req.wfile.flush()
            if stall:
                time.sleep(stall)
        except OSError:
            pass  # the client hung up (as a fetcher that caps the size does)

    # ------------------------------------------------------------------ ONVIF Media service
    def _soap(self, req: BaseHTTPRequestHandler) -> None:
        length = int(req.headers.get("Content-Length") or 0)
        from lxml import etree  # with zeep, in the onvif extra (dev has it)

        parser = etree.XMLParser(resolve_entities=False, no_network=True)
        try:
            root = etree.fromstring(req.rfile.read(min(length, 65536)), parser)
        except etree.XMLSyntaxError:
            self._soap_send(req, 400, _fault("env:Sender", "ter:WellFormed", "not XML"))
            return
        body = root.find(f"{{{SOAP}}}Body")
        op = body[0] if body is not None and len(body) else None
        if op is None:
            self._soap_send(req, 400, _fault("env:Sender", "ter:WellFormed", "no operation"))
            return
        if not self._ws_authorized(root):
            self.refused += 1
            self._soap_send(req, 400, _fault("env:Sender", "ter:NotAuthorized", "Sender not Authorized"))
            return
        name = op.tag.rsplit("}", 1)[-1]
        if name == "GetProfiles":
            profiles = "".join(
                f'<trt:Profiles token="{token}" fixed="true"><tt:Name>{label}</tt:Name></trt:Profiles>'
                for token, label in (("Profile_1", "mainStream"), ("Profile_2", "subStream"))
            )
            self.onvif_calls.append(name)
            self._soap_send(req, 200, f"<trt:GetProfilesResponse>{profiles}</trt:GetProfilesResponse>")
        elif name == "GetSnapshotUri":
            token = op.findtext(f"{{{TRT}}}ProfileToken")
            channel = {"Profile_1": "101", "Profile_2": "102"}.get(token or "")
            if channel is None:
                self._soap_send(req, 400, _fault("env:Sender", "ter:InvalidArgVal", "no such profile"))
                return
            self.onvif_calls.append(name)
            uri = f"{self._base}/ISAPI/Streaming/channels/{channel}/picture"
            self._soap_send(req, 200, (
                "<trt:GetSnapshotUriResponse><trt:MediaUri>"
                f"<tt:Uri>{uri}</tt:Uri><tt:InvalidAfterConnect>false</tt:InvalidAfterConnect>"
                "<tt:InvalidAfterReboot>false</tt:InvalidAfterReboot><tt:Timeout>PT0S</tt:Timeout>"
                "</trt:MediaUri></trt:GetSnapshotUriResponse>"
            ))  # fmt: skip
        else:
            self._soap_send(req, 400, _fault("env:Receiver", "ter:ActionNotSupported", name))

    def _ws_authorized(self, root: Any) -> bool:
        token = root.find(f"{{{SOAP}}}Header/{{{WSSE}}}Security/{{{WSSE}}}UsernameToken")
        if token is None or token.findtext(f"{{{WSSE}}}Username") != self.username:
            return False
        password = token.find(f"{{{WSSE}}}Password")
        nonce = token.findtext(f"{{{WSSE}}}Nonce") or ""
        created = token.findtext(f"{{{WSU}}}Created") or ""
        if password is None or not password.get("Type", "").endswith("#PasswordDigest"):
            return False
        if not nonce or nonce in self._ws_nonces:  # a nonce is good once
            return False
        self._ws_nonces.add(nonce)
        try:
            raw = base64.b64decode(nonce, validate=True)
        except ValueError:
            return False
        # the camera's side of the check: the digest is a fact of the protocol, SHA-1 included
        digest = hashlib.sha1(raw + created.encode() + self.password.encode(), usedforsecurity=False)
        expect = base64.b64encode(digest.digest()).decode()
        return secrets.compare_digest(expect, (password.text or "").strip())

    def _soap_send(self, req: BaseHTTPRequestHandler, status: int, body: str) -> None:
        data = (
            '<?xml version="1.0" encoding="UTF-8"?>'
            f'<s:Envelope xmlns:s="{SOAP}" xmlns:trt="{TRT}" xmlns:tt="{TT}" xmlns:ter="{TER}">'
            f"<s:Body>{body}</s:Body></s:Envelope>"
        ).encode()
        req.send_response(status)
        req.send_header("Content-Type", "application/soap+xml; charset=utf-8")
        req.send_header("Content-Length", str(len(data)))
        req.end_headers()
        req.wfile.write(data)


SOAP = "http://www.w3.org/2003/05/soap-envelope"
TRT = "http://www.onvif.org/ver10/media/wsdl"
TT = "http://www.onvif.org/ver10/schema"
TER = "http://www.onvif.org/ver10/error"
WSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
WSU = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"


def _fault(code: str, subcode: str, reason: str) -> str:
    return (
        f'<s:Fault><s:Code><s:Value>{code.replace("env:", "s:")}</s:Value>'
        f"<s:Subcode><s:Value>{subcode}</s:Value></s:Subcode></s:Code>"
        f'<s:Reason><s:Text xml:lang="en">{reason}</s:Text></s:Reason></s:Fault>'
    )
