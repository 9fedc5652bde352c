"""The security office console: the pure board, and `officeguard monitor` against a real Mosquitto."""

from __future__ import annotations

import json
import os
import select
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
from hypothesis import given
from hypothesis import strategies as st
from paho.mqtt.enums import CallbackAPIVersion

from controller.config import Mqtt
from controller.console import net as monitor_net
from controller.console.model import Console
from controller.console.net import BrokerSettings, MonitorClient
from tests.mqtt_broker import Broker

ROOT = Path(__file__).resolve().parents[2]
P = "officeguard"


def j(obj: Any) -> bytes:
    return json.dumps(obj).encode()


def event(site: str, seq: int, kind: str = "alarm", eid: str | None = None, **kw: Any) -> bytes:
    return j(
        {
            "id": eid or uuid.uuid4().hex,
            "seq": seq,
            "site": site,
            "ts": "2026-02-17T01:25:00+07:00",
            "kind": kind,
            "text": f"{kind} {seq}",
            "detail": {},
            **kw,
        }
    )


# ----------------------------------------------------------------------------- the pure board


def test_online_then_offline_by_last_will_and_clean_stop():
    c = Console(P)
    c.ingest(f"{P}/a/status", j({"online": True, "version": "0.4.0", "ts": "t1"}), now=0)
    b = c.sites["a"]
    assert (b.online, b.version, b.offline_reason) == (True, "0.4.0", None)
    c.ingest(f"{P}/a/status", j({"online": False}), now=5)  # the broker's last will
    assert b.online is False and b.version == "0.4.0"
    assert b.offline_reason == "connection lost (last will)"
    c.ingest(f"{P}/a/status", j({"online": True, "version": "0.4.1", "ts": "t2"}), now=9)
    assert b.online is True and b.version == "0.4.1" and b.offline_reason is None
    c.ingest(f"{P}/a/status", j({"online": False, "ts": "t3", "reason": "stopped"}), now=10)
    assert b.offline_reason == "stopped"
    snap = c.snapshot(now=10)["sites"]["a"]
    assert snap["online"] is False and snap["stale"] is False
    c.ingest(f"{P}/a/status", b"", now=11)  # retained status cleared: site out of service
    assert b.online is None


def test_zone_states_alarms_sensors_and_cleared_topics():
    c = Console(P)
    c.ingest(f"{P}/a/zone/leadership/state", j({"state": "armed_away", "alarm": False}), 0)
    c.ingest(f"{P}/a/zone/safe/state", j({"state": "triggered", "alarm": True}), 0)
    c.ingest(f"{P}/a/zone/hall/state", j({"state": "disarmed", "alarm": True}), 0)  # in memory
    c.ingest(f"{P}/a/sensor/door.director/state", j({"active": True, "bypassed": False}), 0)
    b = c.sites["a"]
    assert b.alarms() == ["hall", "safe"]
    assert b.zones["leadership"]["state"] == "armed_away"
    assert b.sensors["door.director"]["active"] is True
    c.ingest(f"{P}/a/zone/safe/state", j({"state": "disarmed", "alarm": False}), 1)
    c.ingest(f"{P}/a/zone/hall/state", b"", 1)  # zone removed from the config
    assert b.alarms() == [] and set(b.zones) == {"leadership", "safe"}


