"""Camera pictures at the station: received on the sites' snapshot topics, checked and
size-capped, stored once, pruned oldest first past the station's total, and shown on the
incident's page (and served) only to a logged-in operator."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from controller.station import auth, pictures
from controller.station.ingest import Ingest
from controller.station.store import Store
from controller.station.web import Station
from tests.station.test_web import PW, Clock, alarm
from tests.station.webclient import Browser, Server

JPEG = b"\xff\xd8\xff\xe0" + b"picture" * 40 + b"\xff\xd9"


def send(ing: Ingest, eid: str, n: int, data: bytes = JPEG, now: float = 1_800_000_001.0) -> None:
    ing.accept(f"officeguard/office-a/snapshot/{eid}/{eid}-cam.gate-{n}", data, now)


@pytest.fixture
def site(store: Store) -> Iterator[tuple[Server, Ingest, Clock]]:
    auth.set_operator(store, "lan", "operator", PW)
    clock = Clock()
    ing = Ingest(store)
    station = Station(store, ing, secret_key="k" * 40, clock=clock, language="en")
    with Server(station) as srv:
        yield srv, ing, clock


def test_an_incidents_page_shows_its_pictures_and_serves_them_to_an_operator_only(
    site: tuple[Server, Ingest, Clock],
) -> None:
    srv, ing, clock = site
    eid = alarm(ing, clock.now)
    for n in (1, 0, 2):
        send(ing, eid, n, JPEG + bytes([n]))
    ing.flush(clock.now)
    assert pictures.of_events(ing.store, [eid])[0]["id"] == f"{eid}-cam.gate-0"
    stranger = Browser(srv.url)
    assert stranger.get(f"/snapshot/{eid}-cam.gate-0").url.endswith("/login")
    b = Browser(srv.url)
    b.login("lan", PW)
    page = b.get(f"/incident/{eid}").body
    shown = [page.index(f'data-id="{eid}-cam.gate-{n}"') for n in range(3)]
    assert shown == sorted(shown) and "Camera pictures" in page
    with b.opener.open(f"{srv.url}/snapshot/{eid}-cam.gate-2", timeout=10) as r:
        assert r.headers["Content-Type"] == "image/jpeg" and r.read() == JPEG + b"\x02"
    assert b.get("/snapshot/nothing-here-0").status == 404


def test_a_picture_sent_twice_is_stored_once_and_bad_ones_are_refused(store: Store) -> None:
    ing = Ingest(store)
    ing.pictures.max_image = 1000
    send(ing, "e1", 0)
    send(ing, "e1", 0)  # re-sent after an outage
    send(ing, "e1", 1, b"<html>login</html>")  # not a JPEG
    send(ing, "e1", 2, JPEG + b"x" * 1000)  # over the cap
    ing.accept("officeguard/office-a/snapshot/e1/other-cam.gate-3", JPEG, 1.0)  # not its event
    ing.flush(2.0)
    assert [r["id"] for r in pictures.of_events(store, ["e1"])] == ["e1-cam.gate-0"]
    counters = ing.counters()["pictures"]
    assert counters["refused"] == 3 and counters["stored"] == 2 and counters["waiting"] == 0


def test_past_the_stations_total_the_oldest_pictures_go_first(store: Store) -> None:
    ing = Ingest(store)
    ing.pictures.max_total = 3 * len(JPEG)
    for n in range(5):
        send(ing, "e2", n, now=100.0 + n)
        ing.flush(200.0)
    kept = [r["id"] for r in pictures.of_events(store, ["e2"])]
    assert kept == [f"e2-cam.gate-{n}" for n in (2, 3, 4)] and ing.pictures.pruned == 2


def test_the_station_subscribes_to_the_pictures_and_the_terminal_monitor_does_not() -> None:
    from controller.console.net import subscriptions

    assert "officeguard/+/snapshot/#" in subscriptions("officeguard", None, images=True)
    assert "$share/g/officeguard/+/snapshot/#" in subscriptions("officeguard", "g", images=True)
    assert not any("snapshot" in f for f in subscriptions("officeguard", None))
