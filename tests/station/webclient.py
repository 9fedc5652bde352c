"""A real HTTP server for the station's web console in a thread, and a small browser-like client
(cookies, CSRF tokens taken from the page's forms) over real loopback sockets."""

from __future__ import annotations

import http.cookiejar
import re
import socket
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass

import uvicorn

from controller.station.web import Station


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    def __init__(self, station: Station) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        cfg = uvicorn.Config(station.app(), host="127.0.0.1", port=self.port, log_level="warning")
        self.server = uvicorn.Server(cfg)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> Server:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline:
                raise TimeoutError("the web console did not start")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)


@dataclass
class Page:
    status: int
    body: str
    url: str
    headers: dict[str, str]

    def csrf(self) -> str:
        m = re.search(r'name="csrf" value="([^"]+)"', self.body)
        assert m, "no CSRF token in the page"
        return m.group(1)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kw: object) -> None:
        return None


class Browser:
    def __init__(self, base: str, follow: bool = True) -> None:
        self.base = base
        self.jar = http.cookiejar.CookieJar()
        handlers: list[urllib.request.BaseHandler] = [urllib.request.HTTPCookieProcessor(self.jar)]
        if not follow:
            handlers.append(_NoRedirect())
        self.opener = urllib.request.build_opener(*handlers)

    def _open(self, req: urllib.request.Request) -> Page:
        try:
            with self.opener.open(req, timeout=10) as r:
                return Page(r.status, r.read().decode(), r.geturl(), dict(r.headers))
        except urllib.error.HTTPError as e:
            return Page(e.code, e.read().decode(), req.full_url, dict(e.headers))

    def get(self, path: str) -> Page:
        return self._open(urllib.request.Request(self.base + path))

    def post(self, path: str, data: dict[str, str]) -> Page:
        body = urllib.parse.urlencode(data).encode()
        return self._open(urllib.request.Request(self.base + path, data=body, method="POST"))

    def login(self, login: str, password: str) -> Page:
        token = self.get("/login").csrf()
        return self.post("/login", {"csrf": token, "login": login, "password": password})
