"""The web console over real HTTP: logins, roles, CSRF, throttling, the queue and its steps,
search with CSV export, the banner while the database is away."""

from __future__ import annotations

import io
import json
import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from controller.station import auth
from controller.station.ingest import Ingest
from controller.station.store import Store
from controller.station.web import Station
from tests.station.webclient import Browser, Server

PW = "correct horse battery"


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def site(store: Store) -> Iterator[tuple[Server, Ingest, Clock]]:
    auth.set_operator(store, "lan", "operator", PW)
    auth.set_operator(store, "boss", "admin", PW + "!")
    clock = Clock()
    ing = Ingest(store)
    station = Station(store, ing, secret_key="k" * 40, clock=clock, language="en")
    with Server(station) as srv:
        yield srv, ing, clock


def alarm(ing: Ingest, now: float, cid: str = "E130", zone: str = "leadership") -> str:
    eid = uuid.uuid4().hex
    ing.accept(
        "officeguard/office-a/event",
        (
            f'{{"id": "{eid}", "seq": 1, "site": "office-a", "ts": "2026-02-17T01:20:31+07:00", '
            f'"kind": "alarm", "cid": "{cid}", "zone": "{zone}", "text": "Báo động {zone}", "detail": {{}}}}'
        ).encode(),
        now,
    )
    ing.flush(now)
    return eid


def test_pages_need_a_login_and_a_wrong_password_is_refused(
    site: tuple[Server, Ingest, Clock],
) -> None:
    srv, _, _ = site
    b = Browser(srv.url)
    assert b.get("/").url.endswith("/login")
    p = b.login("lan", "wrong password here")
    assert p.status == 401 and "Wrong login or password" in p.body
    assert b.get("/").url.endswith("/login")
    p = b.login("lan", PW)
    assert p.status == 200 and "open incident" in p.body


def test_an_operator_acknowledges_notes_and_closes_an_incident(
    site: tuple[Server, Ingest, Clock],
) -> None:
    srv, ing, clock = site
    eid = alarm(ing, clock.now)
    b = Browser(srv.url)
    q = b.login("lan", PW)
    assert f"inc-{eid}" in q.body and "Báo động leadership" in q.body
    page = b.get(f"/incident/{eid}")
    tok = page.csrf()
    clock.now += 10
    assert "acknowledged" in b.post(f"/incident/{eid}/acknowledge", {"csrf": tok}).body
    b.post(f"/incident/{eid}/note", {"csrf": tok, "text": "bảo vệ đã đến <b>"})
    p = b.post(f"/incident/{eid}/close", {"csrf": tok, "resolution": "guard_sent", "text": ""})
    assert f"inc-{eid}" not in p.body
    page = b.get(f"/incident/{eid}")
    assert "bảo vệ đã đến &lt;b&gt;" in page.body  # escaped, never run
    assert page.body.count('class="step"') == 4 and "guard_sent" in page.body


def test_a_post_without_the_csrf_token_is_refused(site: tuple[Server, Ingest, Clock]) -> None:
    srv, ing, clock = site
    eid = alarm(ing, clock.now)
    b = Browser(srv.url)
    b.login("lan", PW)
    assert b.post(f"/incident/{eid}/acknowledge", {"csrf": "forged"}).status == 403
    assert b.post(f"/incident/{eid}/acknowledge", {}).status == 403
    anon = Browser(srv.url)
    assert anon.post("/login", {"login": "lan", "password": PW}).status == 403


def test_logins_are_throttled_after_five_failures(site: tuple[Server, Ingest, Clock]) -> None:
    srv, _, clock = site
    b = Browser(srv.url)
    for _ in range(5):
        assert b.login("lan", "not the password").status == 401
    p = b.login("lan", PW)
    assert p.status == 429 and "Too many failed logins" in p.body
    clock.now += 61
    assert b.login("lan", PW).status == 200