def test_troubles_detectors_and_drone_sightings_cleared_by_empty_payload():
    c = Console(P)
    c.ingest(
        f"{P}/a/trouble/state",
        j({"troubles": [{"source": "detector.roof", "cid": "E330", "what": "offline"}], "ts": "t"}),
        0,
    )
    c.ingest(f"{P}/a/detector/detector.roof/state", j({"online": True, "tracks": 1}), 0)
    drone = {"track": "rid-1", "detector": "detector.roof", "uas_id": "1596F123", "distance_m": 80}
    c.ingest(f"{P}/a/drone/rid-1", j(drone), 0)
    c.ingest(f"{P}/a/drone/rf-7", j({"track": "rf-7", "detector": "detector.roof"}), 0)
    snap = c.snapshot(0)["sites"]["a"]
    assert snap["troubles"] == [{"source": "detector.roof", "cid": "E330", "what": "offline"}]
    assert snap["detectors"]["detector.roof"]["tracks"] == 1
    assert set(snap["drones"]) == {"rid-1", "rf-7"}
    assert snap["drones"]["rid-1"]["uas_id"] == "1596F123"
    c.ingest(f"{P}/a/drone/rid-1", b"", 1)  # track lost
    c.ingest(f"{P}/a/trouble/state", j({"troubles": [], "ts": "t"}), 1)
    snap = c.snapshot(1)["sites"]["a"]
    assert set(snap["drones"]) == {"rf-7"} and snap["troubles"] == []


def test_events_deduplicated_by_id_and_in_seq_order_per_site():
    c = Console(P)
    e1, e2, e3 = (uuid.uuid4().hex for _ in range(3))
    c.ingest(f"{P}/a/event", event("a", 1, eid=e1), 0)
    c.ingest(f"{P}/b/event", event("b", 7), 0)
    c.ingest(f"{P}/a/event", event("a", 3, eid=e3), 0)
    c.ingest(f"{P}/a/event", event("a", 2, eid=e2), 0)  # late (redelivered through another path)
    c.ingest(f"{P}/a/event", event("a", 1, eid=e1), 0)  # re-sent after a reconnect: same id
    c.ingest(f"{P}/a/event", event("a", 3, eid=e3), 0)
    assert c.events == 4 and c.duplicates == 2
    assert [e["seq"] for e in c.site_feed("a")] == [1, 2, 3]
    assert [(e["site"], e["seq"]) for e in c.feed] == [("a", 1), ("b", 7), ("a", 2), ("a", 3)]
    a = c.sites["a"]
    assert a.events == 3 and a.max_seq == 3 and a.last_event is not None
    assert a.last_event["id"] == e3


def test_seq_gaps_count_events_not_seen_and_late_ones_fill_them():
    c = Console(P)
    c.ingest(f"{P}/a/event", event("a", 40), 0)  # first seen: nothing missed before it
    c.ingest(f"{P}/a/event", event("a", 41), 0)
    c.ingest(f"{P}/a/event", event("a", 45), 0)  # 42, 43, 44 not seen
    assert c.sites["a"].seq_gaps == 3 and c.seq_gaps == 3
    c.ingest(f"{P}/a/event", event("a", 43), 0)
    assert c.snapshot(0)["sites"]["a"]["seq_gaps"] == 2
    assert c.snapshot(0)["counters"]["seq_gaps"] == 2
    assert [e["seq"] for e in c.site_feed("a")] == [40, 41, 43, 45]


def test_feed_and_seen_ids_are_bounded():
    c = Console(P, feed_size=10, seen_ids=50)
    ids = [uuid.uuid4().hex for _ in range(120)]
    for i, eid in enumerate(ids, start=1):
        c.ingest(f"{P}/a/event", event("a", i, eid=eid), 0)
    assert len(c.feed) == 10 and [e["seq"] for e in c.feed] == list(range(111, 121))
    assert len(c._seen) == 50
    c.ingest(f"{P}/a/event", event("a", 120, eid=ids[-1]), 0)  # recent: still known
    assert c.duplicates == 1
    c.ingest(f"{P}/a/event", event("a", 5, eid=uuid.uuid4().hex), 0)  # older than the feed
    assert [e["seq"] for e in c.feed] == list(range(111, 121))


