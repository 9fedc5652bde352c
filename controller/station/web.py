"""The station's web console (Starlette, Jinja2 templates, Server-Sent Events).

Pages: the queue (`/`), one incident (`/incident/{id}`), the site board (`/sites`), one site
(`/site/{site}`), the event search with CSV export (`/events`), the supervisor's list of
incidents acknowledged but not closed past the limit (`/supervisor`), operators (`/admin`), and
`/live`, a Server-Sent Events stream that tells open pages the queue changed (the page then
reloads its queue, and beeps for a new priority-1 incident).

Security: a signed session cookie (HttpOnly, SameSite=Strict, Secure when served behind TLS),
a CSRF token in every form checked on every POST, login throttling per login and per client
address, roles checked on every page. Served on loopback by default; docs/station.md shows a
TLS reverse proxy in front.
"""

from __future__ import annotations

import asyncio
import csv
import hmac
import io
import re
import secrets
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy.exc import SQLAlchemyError
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import (
    HTMLResponse,
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from controller.station import auth, board, pictures
from controller.station.incidents import (
    AGEING_S,
    PRIORITY_NAMES,
    RESOLUTIONS,
    Incident,
    IncidentError,
)
from controller.station.ingest import Ingest
from controller.station.remote import MODES, Commander, CommandError
from controller.station.report import Review, chart, period_events, review
from controller.station.report_pdf import find_font, review_pdf
from controller.station.store import QueuePage, Store, StoreError

TEMPLATES = Path(__file__).parent / "templates"
LOCALE = Path(__file__).parent / "locale"
LANGUAGES = ("vi", "en")
DEFAULT_LANGUAGE = "vi"  # the office's language; msgids are the English texts
OVERDUE_S = 15 * 60.0
# the queue page shows the most urgent incidents, this many at most (the count says how many
# are open in all): a screen of 10,000 rows helps nobody and costs every open page a reload
QUEUE_ROWS = 50
HAND_OVER_S = 0.005  # how long ingest's thread waits for a live page to send its change
ROLE_RANK = {r: i for i, r in enumerate(auth.ROLES)}
STEPS = ("acknowledge", "note", "close")  # what an operator's POST /incident/{id}/{step} does

Handler = Callable[[Request], Awaitable[Response]]


def _fmt_time(t: float | None) -> str:
    if t is None:
        return ""
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(t))


def _fmt_age(s: float) -> str:
    s = int(max(0, s))
    if s < 120:
        return f"{s} s"
    if s < 7200:
        return f"{s // 60} min"
    return f"{s // 3600} h {s % 3600 // 60:02d}"