def test_roles_keep_operators_out_of_the_admin_and_supervisor_pages(
    site: tuple[Server, Ingest, Clock],
) -> None:
    srv, _, _ = site
    b = Browser(srv.url)
    b.login("lan", PW)
    assert b.get("/admin").status == 403
    assert b.get("/supervisor").status == 403
    a = Browser(srv.url)
    a.login("boss", PW + "!")
    page = a.get("/admin")
    assert page.status == 200
    p = a.post(
        "/admin", {"csrf": page.csrf(), "login": "mai", "role": "operator", "password": "admin"}
    )
    assert p.status == 400 and "at least 10" in p.body
    p = a.post(
        "/admin",
        {"csrf": page.csrf(), "login": "mai", "role": "supervisor", "password": "another long one"},
    )
    assert p.status == 200 and "mai" in p.body
    assert a.get("/supervisor").status == 200


def test_session_cookies_are_http_only_and_strict(site: tuple[Server, Ingest, Clock]) -> None:
    srv, _, _ = site
    b = Browser(srv.url, follow=False)
    p = b.login("lan", PW)
    cookie = p.headers.get("set-cookie", "")
    assert "httponly" in cookie.lower() and "samesite=strict" in cookie.lower()
    assert p.headers.get("x-frame-options") == "DENY"


def test_events_are_searched_and_exported_as_csv(site: tuple[Server, Ingest, Clock]) -> None:
    srv, ing, clock = site
    alarm(ing, clock.now, zone="=cmd|calc")
    alarm(ing, clock.now, zone="hall")
    b = Browser(srv.url)
    b.login("lan", PW)
    assert "Báo động hall" in b.get("/events?q=hall").body
    csv = b.get("/events?site=office-a&format=csv")
    lines = csv.body.strip().splitlines()
    assert lines[0].startswith("ts,site,seq,kind") and len(lines) == 3
    assert "'=cmd|calc" in csv.body  # a formula is never exported as one


def test_every_page_says_when_the_database_is_away(site: tuple[Server, Ingest, Clock]) -> None:
    srv, ing, _ = site
    b = Browser(srv.url)
    b.login("lan", PW)
    ing.db_down = "OperationalError: connection refused"
    for path in ("/", "/sites", "/events"):
        assert "The database is unavailable" in b.get(path).body


def test_the_console_speaks_vietnamese_by_default_and_english_on_request(store: Store) -> None:
    auth.set_operator(store, "lan", "operator", PW)
    with Server(Station(store, Ingest(store), secret_key="k" * 40)) as srv:
        b = Browser(srv.url)
        page = b.get("/login")
        assert 'lang="vi"' in page.body and "Mật khẩu" in page.body
        assert "Sai tên đăng nhập hoặc mật khẩu" in b.login("lan", "wrong password!").body
        assert "sự cố đang mở" in b.login("lan", PW).body
        assert "open incident" in b.get("/?lang=en").body
        assert "open incident" in b.get("/sites").body or "Sites" in b.get("/sites").body
        assert 'lang="en"' in b.get("/events").body  # the choice stays for the session


def test_every_text_the_pages_translate_has_a_vietnamese_translation() -> None:
    import re

    from controller.station.web import TEMPLATES, catalogues

    vi = catalogues()["vi"]
    used = set()
    for tpl in TEMPLATES.glob("*.html"):
        used |= set(re.findall(r'_\("((?:[^"\\]|\\.)*)"\)', tpl.read_text(encoding="utf-8")))
    from controller.station.auth import ROLES
    from controller.station.incidents import PRIORITY_NAMES, RESOLUTIONS, STATES

    used |= set(PRIORITY_NAMES.values()) | set(RESOLUTIONS) | set(STATES) | set(ROLES)
    used |= {
        "fire",
        "panic",
        "duress",
        "burglary",
        "drone",
        "tamper",
        "trouble",
        "keypad_lockout",
        "comm_lost",
    }
    used |= {"opened", "event", "acknowledged", "note", "closed"}
    # the site board's zone states, patrol states and round outcomes (docs/mqtt.md, patrol.md)
    used |= {"disarmed", "arming", "armed_away", "armed_home", "armed_night", "pending"}
    used |= {"triggered", "waiting", "due", "late", "in_round", "silent", "no_sign_of_life"}
    used |= {"idle", "missed", "completed", "incomplete"}
    assert sorted(u for u in used if u not in vi) == []