def test_malformed_payloads_are_counted_never_raised():
    c = Console(P)
    bad = [
        (f"{P}/a/status", b"not json"),
        (f"{P}/a/status", j({"online": "yes"})),
        (f"{P}/a/status", j([1, 2])),
        (f"{P}/a/zone/z/state", j({"alarm": True})),
        (f"{P}/a/zone/z/state", b"\xff\xfe"),
        (f"{P}/a/sensor/s/state", j({"active": "on"})),
        (f"{P}/a/trouble/state", j({"troubles": "many"})),
        (f"{P}/a/event", j({"seq": 1, "kind": "alarm"})),  # no id
        (f"{P}/a/event", j({"id": "x", "seq": "1", "kind": "alarm"})),
        (f"{P}/a/event", j({"id": "x", "seq": True, "kind": "alarm"})),
        (f"{P}/a/event", b"{" * 100_000),
        (f"{P}/a/heartbeat", b"null"),
        (f"{P}/a/drone/t1", b"[]"),
    ]
    for topic, payload in bad:
        c.ingest(topic, payload, 0)
    assert c.malformed == len(bad)
    c.ingest(f"{P}/a/cmd/result", j({"id": "1", "ok": True}), 0)  # not for the console
    c.ingest("other/a/status", j({"online": True}), 0)
    c.ingest(f"{P}x/a/status", j({"online": True}), 0)
    c.ingest(f"{P}/a", b"{}", 0)
    assert c.ignored == 4 and c.malformed == len(bad)
    assert c.sites["a"].online is None and c.sites["a"].zones == {}
    json.dumps(c.snapshot(0))  # still printable


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=12,
)
_payload = st.one_of(
    st.binary(max_size=64),
    _json.map(lambda v: json.dumps(v).encode()),
    st.fixed_dictionaries(
        {"id": st.text(max_size=4), "seq": _json, "kind": _json, "online": _json, "state": _json},
    ).map(lambda v: json.dumps(v).encode()),
)
_topic = st.builds(
    lambda site, rest: f"{P}/{site}/{rest}",
    st.sampled_from(["a", "b", ""]),
    st.sampled_from(
        ["status", "heartbeat", "event", "zone/z/state", "sensor/s/state", "trouble/state",
         "detector/d/state", "drone/t", "cmd", "zone/z/set", "x/y/z/w"]
    ),
)


@given(st.lists(st.tuples(_topic, _payload), max_size=40))
def test_no_message_makes_the_board_raise(messages):
    c = Console(P, feed_size=8)
    for i, (topic, payload) in enumerate(messages):
        c.ingest(topic, payload, now=float(i))
    snap = c.snapshot(now=1e6)
    json.dumps(snap)  # always printable as --once --json
    counters = snap["counters"]
    assert counters["messages"] == len(messages)
    assert c.events + c.duplicates + c.malformed + c.ignored <= len(messages)
    assert len(c.feed) <= 8
    for site in snap["sites"].values():
        assert site["seq_gaps"] >= 0


def test_stale_after_three_observed_heartbeat_intervals():
    c = Console(P)
    c.ingest(f"{P}/a/status", j({"online": True, "version": "1"}), now=0)
    b = c.sites["a"]
    assert b.heartbeat_interval == 60 and not b.stale(179) and b.stale(181)  # default 60 s
    for t in (0, 10, 20, 30):
        c.ingest(f"{P}/a/heartbeat", j({"ts": "t", "seq": 4, "outbox": 0, "uptime_s": t}), now=t)
    assert b.heartbeat_interval == 10
    assert not c.snapshot(59)["sites"]["a"]["stale"]
    assert c.snapshot(61)["sites"]["a"]["stale"]
    c.ingest(f"{P}/a/heartbeat", j({"ts": "t", "seq": 4, "outbox": 0}), now=62)
    assert not b.stale(62) and b.heartbeat == {"ts": "t", "seq": 4, "outbox": 0}
    c.ingest(f"{P}/a/status", j({"online": False}), now=100)
    assert not b.stale(1000)  # offline is shown as offline, not stale


# ----------------------------------------------------------------------------- against Mosquitto




def publisher(port: int, v5: bool = False) -> paho.Client:
    c = paho.Client(
        CallbackAPIVersion.VERSION2,
        client_id=f"pub-{uuid.uuid4().hex[:8]}",
        protocol=paho.MQTTv5 if v5 else paho.MQTTv311,
    )
    c.max_inflight_messages_set(1000)
    c.connect("127.0.0.1", port)
    c.loop_start()
    return c


