"""A camera's snapshot URL asked of its ONVIF Media service: GetProfiles, then GetSnapshotUri
for the configured profile (or the first), each a SOAP 1.2 request signed with a
WS-Security UsernameToken (PasswordDigest).

The UsernameToken is zeep's (`zeep.wsse.username.UsernameToken`, `use_digest=True`: the nonce,
the time and the SHA-1 digest are its own); lxml builds the two small envelopes and reads the
answers (no entities, no network, size-capped); the camera's own httpx client carries them
(same TLS trust, timeout and redirect bound as its snapshots). docs/cameras.md says why not the
whole WSDL through zeep or onvif-zeep-async.

Every failure is a `SnapshotError`: `auth` for refused credentials (a SOAP fault
`ter:NotAuthorized`, or HTTP 401/403), `onvif` for an answer that is not what the Media service
gives (no such profile, no URI, a fault), or the fetcher's own reasons for the network.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import httpx

from controller.camera.fetch import Credentials, SnapshotError, _auth, guard_http

if TYPE_CHECKING:
    from controller.config import Camera

SOAP = "http://www.w3.org/2003/05/soap-envelope"
TRT = "http://www.onvif.org/ver10/media/wsdl"
TT = "http://www.onvif.org/ver10/schema"
MAX_ANSWER = 256 * 1024  # a Media service's answer to these two calls is a few kB


def _lxml() -> tuple[Any, Any]:
    try:
        from lxml import etree
        from zeep.wsse.username import UsernameToken
    except ImportError as e:
        raise SnapshotError(
            "onvif", "ONVIF discovery needs the onvif extra (pip install officeguard[onvif])"
        ) from e
    return etree, UsernameToken


def envelope(operation: str, params: dict[str, str], creds: Credentials | None) -> bytes:
    """A SOAP 1.2 request for the Media service's `operation`, with a UsernameToken digest."""
    etree, token = _lxml()
    env = etree.Element(f"{{{SOAP}}}Envelope", nsmap={"s": SOAP, "trt": TRT})
    etree.SubElement(env, f"{{{SOAP}}}Header")
    body = etree.SubElement(env, f"{{{SOAP}}}Body")
    op = etree.SubElement(body, f"{{{TRT}}}{operation}")
    for key, value in params.items():
        etree.SubElement(op, f"{{{TRT}}}{key}").text = value
    if creds is not None:
        token(creds.username, creds.password, use_digest=True).apply(env, {})
    data: bytes = etree.tostring(env, xml_declaration=True, encoding="utf-8")
    return data


def _parse(data: bytes) -> Any:
    etree, _ = _lxml()
    parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False)
    try:
        return etree.fromstring(data, parser)
    except etree.XMLSyntaxError as e:
        raise SnapshotError("onvif", f"the Media service's answer is not XML: {e}") from None


def _fault(root: Any) -> str | None:
    """The fault's subcode and reason, when the answer is a SOAP fault."""
    fault = root.find(f"{{{SOAP}}}Body/{{{SOAP}}}Fault")
    if fault is None:
        return None
    codes = [v.text or "" for v in fault.iter(f"{{{SOAP}}}Value")]
    reason = " ".join(t.text or "" for t in fault.iter(f"{{{SOAP}}}Text")).strip()
    return " / ".join([c for c in codes if c] + ([reason] if reason else [])) or "a SOAP fault"


async def call(
    cam: Camera,
    creds: Credentials | None,
    http: httpx.AsyncClient,
    operation: str,
    params: dict[str, str],
) -> Any:
    """One Media service operation; the parsed answer's root, or SnapshotError."""
    assert cam.onvif is not None
    action = f"{TRT}/{operation}"
    headers = {
        "Content-Type": f'application/soap+xml; charset=utf-8; action="{action}"',
        "Accept": "application/soap+xml",
    }
    body = envelope(operation, params, creds)
    async with guard_http(cam), http.stream(
        "POST", cam.onvif.url, content=body, headers=headers, auth=_auth(cam, creds)
    ) as resp:
        data = bytearray()
        async for chunk in resp.aiter_bytes():
            data += chunk
            if len(data) > MAX_ANSWER:
                raise SnapshotError("onvif", f"{operation}: an answer over {MAX_ANSWER} bytes")
    if resp.status_code in (401, 403):
        raise SnapshotError("auth", f"ONVIF {operation}: credentials refused (HTTP {resp.status_code})")
    root = _parse(bytes(data)) if data else None
    fault = _fault(root) if root is not None else None
    if fault is not None:
        if "NotAuthorized" in fault:
            raise SnapshotError("auth", f"ONVIF {operation}: credentials refused ({fault})")
        raise SnapshotError("onvif", f"ONVIF {operation}: {fault}"[:200])
    if resp.status_code != 200 or root is None:
        raise SnapshotError("onvif", f"ONVIF {operation}: HTTP {resp.status_code} {resp.reason_phrase}")
    return root


async def snapshot_uri(cam: Camera, creds: Credentials | None, http: httpx.AsyncClient) -> str:
    """The camera's snapshot URL for its configured profile (or its first)."""
    assert cam.onvif is not None
    root = await call(cam, creds, http, "GetProfiles", {})
    tokens = [p.get("token") for p in root.iter(f"{{{TRT}}}Profiles") if p.get("token")]
    if not tokens:
        raise SnapshotError("onvif", "ONVIF GetProfiles: the camera has no media profile")
    wanted = cam.onvif.profile
    if wanted is not None and wanted not in tokens:
        raise SnapshotError(
            "onvif", f"ONVIF: no media profile {wanted!r} (the camera has {', '.join(tokens)})"
        )
    token = wanted or tokens[0]
    root = await call(cam, creds, http, "GetSnapshotUri", {"ProfileToken": token})
    found = root.findtext(f".//{{{TRT}}}MediaUri/{{{TT}}}Uri")
    uri = found.strip() if isinstance(found, str) else ""
    if not uri.startswith(("http://", "https://")):
        raise SnapshotError("onvif", f"ONVIF GetSnapshotUri: no http(s) URI for profile {token!r}")
    if "@" in uri.split("/", 3)[2]:  # a user in the URI: the credentials file's are used instead
        scheme, rest = uri.split("://", 1)
        host, sep, path = rest.partition("/")
        uri = f"{scheme}://{host.rsplit('@', 1)[1]}{sep}{path}"
    return uri