def test_a_sites_page_shows_its_zones_troubles_and_drones(
    site: tuple[Server, Ingest, Clock],
) -> None:
    srv, ing, clock = site
    P = "officeguard/office-a"
    ing.accept(f"{P}/status", b'{"online": true, "version": "0.1.0"}', clock.now)
    ing.accept(f"{P}/zone/leadership/state", b'{"state": "triggered", "alarm": true}', clock.now)
    ing.accept(f"{P}/zone/finance/state", b'{"state": "armed_away", "alarm": false}', clock.now)
    ing.accept(
        f"{P}/trouble/state",
        b'{"troubles": [{"source": "siren.hall", "cid": "E321", "what": "siren fault"}]}',
        clock.now,
    )
    ing.accept(f"{P}/drone/t1", b'{"uas_id": "1596F350457000000001"}', clock.now)
    ing.accept(f"{P}/drone/t2", b'{"uas_id": "gone"}', clock.now)
    ing.accept(f"{P}/drone/t2", b"", clock.now + 1)  # that track was lost
    ing.tick(clock.now + 1)
    b = Browser(srv.url)
    b.login("lan", PW)
    page = b.get("/site/office-a").body
    assert "triggered" in page and "armed_away" in page
    assert "siren fault" in page and "E321" in page
    assert "1596F350457000000001" in page and "gone" not in page


def test_a_sites_yearly_review_counts_alarms_by_month_nights_and_response_times(
    site: tuple[Server, Ingest, Clock],
) -> None:
    srv, ing, clock = site
    clock.now = datetime(2026, 3, 3, 12, tzinfo=UTC).timestamp()  # the station got them in 2026
    base = {"site": "office-a", "kind": "alarm", "cid": "E130", "text": "x", "detail": {}}
    for seq, (ts, zone) in enumerate(
        [
            ("2026-02-17T01:20:00+07:00", "a"),  # Tết night: the night of the 16th
            ("2026-02-17T01:25:00+07:00", "b"),  # the same night
            ("2026-03-02T22:00:00+07:00", "a"),
        ],
        start=1,
    ):
        e = {**base, "id": uuid.uuid4().hex, "seq": seq, "ts": ts, "zone": zone}
        ing.accept("officeguard/office-a/event", json.dumps(e).encode(), clock.now)
    ing.flush(clock.now)
    b = Browser(srv.url)
    b.login("boss", PW + "!")
    iid = re.search(r'id="inc-([0-9a-f]+)"', b.get("/").body)
    assert iid is not None
    tok = b.get(f"/incident/{iid.group(1)}").csrf()
    clock.now += 40
    b.post(f"/incident/{iid.group(1)}/close", {"csrf": tok, "resolution": "false_alarm"})
    page = b.get("/site/office-a/report?year=2026").body
    assert "2026-02-16, 2026-03-02" in page
    row = re.search(r"<tr><th scope=\"row\">alarm</th>(.*?)</tr>", page, re.S)
    assert row is not None
    cells = re.findall(r"<td>([^<]*)", row.group(1))
    assert cells[1] == "2" and cells[2] == "1" and cells[-1] == "3"
    assert "40 s" in page and "false_alarm: 1" in page
    assert Browser(srv.url).login("lan", PW) and b.get("/site/office-a/report?year=x").status == 400


