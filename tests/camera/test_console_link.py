"""The terminal monitor shows a `snapshot` event with where its images are: the alarm's
number and the topic of its pictures, named by the alarm's id."""

from __future__ import annotations

from controller.console.view import _event_row


def test_a_snapshot_event_row_links_the_alarm_and_its_image_topic() -> None:
    e = {"site": "office-a", "seq": 8, "ts": "2026-03-04T01:30:02+07:00", "kind": "snapshot",
         "zone": "perimeter", "text": "Camera cam.gate: 3 snapshots for event #5",
         "detail": {"event": "ab" * 16, "event_seq": 5, "camera": "cam.gate",
                    "images": [{"id": f"{'ab' * 16}-cam.gate-{n}"} for n in range(3)], "failed": []}}  # fmt: skip
    text = _event_row(e)[3].plain
    assert text.endswith(f"3 image(s) of #5: snapshot/{'ab' * 16}/")


def test_a_malformed_snapshot_event_still_shows() -> None:
    row = _event_row({"kind": "snapshot", "detail": "nonsense", "text": "x"})
    assert row[3].plain == "x"


def test_with_the_stations_address_a_snapshot_row_links_its_first_picture_there() -> None:
    e = {"site": "office-a", "seq": 8, "kind": "snapshot", "text": "Camera cam.gate: 2 snapshots",
         "detail": {"event": "cd" * 16, "event_seq": 5, "camera": "cam.gate",
                    "images": [{"id": f"{'cd' * 16}-cam.gate-{n}"} for n in range(2)], "failed": []}}  # fmt: skip
    text = _event_row(e, "https://station.example:8443/")[3]
    link = f"https://station.example:8443/snapshot/{'cd' * 16}-cam.gate-0"
    assert text.plain.endswith(f"2 image(s) of #5: {link}")
    assert any(span.style.link == link for span in text.spans if not isinstance(span.style, str))