class Station:
    """What the web console works with: the store, ingest's counters, the clock."""

    def __init__(
        self,
        store: Store,
        ingest: Ingest | None = None,
        *,
        secret_key: str,
        https: bool = False,
        clock: Callable[[], float] = time.time,
        overdue_s: float = OVERDUE_S,
        language: str = DEFAULT_LANGUAGE,
        commander: Commander | None = None,
        pdf_font: Path | None = None,
        ageing: Mapping[int, tuple[float, float]] = AGEING_S,
    ) -> None:
        self.commander = commander
        self.ageing = ageing  # seconds to amber and to red by priority (the `ageing` setting)
        self.pdf_font = find_font(pdf_font)
        self.store = store
        self.ingest = ingest
        self.secret_key = secret_key
        self.https = https
        self.clock = clock
        self.overdue_s = overdue_s
        self.throttle = auth.Throttle()
        self.env = Environment(
            loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html"])
        )
        self.env.filters["t"] = _fmt_time
        self.env.filters["age"] = _fmt_age
        self.env.globals.update(priority_names=PRIORITY_NAMES, resolutions=RESOLUTIONS, modes=MODES)
        self.language = language if language in LANGUAGES else DEFAULT_LANGUAGE
        self.catalogues = catalogues()
        # the live pages' streams wait on these; `changed` (from any thread) wakes them
        self._loop: asyncio.AbstractEventLoop | None = None
        self._waiters: set[asyncio.Future[None]] = set()
        self._loop_thread: int | None = None
        # page 1 of the queue as read by the thread that changed it (generation, page), for
        # the live streams showing page 1 (how many: _first_page_streams)
        self._first_page: tuple[int, QueuePage] | None = None
        self._first_page_streams = 0
        self._sent = threading.Event()  # set by a live stream once it has sent a page
        if ingest is not None:
            ingest.watchers.append(self.changed)

    def changed(self) -> None:
        """The queue may have changed (called from any thread): wake every live page. From a
        thread of ingest's (after a write), that thread first reads page 1 of the queue for
        the live pages showing it, which then only render it: one read for them all, and no
        hand-over to a worker thread and back on the way to the browser (docs/station.md)."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        if self._first_page_streams and threading.get_ident() != self._loop_thread:
            gen = self.ingest.generation if self.ingest else 0  # before the read: never newer
            try:
                self._first_page = (gen, self.store.queue_page(1, QUEUE_ROWS))
            except SQLAlchemyError:
                self._first_page = None  # the streams read it themselves
        if threading.get_ident() == self._loop_thread:
            loop.call_soon_threadsafe(self._wake)
            return
        # and wait (a few ms at most) until a live page has sent it: this thread, ingest's,
        # would otherwise keep the GIL from the console's until it next blocks
        self._sent.clear()
        loop.call_soon_threadsafe(self._wake)
        if self._first_page_streams:
            self._sent.wait(HAND_OVER_S)

    def _wake(self) -> None:
        for f in self._waiters:
            if not f.done():
                f.set_result(None)
        self._waiters.clear()

    # ------------------------------------------------------------------ helpers

    def lang(self, request: Request) -> str:
        """The page's language: ?lang=en|vi (kept in the session), else the station's."""
        asked = request.query_params.get("lang")
        if asked in LANGUAGES:
            request.session["lang"] = asked
        return str(request.session.get("lang") or self.language)

    def gettext(self, request: Request) -> Callable[[str], str]:
        cat = self.catalogues.get(self.lang(request))
        if cat is None:
            return lambda s: s
        return lambda s: cat.get(s) or s

    def render(self, request: Request, name: str, status: int = 200, **ctx: Any) -> HTMLResponse:
        return HTMLResponse(self.html(request, name, **ctx), status_code=status)

    def html(self, request: Request, name: str, **ctx: Any) -> str:
        ing = self.ingest
        _ = self.gettext(request)
        banner = None
        if ing is not None and ing.db_down:
            banner = _(
                "The database is unavailable (%(why)s): %(n)d messages are kept in memory "
                "and will be written when it is back."
            ) % {"why": ing.db_down, "n": ing.buffered}
        if ing is not None and ing.dropped:
            dropped = _("%(n)d messages were dropped beyond the buffer.") % {"n": ing.dropped}
            banner = f"{banner or ''} {dropped}".strip()
        return self.env.get_template(name).render(
            _=_,
            lang=self.lang(request),
            request=request,
            user=request.session.get("user"),
            role=request.session.get("role"),
            csrf=_csrf_token(request),
            banner=banner,
            now=self.clock(),
            ageing=self.ageing,
            **ctx,
        )

    def guard(self, role: str = "operator") -> Callable[[Handler], Handler]:
        """The page needs a login with at least `role`; POSTs need the CSRF token."""

        def wrap(fn: Handler) -> Handler:
            async def handler(request: Request) -> Response:
                user = request.session.get("user")
                if not user:
                    return RedirectResponse("/login", status_code=303)
                if ROLE_RANK.get(request.session.get("role", ""), -1) < ROLE_RANK[role]:
                    return PlainTextResponse("forbidden for your role", status_code=403)
                if request.method == "POST":
                    form = await request.form()
                    if not _csrf_ok(request, str(form.get("csrf", ""))):
                        return PlainTextResponse("bad or missing CSRF token", status_code=403)
                return await fn(request)

            return handler

        return wrap

    async def db(self, fn: Callable[..., Any], *args: Any, **kw: Any) -> Any:
        return await asyncio.to_thread(fn, *args, **kw)

    # ------------------------------------------------------------------ pages

    async def login_page(self, request: Request) -> Response:
        if request.method == "GET":
            return self.render(request, "login.html")
        form = await request.form()
        if not _csrf_ok(request, str(form.get("csrf", ""))):
            return PlainTextResponse("bad or missing CSRF token", status_code=403)
        login = str(form.get("login", "")).strip()[:100]
        password = str(form.get("password", ""))
        now = self.clock()
        addr = request.client.host if request.client else "?"
        wait = max(self.throttle.locked(f"u:{login}", now), self.throttle.locked(f"a:{addr}", now))
        if wait > 0:
            return self.render(
                request,
                "login.html",
                429,
                error=f"Too many failed logins: try again in {wait:.0f} s.",
            )
        op = await self.db(auth.authenticate, self.store, login, password)
        if op is None:
            self.throttle.failed(f"u:{login}", now)
            self.throttle.failed(f"a:{addr}", now)
            _ = self.gettext(request)
            return self.render(request, "login.html", 401, error=_("Wrong login or password."))
        self.throttle.succeeded(f"u:{login}")
        lang = self.lang(request)
        request.session.clear()  # a fresh session (and CSRF token) at every login
        request.session.update(
            user=op["login"], role=op["role"], csrf=secrets.token_urlsafe(32), lang=lang
        )
        return RedirectResponse("/", status_code=303)

    async def logout(self, request: Request) -> Response:
        request.session.clear()
        return RedirectResponse("/login", status_code=303)

    async def queue(self, request: Request) -> Response:
        """One page of the open queue (`?page=N`, QUEUE_ROWS a page) grouped by site, with the
        counts of the whole queue by priority and by site."""
        name = "queue_frag.html" if request.query_params.get("frag") else "queue.html"
        ctx = await self.queue_context(request)
        return self.render(request, name, **ctx)

    async def queue_context(
        self, request: Request, qp: QueuePage | None = None
    ) -> dict[str, Any]:
        """The queue page's context: page `?page=N`, read here unless `qp` is that page."""
        if qp is None:
            qp = await self.db(self.store.queue_page, _page_of(request), QUEUE_ROWS)
        _ = self.gettext(request)
        now = self.clock()
        groups: dict[str, list[dict[str, str]]] = {}
        for inc in qp.incidents:
            groups.setdefault(inc.site, []).append(queue_row(inc, now, _, self.ageing))
        return {
            "groups": groups,
            "q": qp,
            "count": qp.total,
            "shown": len(qp.incidents),
            "pager": pager(qp.page, qp.pages),
            "generation": self.ingest.generation if self.ingest else 0,
        }

    async def incident(self, request: Request) -> Response:
        inc = await self.db(self.store.incident, request.path_params["id"])
        if inc is None:
            _ = self.gettext(request)
            return self.render(request, "error.html", 404, error=_("No such incident."))
        shots = await self.db(pictures.of_events, self.store, inc.events)
        return self.render(request, "incident.html", inc=inc, snapshots=shots)

    async def snapshot(self, request: Request) -> Response:
        """One camera picture, for a logged-in operator (the incident's page shows them)."""
        data = await self.db(pictures.image, self.store, request.path_params["id"])
        if data is None:
            return PlainTextResponse("no such picture", status_code=404)
        return Response(data, media_type="image/jpeg", headers={"Cache-Control": "private, max-age=3600"})

    async def act(self, request: Request) -> Response:
        iid = request.path_params["id"]
        action = request.path_params["action"]
        form = await request.form()
        user = request.session["user"]
        kw = {k: str(form.get(k, "")) for k in ("text", "resolution")}
        _ = self.gettext(request)
        if action not in STEPS:
            return self.render(request, "error.html", 404, error=_("No such step."))
        try:
            await self.db(self.store.act, iid, action, user, self.clock(), **kw)
        except (IncidentError, StoreError) as e:
            inc = await self.db(self.store.incident, iid)
            if inc is None:
                return self.render(request, "error.html", 404, error=_("No such incident."))
            why = e.translated(_) if isinstance(e, IncidentError) else str(e)
            return self.render(request, "incident.html", 409, inc=inc, error=why)
        if self.ingest is not None:
            self.ingest.changed()
        back = "/" if action == "close" else f"/incident/{iid}"
        return RedirectResponse(back, status_code=303)

    async def sites(self, request: Request) -> Response:
        """The site board: each site's link, heartbeat, open incidents, and (board.py) its
        zones' armed state, open troubles, drones and patrol plans."""
        rows = await self.db(self.store.sites)
        states = await self.db(board.latest_states, self.store)
        drones = await self.db(board.recent_drones, self.store, self.clock())
        for r in rows:
            r["board"] = board.summary(board.site_board(states.get(r["site"], [])))
            r["drones"] = drones.get(r["site"])
        qn, _ = await self.db(self.store.quarantined, 0)
        counters = self.ingest.counters() if self.ingest else {}
        return self.render(request, "sites.html", sites=rows, quarantined=qn, counters=counters)

    async def site(self, request: Request) -> Response:
        site = request.path_params["site"]
        state = await self.db(self.store.site_state, site)  # however old: site_state
        incidents = await self.db(self.store.incidents_of, site)
        events = await self.db(self.store.search, site=site, limit=100)
        return self.render(
            request,
            "site.html",
            site=site,
            board=board.site_board(state),
            commands=await self.db(self.store.commands, site, 10),
            remote=self.commander is not None,
            incidents=incidents,
            events=events,
        )

    async def command(self, request: Request) -> Response:
        """Remote arm/disarm from a site's page: sent with the operator's code, recorded."""
        site = request.path_params["site"]
        if self.commander is None:
            return PlainTextResponse("remote commands are off", status_code=404)
        form = await request.form()
        action = str(form.get("action", ""))
        zones = [z.strip() for z in str(form.get("zones", "")).replace(",", " ").split()]
        zones += [str(z) for z in form.getlist("zone")]
        code = str(form.get("code", ""))
        mode = str(form.get("mode", "away"))
        try:
            cmd = self.commander.command(site, action, zones, code, mode)
            result = await self.db(self.commander.send, site, action, zones, code, mode)
        except CommandError as e:
            cmd, result = {"action": action, "zones": zones}, {"ok": False, "error": str(e)}
        await self.db(
            self.store.log_command, site, request.session["user"], cmd, result, self.clock()
        )
        return RedirectResponse(f"/site/{site}", status_code=303)

    async def events(self, request: Request) -> Response:
        q = request.query_params
        args = {
            "site": q.get("site") or None,
            "kind": q.get("kind") or None,
            "since": _date(q.get("since")),
            "until": _date(q.get("until")),
            "text": q.get("q") or None,
        }
        csv_out = q.get("format") == "csv"
        rows = await self.db(self.store.search, limit=100_000 if csv_out else 500, **args)
        if csv_out:
            buf = io.StringIO()
            cols = ["ts", "site", "seq", "kind", "cid", "zone", "sensor", "user", "text", "id"]
            w = csv.DictWriter(buf, cols, extrasaction="ignore")
            w.writeheader()
            for r in rows:
                w.writerow({k: _csv_safe(r.get(k)) for k in cols})
            return Response(
                buf.getvalue(),
                media_type="text/csv; charset=utf-8",
                headers={"Content-Disposition": 'attachment; filename="events.csv"'},
            )
        return self.render(request, "events.html", rows=rows, q=q)

    async def report(self, request: Request) -> Response:
        """The yearly review of a site (?year=, optional ?month=): a page that prints."""
        rev = await self.review(request)
        if rev is None:
            return PlainTextResponse("bad year or month", status_code=400)
        return self.render(request, "report.html", r=rev, c=chart(rev), months=range(1, 13))

    async def report_pdf(self, request: Request) -> Response:
        """The same review as a PDF the station makes (report_pdf.py)."""
        rev = await self.review(request)
        if rev is None:
            return PlainTextResponse("bad year or month", status_code=400)
        made = _fmt_time(self.clock())
        body = await self.db(
            review_pdf, rev, self.gettext(request), _fmt_age, font=self.pdf_font, made=made
        )
        period = f"{rev.year}" + (f"-{rev.month:02d}" if rev.month else "")
        name = re.sub(r"[^A-Za-z0-9._-]", "_", f"review-{rev.site}-{period}.pdf")
        return Response(
            body,
            media_type="application/pdf",
            headers={"Content-Disposition": f'inline; filename="{name}"'},
        )

    async def review(self, request: Request) -> Review | None:
        """The review the request asks for; None for a bad year or month."""
        site = request.path_params["site"]
        now = datetime.fromtimestamp(self.clock()).astimezone()
        try:
            year = int(request.query_params.get("year") or now.year)
            month = (
                int(request.query_params["month"]) if request.query_params.get("month") else None
            )
            start = datetime(year, month or 1, 1).astimezone()
        except ValueError:
            return None
        end_y, end_m = (year, month + 1) if month and month < 12 else (year + 1, 1)
        end = datetime(end_y, end_m, 1).astimezone()
        since, until = start.timestamp(), end.timestamp()
        events = await self.db(period_events, self.store, site, since, until)
        incidents = await self.db(self.store.incidents_of, site, 1_000_000, since, until)
        return review(site, year, month, events, incidents)

    async def supervisor(self, request: Request) -> Response:
        now = self.clock()
        incidents = await self.db(self.store.open_incidents)
        overdue = [i for i in incidents if i.overdue(now, self.overdue_s)]
        return self.render(request, "supervisor.html", overdue=overdue, limit=self.overdue_s)

    async def admin(self, request: Request) -> Response:
        error = None
        if request.method == "POST":
            form = await request.form()
            try:
                pw = str(form.get("password", "")) or None
                await self.db(
                    auth.set_operator,
                    self.store,
                    str(form.get("login", "")),
                    str(form.get("role", "operator")),
                    pw,
                    form.get("disabled") == "on",
                )
            except (auth.OperatorError, StoreError) as e:
                error = str(e)
        ops = await self.db(self.store.operators)
        return self.render(
            request,
            "admin.html",
            400 if error else 200,
            operators=ops,
            roles=auth.ROLES,
            error=error,
        )

    async def live(self, request: Request) -> Response:
        """Server-Sent Events: `queue` whenever the queue may have changed, at once (ingest
        and the operators' steps wake the stream), carrying the page's queue (`?page=N`) as
        HTML after a first line with the generation and the most urgent open priority-1
        incident, so the page needs no request of its own to show a new alarm."""
        first_page = _page_of(request) == 1

        async def event(gen: int) -> str:
            ready = self._first_page if first_page else None
            qp = ready[1] if ready is not None and ready[0] == gen else None
            ctx = await self.queue_context(request, qp)
            first = ctx["q"].incidents[:1] if ctx["q"].page == 1 else None
            if first is None:
                first = await self.db(self.store.open_incidents, 1)
            frag = self.html(request, "queue_frag.html", **ctx)
            data = "".join(f"data: {line}\n" for line in frag.split("\n"))
            return f"event: queue\ndata: {ctx['generation']} {_open_p1(first)}\n{data}\n"

        return self._event_stream(request, event, first_page=first_page, tells_writer=True)

    async def live_p1(self, request: Request) -> Response:
        """Server-Sent Events for every page but the queue, for the priority-1 sound: `queue`
        whenever the queue may have changed, with only the generation and the most urgent
        open priority-1 incident (as the first line of `/live`), no HTML."""

        async def event(gen: int) -> str:
            top = _open_p1(await self.db(self.store.open_incidents, 1))
            return f"event: queue\ndata: {gen} {top}\n\n"

        return self._event_stream(request, event)

    def _event_stream(
        self,
        request: Request,
        event: Callable[[int], Awaitable[str]],
        *,
        first_page: bool = False,
        tells_writer: bool = False,
    ) -> Response:
        """A live page's stream: `event(generation)` sent at once and again whenever the queue
        may have changed (`changed()` wakes it), and a look every second for a page that went
        away. `first_page`: counted among the streams showing page 1, which the writing
        thread reads for them; `tells_writer`: each send lets the writing thread go on."""
        loop = self._loop = asyncio.get_running_loop()
        self._loop_thread = threading.get_ident()

        async def stream() -> AsyncIterator[str]:
            last = -1
            yield "retry: 2000\n\n"
            self._first_page_streams += first_page
            try:
                while True:
                    woken = loop.create_future()  # before reading the generation: no change missed
                    self._waiters.add(woken)
                    gen = self.ingest.generation if self.ingest else 0
                    if gen != last:
                        yield await event(gen)
                        if tells_writer:
                            self._sent.set()
                        last = gen
                    # woken (awaited as it is: wait_for would cost a turn of the loop), and every
                    # second, to notice a page that went away: after the send, not before it
                    timer = loop.call_later(1.0, _settle, woken)
                    try:
                        await woken
                    finally:
                        timer.cancel()
                        self._waiters.discard(woken)
                    if await request.is_disconnected():
                        break
            finally:
                self._first_page_streams -= first_page

        return StreamingResponse(
            stream(), media_type="text/event-stream", headers={"Cache-Control": "no-store"}
        )

    async def health(self, request: Request) -> Response:
        counters = self.ingest.counters() if self.ingest else {}
        return JSONResponse({"ok": not counters.get("db_down"), **counters})

    def app(self) -> Starlette:
        g = self.guard
        routes = [
            Route("/login", self.login_page, methods=["GET", "POST"]),
            Route("/logout", g()(self.logout), methods=["POST"]),
            Route("/", g()(self.queue)),
            Route("/incident/{id:str}", g()(self.incident)),
            Route("/incident/{id:str}/{action:str}", g()(self.act), methods=["POST"]),
            Route("/snapshot/{id:str}", g()(self.snapshot)),
            Route("/sites", g()(self.sites)),
            Route("/site/{site:str}", g()(self.site)),
            Route("/site/{site:str}/command", g()(self.command), methods=["POST"]),
            Route("/site/{site:str}/report", g("supervisor")(self.report)),
            Route("/site/{site:str}/report.pdf", g("supervisor")(self.report_pdf)),
            Route("/events", g()(self.events)),
            Route("/supervisor", g("supervisor")(self.supervisor)),
            Route("/admin", g("admin")(self.admin), methods=["GET", "POST"]),
            Route("/live", g()(self.live)),
            Route("/live/p1", g()(self.live_p1)),
            Route("/health", self.health),
        ]
        middleware = [
            Middleware(
                SessionMiddleware,
                secret_key=self.secret_key,
                session_cookie="og_station",
                max_age=12 * 3600,
                same_site="strict",
                https_only=self.https,
            ),
        ]
        middleware.append(Middleware(SecurityHeaders))
        return Starlette(routes=routes, middleware=middleware)