def test_the_queue_pages_past_its_first_fifty_keeping_order_and_sites(
    site: tuple[Server, Ingest, Clock],
) -> None:
    srv, ing, clock = site
    for k in range(120):
        alarm(ing, clock.now + k, cid="E110" if k >= 115 else "E130", zone=f"z{k:03d}")
    b = Browser(srv.url)
    first = b.login("lan", PW).body
    assert (
        "120 open incident(s)" in first and "P1 life: 5" in first and "P2 intrusion: 115" in first
    )
    assert (
        "page 1 of 3" in first
        and 'rel="next" href="/?page=2"' in first
        and 'rel="prev"' not in first
    )
    assert "office-a</a> <small>120 open</small>" in first
    zones = [
        re.findall(r"(?:burglary|fire) · (z\d+)", b.get(f"/?page={p}").body) for p in (1, 2, 3)
    ]
    assert [len(z) for z in zones] == [50, 50, 20]
    want = [f"z{k:03d}" for k in [*range(115, 120), *range(115)]]  # fires first, then by age
    assert [z for page in zones for z in page] == want
    last = b.get("/?page=3").body
    assert 'rel="prev" href="/?page=2"' in last and 'rel="next"' not in last
    assert "No incidents on this page." in b.get("/?page=9").body
    assert b.get("/?page=x").status == 200


def test_an_open_live_stream_brings_the_queue_with_a_new_alarm_when_it_is_stored(
    site: tuple[Server, Ingest, Clock],
) -> None:
    srv, ing, clock = site
    b = Browser(srv.url)
    b.login("lan", PW)
    with b.opener.open(srv.url + "/live", timeout=10) as stream:

        def next_event() -> tuple[str, str, str]:
            """The event's name, its first data line and the rest of its data."""
            lines: list[str] = []
            while not lines or lines[-1] != "":
                lines.append(stream.readline().decode().rstrip("\n"))
            name = next((x[7:] for x in lines if x.startswith("event: ")), "")
            data = [x[6:] for x in lines if x.startswith("data: ")]
            return name, (data or [""])[0], "\n".join(data[1:])

        assert next_event() == ("", "", "")  # the retry hint
        name, head, html = next_event()
        assert (name, head) == ("queue", "0 ") and "0 open incident(s)" in html
        eid = alarm(ing, clock.now, cid="E120")  # a panic: priority 1
        name, head, html = next_event()
        assert (name, head) == ("queue", f"1 {eid}")
        assert f'id="inc-{eid}"' in html and "1 open incident(s)" in html


def _reviewed_site(site: tuple[Server, Ingest, Clock]) -> Browser:
    """Three alarms on two nights of 2026, one incident closed as a false alarm after 40 s; a
    supervisor's browser."""
    srv, ing, clock = site
    clock.now = datetime(2026, 3, 3, 12, tzinfo=UTC).timestamp()
    base = {"site": "office-a", "kind": "alarm", "cid": "E130", "text": "x", "detail": {}}
    for seq, (ts, zone) in enumerate(
        [
            ("2026-02-17T01:20:00+07:00", "a"),
            ("2026-02-17T01:25:00+07:00", "b"),
            ("2026-03-02T22:00:00+07:00", "a"),
        ],
        start=1,
    ):
        e = {**base, "id": uuid.uuid4().hex, "seq": seq, "ts": ts, "zone": zone}
        ing.accept("officeguard/office-a/event", json.dumps(e).encode(), clock.now)
    ing.flush(clock.now)
    b = Browser(srv.url)
    b.login("boss", PW + "!")
    iid = re.search(r'id="inc-([0-9a-f]+)"', b.get("/").body)
    assert iid is not None
    tok = b.get(f"/incident/{iid.group(1)}").csrf()
    clock.now += 40
    b.post(f"/incident/{iid.group(1)}/close", {"csrf": tok, "resolution": "false_alarm"})
    return b


def _pdf_text(srv: Server, b: Browser, path: str) -> str:
    from pypdf import PdfReader

    with b.opener.open(srv.url + path, timeout=20) as r:
        assert r.headers["Content-Type"] == "application/pdf"
        body = r.read()
    assert body.startswith(b"%PDF-")
    return "\n".join(p.extract_text() for p in PdfReader(io.BytesIO(body)).pages)


