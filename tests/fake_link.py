"""What the tests' stand-ins for MqttLink share."""

from __future__ import annotations

import asyncio

from controller.reporting.mqtt import Done


class SendViaPublish:
    """MqttLink.send() on top of a fake's publish(): done(ok) once its future is settled (a
    fake never refuses a message for good: refusals are tested against Mosquitto)."""

    connected: bool

    def publish(
        self, topic: str, payload: str | bytes, qos: int = 1, retain: bool = False
    ) -> asyncio.Future[bool]:
        raise NotImplementedError

    def send(
        self,
        topic: str,
        payload: str | bytes,
        qos: int,
        retain: bool,
        done: Done,
    ) -> bool:
        if not self.connected:
            return False
        fut = self.publish(topic, payload, qos, retain)
        fut.add_done_callback(lambda f: done(bool(f.result())))
        return True