def publish_all(c: paho.Client, msgs: list[tuple[str, bytes, bool]]) -> None:
    infos = [c.publish(t, p, qos=1, retain=r) for t, p, r in msgs]
    for i in infos:
        i.wait_for_publish(10)


def og(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "160"}
    return subprocess.run(
        [sys.executable, "-m", "controller", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
        env=env,
    )


def start_og(*args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "160"}
    return subprocess.Popen(
        [sys.executable, "-m", "controller", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env=env,
    )


def wait_subscribed(proc: subprocess.Popen[str], timeout: float = 20) -> list[str]:
    """Read the monitor's log until it says it is subscribed (events before that are not its)."""
    assert proc.stderr is not None
    lines: list[str] = []
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        ready, _, _ = select.select([proc.stderr], [], [], max(0.0, end - time.monotonic()))
        if not ready:
            break
        line = proc.stderr.readline()
        if not line:
            break
        lines.append(line)
        if "subscribed under" in line:
            return lines
    raise AssertionError(f"monitor did not subscribe: {''.join(lines)}")


def test_once_json_snapshot_of_two_sites_from_a_real_broker(broker):
    pub = publisher(broker.port)
    dup = uuid.uuid4().hex
    try:
        publish_all(
            pub,
            [
                (f"{P}/office-a/status", j({"online": True, "version": "0.4.0", "ts": "t"}), True),
                (f"{P}/office-a/zone/leadership/state", j({"state": "triggered", "alarm": True}), True),
                (f"{P}/office-a/zone/lobby/state", j({"state": "disarmed", "alarm": False}), True),
                (f"{P}/office-a/trouble/state", j({"troubles": [{"source": "ac", "what": "mains"}]}), True),
                (f"{P}/office-a/drone/rid-1", j({"track": "rid-1", "uas_id": "UAS1"}), True),
                (f"{P}/office-b/status", j({"online": False}), True),  # its last will
                (f"{P}/office-b/zone/main/state", j({"state": "armed_night", "alarm": False}), True),
                (f"{P}/office-b/status/extra", b"x", True),
            ],
        )
        # the console only sees live events while it runs: publish them once it is subscribed
        proc = start_og("monitor", "--broker", broker.url, "--once", "--json", "--wait", "3")
        wait_subscribed(proc)
        publish_all(
            pub,
            [
                (f"{P}/office-a/event", event("office-a", 1, eid=dup), False),
                (f"{P}/office-a/event", event("office-a", 2, kind="drone"), False),
                (f"{P}/office-a/event", event("office-a", 1, eid=dup), False),  # re-sent
                (f"{P}/office-b/event", b"garbage", False),
            ],
        )
        out, err = proc.communicate(timeout=30)
    finally:
        pub.disconnect()
        pub.loop_stop()
    assert proc.returncode == 0, err
    snap = json.loads(out)
    a, b = snap["sites"]["office-a"], snap["sites"]["office-b"]
    assert a["online"] is True and a["version"] == "0.4.0"
    assert a["alarms"] == ["leadership"]
    assert a["zones"]["lobby"]["state"] == "disarmed"
    assert a["troubles"] == [{"source": "ac", "what": "mains"}]
    assert list(a["drones"]) == ["rid-1"]
    assert b["online"] is False and b["offline_reason"] == "connection lost (last will)"
    assert b["zones"]["main"]["state"] == "armed_night" and b["alarms"] == []
    assert a["events"] == 2 and a["last_seq"] == 2 and a["last_event"]["kind"] == "drone"
    assert snap["counters"]["duplicates"] == 1 and snap["counters"]["malformed"] == 1


def test_once_table_and_unreachable_broker(broker):
    pub = publisher(broker.port)
    publish_all(pub, [(f"{P}/office-a/status", j({"online": True, "version": "9.9"}), True)])
    pub.disconnect()
    pub.loop_stop()
    r = og("monitor", "--broker", broker.url, "--once", "--wait", "0.5")
    assert r.returncode == 0, r.stderr
    assert "office-a" in r.stdout and "online" in r.stdout and "9.9" in r.stdout
    port = broker.port
    broker.stop()
    r = og("monitor", "--broker", f"mqtt://127.0.0.1:{port}", "--once", "--json", "--wait", "0.5")
    assert r.returncode == 1 and r.stdout == ""
    assert "cannot reach the broker" in r.stderr and "connection refused" in r.stderr
    r = og("monitor", "--broker", "http://x", "--once")
    assert r.returncode == 64 and "bad broker URL" in r.stderr


def test_two_monitors_with_a_shared_subscription_split_the_events(broker):
    procs = [
        start_og("monitor", "--broker", broker.url, "--share", "office", "--once", "--json", "--wait", "5")
        for _ in range(2)
    ]
    pub = publisher(broker.port, v5=True)
    try:
        publish_all(pub, [(f"{P}/office-a/status", j({"online": True}), True)])
        for p in procs:
            wait_subscribed(p)
        sent = [(f"{P}/office-{i % 3}/event", event(f"office-{i % 3}", i + 1), False) for i in range(60)]
        publish_all(pub, sent)
        outs = [p.communicate(timeout=30) for p in procs]
    finally:
        pub.disconnect()
        pub.loop_stop()
        for p in procs:
            if p.poll() is None:
                p.kill()
    snaps = []
    for p, (out, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err
        snaps.append(json.loads(out))
    counts = [s["counters"]["events"] for s in snaps]
    assert sum(counts) == 60, counts  # together they saw every event exactly once
    assert all(n > 0 for n in counts), counts  # and both took a share
    for s in snaps:  # each still sees the retained state
        assert s["sites"]["office-a"]["online"] is True


def test_live_view_exits_by_itself_after_duration(broker):
    pub = publisher(broker.port)
    publish_all(
        pub,
        [
            (f"{P}/office-a/status", j({"online": True, "version": "0.4.0"}), True),
            (f"{P}/office-a/zone/leadership/state", j({"state": "triggered", "alarm": True}), True),
        ],
    )
    proc = start_og("monitor", "--broker", broker.url, "--duration", "3")
    try:
        wait_subscribed(proc)
        publish_all(pub, [(f"{P}/office-a/event", event("office-a", 5, text="Intrusion [b]x[/b]"), False)])
        out, err = proc.communicate(timeout=30)
    finally:
        pub.disconnect()
        pub.loop_stop()
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert "office-a" in out and "leadership" in out and "Intrusion [b]x[/b]" in out


def _utf8(s: str) -> bytes:
    b = s.encode()
    return len(b).to_bytes(2, "big") + b


def connect_with_will(port: int, client_id: str, will_topic: str, will: bytes) -> socket.socket:
    """A bare MQTT 3.1.1 client with a retained QoS 1 last will, like a site's daemon."""
    body = (
        _utf8("MQTT")
        + bytes([4, 0x02 | 0x04 | 0x08 | 0x20])  # clean session, will, will QoS 1, will retain
        + (60).to_bytes(2, "big")
        + _utf8(client_id)
        + _utf8(will_topic)
        + len(will).to_bytes(2, "big")
        + will
    )
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(b"\x10" + bytes([len(body)]) + body)
    assert s.recv(4)[3] == 0  # CONNACK accepted
    return s


def pump(client: MonitorClient, cond: Any, timeout: float = 10) -> bool:
    end = time.monotonic() + timeout
    client.run(until=lambda: cond() or time.monotonic() > end)
    return bool(cond())


def test_last_will_and_reconnect_after_a_broker_restart(broker):
    assert monitor_net.BUFFERED  # paho still has the hook the fast reads rely on
    board = Console(P)
    client = MonitorClient(
        BrokerSettings.from_config(Mqtt(url=broker.url)),
        P,
        lambda t, p: board.ingest(t, p, time.monotonic()),
    )
    client.connect()
    try:
        assert pump(client, lambda: client.subscribed)
        site = connect_with_will(broker.port, "og-a", f"{P}/office-a/status", j({"online": False}))
        pub = publisher(broker.port)
        publish_all(pub, [(f"{P}/office-a/status", j({"online": True, "version": "1"}), True)])
        assert pump(client, lambda: board.sites.get("office-a") and board.sites["office-a"].online)
        site.close()  # the site's network is cut: no DISCONNECT, the broker sends its will
        assert pump(client, lambda: board.sites["office-a"].online is False)
        assert board.sites["office-a"].offline_reason == "connection lost (last will)"
        pub.disconnect()
        pub.loop_stop()

        broker.stop()
        assert pump(client, lambda: not client.connected, timeout=5)
        broker.start()  # same port; the console reconnects and subscribes again by itself
        assert pump(client, lambda: client.subscribed, timeout=20)
        pub = publisher(broker.port)
        publish_all(pub, [(f"{P}/office-a/status", j({"online": True, "version": "2"}), True)])
        assert pump(client, lambda: board.sites["office-a"].version == "2")
        assert client.connects == 2 and board.sites["office-a"].online is True
        pub.disconnect()
        pub.loop_stop()
    finally:
        client.disconnect()


def test_credentials_from_the_site_config_and_a_refused_login(tmp_path):
    (tmp_path / "broker").mkdir()
    passwd = tmp_path / "broker" / "passwd"
    subprocess.run(
        ["mosquitto_passwd", "-b", "-c", str(passwd), "office", "s3cret-pass"], check=True
    )
    passwd.chmod(0o600)
    b = Broker(tmp_path / "broker")
    b.conf.write_text(
        b.conf.read_text().replace("allow_anonymous true", "allow_anonymous false")
        + f"password_file {passwd}\n"
    )
    b.start()
    try:
        secret = tmp_path / "mqtt.pass"
        demo = (ROOT / "config" / "demo.yaml").read_text(encoding="utf-8")
        cfg = tmp_path / "site.yaml"

        def config(password: str) -> str:
            secret.write_text(password + "\n")
            cfg.write_text(
                demo.replace("mqtt://127.0.0.1:1883", b.url)
                .replace("# username: office-a", "username: office")
                .replace("# password_file: /etc/officeguard/mqtt.pass", f"password_file: {secret}"),
                encoding="utf-8",
            )
            return str(cfg)

        r = og("monitor", "-c", config("s3cret-pass"), "--once", "--json", "--wait", "0.5")
        assert r.returncode == 0, r.stderr
        assert json.loads(r.stdout)["broker"]["connected"] is True
        r = og("monitor", "-c", config("wrong"), "--once", "--json", "--wait", "0.5")
        assert r.returncode == 1 and r.stdout == ""
        assert "refused the connection" in r.stderr
        assert "wrong" not in r.stderr and "s3cret" not in r.stderr  # never echo a secret
    finally:
        b.stop()


def test_a_client_with_nothing_to_tick_waits_on_its_socket_instead_of_spinning(monkeypatch):
    """The station runs the client without a tick: each idle step must still wait (it once
    waited 0 s after the first half second, and an idle station took half a core)."""
    client = MonitorClient(BrokerSettings.from_config(Mqtt(url="mqtt://127.0.0.1:1")), P,
                           lambda t, p: None)  # fmt: skip
    now = [1000.0]
    monkeypatch.setattr(monitor_net.time, "monotonic", lambda: now[0])
    waits: list[float] = []

    def idle_step(timeout: float) -> None:  # a quiet socket: select() waits the whole timeout
        waits.append(timeout)
        now[0] += timeout

    monkeypatch.setattr(client, "step", idle_step)
    client.run(until=lambda: len(waits) >= 40)
    assert min(waits) >= 0.25 and sum(waits) >= 10