def test_the_station_makes_the_review_as_a_pdf_with_the_figures_of_its_page(
    site: tuple[Server, Ingest, Clock],
) -> None:
    srv = site[0]
    b = _reviewed_site(site)
    assert (
        'id="pdf" href="/site/office-a/report.pdf?year=2026"'
        in b.get("/site/office-a/report?year=2026").body
    )
    text = _pdf_text(srv, b, "/site/office-a/report.pdf?year=2026")
    assert "Review: office-a, 2026" in text and "Alarms by kind and month" in text
    assert "Nights with alarms: 2" in text and "2026-02-16, 2026-03-02" in text
    assert "alarm → acknowledged" in text and "40 s" in text
    assert "false_alarm: 1" in text and "Incidents: 2" in text  # zone a joined its own
    assert "communication lost: 0" in text and "Drones: 0" in text
    march = _pdf_text(srv, b, "/site/office-a/report.pdf?year=2026&month=3")
    assert "Review: office-a, 2026-03" in march and "Nights with alarms: 1" in march
    op = Browser(srv.url)
    op.login("lan", PW)
    assert op.get("/site/office-a/report.pdf?year=2026").status == 403
    assert Browser(srv.url).get("/site/office-a/report.pdf").url.endswith("/login")


def test_the_review_pdf_without_a_unicode_font_drops_the_vietnamese_marks_and_says_so() -> None:
    from controller.station.report import review
    from controller.station.report_pdf import review_pdf

    rev = review("văn-phòng", 2026, None, [], [])
    vi = {"Review": "Đánh giá", "Drones": "Thiết bị bay"}
    body = review_pdf(rev, lambda s: vi.get(s, s), str, font=None)
    from pypdf import PdfReader

    text = PdfReader(io.BytesIO(body)).pages[0].extract_text()
    assert "Danh gia: van-phong, 2026" in text and "Thiet bi bay: 0" in text
    assert "no Unicode font found" in text


def test_a_step_that_does_not_fit_is_refused_in_the_operators_language(
    site: tuple[Server, Ingest, Clock],
) -> None:
    srv, ing, clock = site
    eid = alarm(ing, clock.now)
    b = Browser(srv.url)
    b.login("lan", PW)
    tok = b.get(f"/incident/{eid}").csrf()
    b.post(f"/incident/{eid}/close", {"csrf": tok, "resolution": "test"})
    p = b.post(f"/incident/{eid}/close", {"csrf": tok, "resolution": "test"})
    assert p.status == 409 and f"incident {eid} is closed already" in p.body
    b.get("/?lang=vi")
    p = b.post(f"/incident/{eid}/note", {"csrf": tok, "text": "muộn"})
    assert p.status == 409 and f"sự cố {eid} đã đóng: không thể thêm ghi chú" in p.body
    p = b.post(f"/incident/{eid}/reopen", {"csrf": tok})
    assert p.status == 404 and "Không có bước xử lý này." in p.body
    p = b.post("/incident/nope/acknowledge", {"csrf": tok})
    assert p.status == 404 and "Không có sự cố này." in p.body