class SecurityHeaders:
    """Headers every response carries: no framing, no sniffing, scripts only from here."""

    HEADERS = [
        (b"x-frame-options", b"DENY"),
        (b"x-content-type-options", b"nosniff"),
        (b"referrer-policy", b"same-origin"),
        (
            b"content-security-policy",
            b"default-src 'self'; script-src 'self' 'unsafe-inline'; "
            b"style-src 'self' 'unsafe-inline'; frame-ancestors 'none'",
        ),
    ]

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                message["headers"] = list(message["headers"]) + self.HEADERS
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _settle(f: asyncio.Future[None]) -> None:
    if not f.done():
        f.set_result(None)


def _page_of(request: Request) -> int:
    """The queue page asked for (`?page=N`, from 1)."""
    try:
        return max(1, int(request.query_params.get("page") or 1))
    except ValueError:
        return 1


def queue_row(
    inc: Incident,
    now: float,
    _: Callable[[str], str],
    ageing: Mapping[int, tuple[float, float]] = AGEING_S,
) -> dict[str, str]:
    """An incident's row of the queue as the texts the page shows (the template only prints
    them: 50 rows of calls and attribute look-ups in Jinja cost more than the database)."""
    return {
        "id": inc.id,
        "cls": f"incident {inc.colour(now, ageing)}{' p1' if inc.priority == 1 else ''}",
        "state": inc.state,
        "priority": f"P{inc.priority} {_(PRIORITY_NAMES[inc.priority])}",
        "what": f"{_(inc.what)} · {inc.zone}" if inc.zone else _(inc.what),
        "title": inc.title,
        "opened": _fmt_time(inc.opened_at),
        "age": _("%(age)s ago") % {"age": _fmt_age(now - inc.opened_at)},
        "handled": _(inc.state) + (f" ({inc.acknowledged_by})" if inc.acknowledged_by else ""),
    }


