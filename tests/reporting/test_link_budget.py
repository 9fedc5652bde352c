"""The link's in-flight window belongs to events and retained alarm state first: command
results (bulk) take a small share of it, wait beyond that, and are given up past a bound;
the link announces a Maximum Packet Size, and a command topic ignores retained messages."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from controller.reporting import mqtt
from tests.mqtt_broker import Recorder, until, wait_for
from tests.reporting.test_mqtt_link import SITE, make_link, mosquitto


def test_command_results_never_take_the_window_from_an_event(tmp_path: Path) -> None:
    with mosquitto(tmp_path / "b", "max_inflight_messages 8\n") as broker:
        rec = Recorder(broker.port, f"officeguard/{SITE}/#", "rx")

        async def main() -> None:
            link = make_link(broker.url)
            link.start()
            # connected, and the link's own "online" status acknowledged: nothing in flight
            assert await until(lambda: link.connected and not link._pending)  # noqa: SLF001
            assert link.bulk_limit == 2  # a quarter of the broker's 8
            results = [
                link.publish(f"officeguard/{SITE}/cmd/result", f"r{i}", bulk=True)
                for i in range(200)
            ]
            assert len(link._bulk_pending) == 2  # noqa: SLF001 - the rest wait
            event = link.publish(f"officeguard/{SITE}/event", "alarm")
            # handed to paho at once, ahead of the 198 results still waiting
            assert len(link._pending) == 3  # noqa: SLF001
            assert await asyncio.wait_for(event, 5)
            assert all(await asyncio.gather(*results))
            await link.close()

        asyncio.run(main())
        assert wait_for(lambda: any(t.endswith("/event") for t, _, _ in rec.snapshot()))
        order = [p for t, p, _ in rec.snapshot() if t.endswith(("/event", "/cmd/result"))]
        assert order.index(b"alarm") < 10  # not behind the results
        rec.close()


def test_waiting_command_results_are_bounded(tmp_path: Path) -> None:
    with mosquitto(tmp_path / "b", "max_inflight_messages 4\n") as broker:

        async def main() -> None:
            link = make_link(broker.url)
            link.start()
            assert await until(lambda: link.connected)
            n = mqtt.BULK_WAITING + 50
            futs = [
                link.publish(f"officeguard/{SITE}/cmd/result", "r", bulk=True) for i in range(n)
            ]
            assert len(link._bulk_waiting) == mqtt.BULK_WAITING  # noqa: SLF001
            done = await asyncio.gather(*futs)
            assert done.count(False) >= 49 and link.bulk_dropped >= 49
            await link.close()

        asyncio.run(main())


def test_a_command_topic_ignores_retained_messages(tmp_path: Path) -> None:
    with mosquitto(tmp_path / "b") as broker:
        rec = Recorder(broker.port, "x/#", "pub")
        rec.client.publish(f"officeguard/{SITE}/cmd", b"old", qos=1, retain=True).wait_for_publish(5)
        got: list[bytes] = []

        async def main() -> None:
            link = make_link(broker.url)
            link.subscribe(f"officeguard/{SITE}/cmd", lambda t, p: got.append(p), retained=False)
            link.start()
            assert await until(lambda: link.connected)
            await asyncio.sleep(0.5)
            rec.client.publish(f"officeguard/{SITE}/cmd", b"live", qos=1)
            assert await until(lambda: got == [b"live"])
            await link.close()

        asyncio.run(main())
        rec.close()


def test_the_broker_never_sends_the_link_a_message_over_its_maximum_packet_size(
    tmp_path: Path,
) -> None:
    with mosquitto(tmp_path / "b") as broker:
        rec = Recorder(broker.port, "x/#", "pub")
        got: list[int] = []

        async def main() -> None:
            link = make_link(broker.url)
            link.subscribe(f"officeguard/{SITE}/cmd", lambda t, p: got.append(len(p)))
            link.start()
            assert await until(lambda: link.connected)
            await asyncio.sleep(0.3)
            topic = f"officeguard/{SITE}/cmd"
            rec.client.publish(topic, b"x" * (mqtt.MAX_INCOMING_PACKET + 1), qos=1)
            rec.client.publish(topic, json.dumps({"small": 1}), qos=1)
            assert await until(lambda: len(got) >= 1)
            await asyncio.sleep(0.3)
            assert got == [len(json.dumps({"small": 1}))]
            await link.close()

        asyncio.run(main())
        rec.close()