def test_the_review_draws_its_alarms_as_an_svg_chart_and_counts_drone_tracks_and_missed_rounds(
    site: tuple[Server, Ingest, Clock],
) -> None:
    srv, ing, clock = site
    b = _reviewed_site(site)
    seq = iter(range(10, 100))

    def send(kind: str, ts: str, cid: str, **detail: object) -> None:
        e = {"id": uuid.uuid4().hex, "seq": next(seq), "site": "office-a", "ts": ts,
             "kind": kind, "cid": cid, "text": kind, "detail": detail}  # fmt: skip
        ing.accept("officeguard/office-a/event", json.dumps(e).encode(), clock.now)

    for update, ts in ((False, "22:00:00"), (True, "22:00:10"), (True, "22:00:20")):
        send(
            "drone", f"2026-02-20T{ts}+07:00", "E150", track="rid.aa", detector="rid", update=update
        )
    send("drone", "2026-02-20T22:01:00+07:00", "E150", track="rid.bb", detector="rid", update=False)
    send("patrol", "2026-02-21T02:30:00+07:00", "E102", patrol="missed", plan="đêm",
         night="2026-02-20", due="2026-02-21T02:00:00+07:00")  # fmt: skip
    send("patrol", "2026-02-22T02:30:00+07:00", "R458", patrol="completed", plan="đêm")
    ing.flush(clock.now)
    page = b.get("/site/office-a/report?year=2026").body
    svg = re.search(r'<svg id="chart".*?</svg>', page, re.S)
    assert svg is not None and 'role="img"' in svg.group(0)
    bars = re.findall(r'<rect class="bar" data-kind="(\w+)" data-month="(\d+)"', svg.group(0))
    assert sorted(bars) == [("alarm", "2"), ("alarm", "3"), ("drone", "2")]
    assert re.search(r'class="total"[^>]*>4</text>', svg.group(0))  # February: 2 alarms, 2 drones
    drones = re.search(r'<tr><th scope="row">drone</th>(.*?)</tr>', page, re.S)
    assert drones is not None and re.findall(r"<td>([^<]*)", drones.group(1))[1] == "2"
    assert 'id="drones">2</span> (tracks; 4 reports)' in page
    assert 'id="patrols-missed">1<' in page and "2026-02-20 · đêm · 2026-02-21T02:00" in page
    text = _pdf_text(srv, b, "/site/office-a/report.pdf?year=2026")
    assert "Drones: 2 (tracks; 4 reports)" in text and "patrol rounds missed: 1" in text
    assert "2026-02-20 · đêm" in text
    vi = b.get("/site/office-a/report?year=2026&lang=vi").body
    assert "lượt tuần tra bị bỏ lỡ" in vi and "Các con số của biểu đồ" in vi


