"""The site board's latest states: read whole once, then only what was added since."""

from __future__ import annotations

from controller.station import schema as t
from controller.station.board import LatestStates, site_board, summary
from controller.station.store import Store


def log(store: Store, *rows: tuple[int, str, str, str]) -> None:
    with store.tx() as conn:
        conn.execute(
            t.site_log.insert(),
            [
                {"n": n, "site": s, "topic": tp, "received_at": float(n), "body": b}
                for n, s, tp, b in rows
            ],
        )


def test_the_latest_states_keep_the_newest_message_of_each_topic_across_reads(store: Store) -> None:
    log(
        store,
        (1, "a", "zone/z/state", '{"state": "disarmed"}'),
        (2, "a", "zone/z/state", '{"state": "armed_away"}'),
        (3, "a", "heartbeat", "{}"),
        (4, "a", "station/command", "{}"),
        (5, "b", "patrol/night", '{"state": "waiting"}'),
    )
    states = LatestStates(margin=10)
    assert states.read(store) == {
        "a": [{"topic": "zone/z/state", "body": '{"state": "armed_away"}'}],
        "b": [{"topic": "patrol/night", "body": '{"state": "waiting"}'}],
    }
    log(store, (7, "a", "zone/z/state", '{"state": "triggered"}'), (8, "a", "drone/t1", "{}"))
    log(store, (6, "a", "zone/z/state", '{"state": "armed_home"}'))  # older than 7: not taken
    log(store, (9, "b", "patrol/night", ""))  # a cleared topic is kept as cleared
    got = states.read(store)
    assert got["a"] == [
        {"topic": "drone/t1", "body": "{}"},
        {"topic": "zone/z/state", "body": '{"state": "triggered"}'},
    ]
    log(store, (5_000_000, "c", "zone/q/state", "{}"))  # the log went on far past them ...
    assert states.read(store)["c"] == [{"topic": "zone/q/state", "body": "{}"}]
    log(store, (4_999_995, "a", "trouble/state", "{}"))  # ... and this row committed late
    assert states.read(store)["a"][1] == {"topic": "trouble/state", "body": "{}"}
    assert got["b"] == [{"topic": "patrol/night", "body": ""}]
    assert site_board(got["b"])["patrols"] == {}


def test_a_boards_summary_tells_armed_zones_alarms_and_a_patrol_gone_wrong() -> None:
    b = site_board(
        [
            {"topic": "zone/a/state", "body": '{"state": "armed_night", "alarm": false}'},
            {"topic": "zone/b/state", "body": '{"state": "disarmed", "alarm": false}'},
            {"topic": "zone/c/state", "body": '{"state": "armed_away", "alarm": true}'},
            {"topic": "drone/t", "body": '{"uas_id": "x"}'},
            {
                "topic": "patrol/p",
                "body": '{"state": "in_round", "last_round": {"outcome": "missed"}}',
            },
            {"topic": "patrol/q", "body": '{"state": "waiting", "last_round": null}'},
        ]
    )
    s = summary(b)
    assert [(z["zone"], z["cls"]) for z in s["zones"]] == [
        ("a", "green"),
        ("b", "grey"),
        ("c", "red"),
    ]
    assert s["drones_now"] == 1
    assert [(p["plan"], p["last"], p["bad"]) for p in s["patrols"]] == [
        ("p", "missed", True),
        ("q", None, False),
    ]