def pager(page: int, pages: int, around: int = 3) -> list[int | None]:
    """The page numbers to link: the first, the last and `around` each side of this one, with
    None for a gap."""
    keep = {1, pages, *range(page - around, page + around + 1)}
    out: list[int | None] = []
    for n in range(1, pages + 1):
        if n in keep:
            out.append(n)
        elif out and out[-1] is not None:
            out.append(None)
    return out


@lru_cache(maxsize=1)
def catalogues() -> dict[str, dict[str, str]]:
    """The gettext catalogues in locale/ (`<lang>.po`), read with Babel: no compile step."""
    from babel.messages.pofile import read_po

    out: dict[str, dict[str, str]] = {}
    for po in sorted(LOCALE.glob("*.po")):
        with po.open("rb") as f:
            cat = read_po(f)
        out[po.stem] = {
            str(m.id): str(m.string) for m in cat if m.id and isinstance(m.string, str) and m.string
        }
    return out


def _open_p1(first: list[Incident]) -> str:
    """The id of the queue's most urgent incident when it is priority 1 and nobody has
    acknowledged it yet (a new one makes the pages beep), else ""."""
    if first and first[0].priority == 1 and first[0].state == "open":
        return first[0].id
    return ""


def _csrf_token(request: Request) -> str:
    tok = request.session.get("csrf")
    if not tok:
        tok = request.session["csrf"] = secrets.token_urlsafe(32)
    return str(tok)


def _csrf_ok(request: Request, sent: str) -> bool:
    tok = request.session.get("csrf")
    return bool(tok) and hmac.compare_digest(str(tok), sent)


def _date(v: str | None) -> float | None:
    if not v:
        return None
    try:
        d = datetime.fromisoformat(v)
    except ValueError:
        return None
    if d.tzinfo is None:
        d = d.astimezone()
    return d.timestamp()


def _csv_safe(v: Any) -> Any:
    """A cell a spreadsheet would run as a formula is prefixed with a quote."""
    if isinstance(v, str) and v[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + v
    return v