def test_the_site_board_shows_each_sites_zones_troubles_drones_and_patrols(
    site: tuple[Server, Ingest, Clock],
) -> None:
    srv, ing, clock = site
    P, Q = "officeguard/office-a", "officeguard/office-b"
    ing.accept(f"{P}/status", b'{"online": true, "version": "0.1.0"}', clock.now)
    ing.accept(f"{Q}/status", b'{"online": true, "version": "0.1.0"}', clock.now)
    ing.accept(f"{P}/heartbeat", b'{"interval_s": 60}', clock.now)
    ing.accept(f"{P}/zone/finance/state", b'{"state": "disarmed", "alarm": false}', clock.now)
    ing.accept(f"{P}/zone/finance/state", b'{"state": "armed_away", "alarm": false}', clock.now + 1)
    ing.accept(f"{P}/zone/lobby/state", b'{"state": "triggered", "alarm": true}', clock.now)
    ing.accept(
        f"{P}/trouble/state",
        b'{"troubles": [{"source": "siren.hall", "cid": "E321", "what": "siren fault"}]}',
        clock.now,
    )
    ing.accept(f"{P}/drone/rid.aa", b'{"uas_id": "1596F3504570"}', clock.now)
    ing.accept(f"{P}/drone/rid.bb", b'{"uas_id": "gone"}', clock.now)
    ing.accept(f"{P}/drone/rid.bb", b"", clock.now + 1)  # that track was lost
    patrol = {"state": "late", "next_due": None, "round": None,
              "last_round": {"due": "2026-02-17T02:00:00+07:00", "outcome": "missed", "at": "x"}}  # fmt: skip
    ing.accept(f"{P}/patrol/night", json.dumps(patrol).encode(), clock.now)
    ing.accept(f"{Q}/zone/store/state", b'{"state": "armed_night", "alarm": false}', clock.now)
    ing.accept(f"{Q}/trouble/state", b'{"troubles": []}', clock.now)
    for n, (track, update) in enumerate((("rid.aa", False), ("rid.aa", True), ("rid.cc", False))):
        e = {"id": uuid.uuid4().hex, "seq": n + 1, "site": "office-a", "ts": "2027-01-15T08:00:00+07:00",
             "kind": "drone", "cid": "E150", "text": "drone", "detail": {"track": track, "detector": "rid", "update": update}}  # fmt: skip
        ing.accept(f"{P}/event", json.dumps(e).encode(), clock.now - 3600)
    old = {"id": uuid.uuid4().hex, "seq": 9, "site": "office-b", "ts": "2027-01-13T08:00:00+07:00",
           "kind": "drone", "cid": "E150", "text": "drone", "detail": {"track": "x", "detector": "rid"}}  # fmt: skip
    ing.accept(f"{Q}/event", json.dumps(old).encode(), clock.now - 3 * 86400)  # too old to show
    ing.flush(clock.now + 1)
    ing.tick(clock.now + 1)
    b = Browser(srv.url)
    b.login("lan", PW)
    page = b.get("/sites").body
    a = re.search(r'<tr class="\w+" id="site-office-a">(.*?)</tr>', page, re.S)
    bb = re.search(r'<tr class="\w+" id="site-office-b">(.*?)</tr>', page, re.S)
    assert a is not None and bb is not None
    row_a, row_b = a.group(1), bb.group(1)
    assert 'class="chip green" data-state="armed_away">finance: armed_away' in row_a
    assert 'class="chip red" data-state="triggered">lobby: triggered' in row_a
    assert "siren fault" in row_a and "1 tracked now" in row_a and "2 tracks in 24 h" in row_a
    assert 'class="bad" data-state="late">night: late · last round missed' in row_a
    assert 'data-state="armed_night">store: armed_night' in row_b and "None." in row_b
    assert "tracked now" not in row_b and "tracks in 24 h" not in row_b
    assert 'data-label="Zones"' in row_a  # the phone's layout labels each cell
    vi = b.get("/sites?lang=vi").body
    assert "finance: bật (vắng người)" in vi and "night: trễ · lượt trước bỏ lỡ" in vi


def test_the_other_pages_live_stream_says_only_which_priority_1_is_new_without_the_queue(
    site: tuple[Server, Ingest, Clock],
) -> None:
    srv, ing, clock = site
    b = Browser(srv.url)
    b.login("lan", PW)
    with b.opener.open(srv.url + "/live/p1", timeout=10) as stream:

        def next_event() -> list[str]:
            lines: list[str] = []
            while not lines or lines[-1] != "":
                lines.append(stream.readline().decode().rstrip("\n"))
            return lines[:-1]

        assert next_event() == ["retry: 2000"]
        assert next_event() == ["event: queue", "data: 0 "]
        alarm(ing, clock.now)  # a burglary: priority 2, nothing to beep for
        assert next_event() == ["event: queue", "data: 1 "]
        eid = alarm(ing, clock.now, cid="E120", zone="hall")  # a panic: priority 1
        assert next_event() == ["event: queue", f"data: 2 {eid}"]
    page = b.get("/sites").body
    assert 'id="sound-off"' in page and 'EventSource("/live/p1")' in page


def test_a_sites_page_keeps_a_zone_state_older_than_its_last_5000_messages(
    site: tuple[Server, Ingest, Clock],
) -> None:
    from controller.station import schema

    srv, ing, clock = site
    P = "officeguard/office-a"
    ing.accept(f"{P}/zone/vault/state", b'{"state": "armed_away", "alarm": false}', clock.now)
    ing.flush(clock.now)
    beats = [{"site": "office-a", "topic": "heartbeat", "received_at": clock.now, "body": "{}"}]
    with ing.store.tx() as conn:
        conn.execute(schema.site_log.insert(), beats * 5001)  # ~3.5 days of heartbeats
    b = Browser(srv.url)
    b.login("lan", PW)
    page = b.get("/site/office-a").body
    assert '<td>vault</td><td data-state="armed_away">' in page
