"""Test helper: a throwaway certificate authority, made with the system's openssl, for the tests
that run Mosquitto with TLS."""

from __future__ import annotations

import subprocess
from pathlib import Path


def openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def make_pki(d: Path, clients: tuple[str, ...] = ()) -> Path:
    """In `d`: a CA (ca.pem), a broker certificate for 127.0.0.1 (broker.pem/.key) and one
    client certificate per name in `clients` (<name>.pem/.key). Returns `d`."""
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=office-ca",
            "-keyout", "ca.key", "-out", "ca.pem", cwd=d)  # fmt: skip
    for name in ("broker", *clients):
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", f"/CN={name}",
                "-keyout", f"{name}.key", "-out", f"{name}.csr", cwd=d)  # fmt: skip
        ext = []
        if name == "broker":
            (d / "broker.ext").write_text("subjectAltName=IP:127.0.0.1\n")
            ext = ["-extfile", "broker.ext"]
        openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
                "-CAcreateserial", "-days", "2", "-out", f"{name}.pem", *ext, cwd=d)  # fmt: skip
    return d
