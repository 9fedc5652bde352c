"""Shared test fixtures: the reference config and an engine harness on a virtual time line."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, settings

from controller.config import SiteConfig, load_config, parse_config
from controller.engine import Effect, Emit, Engine, Input, SetOutput
from controller.events import EventDraft
from tests.mqtt_broker import Broker

ROOT = Path(__file__).resolve().parent.parent
# the project's own copy of the public reference config (the contract's example site, unchanged)
REFERENCE = ROOT / "config" / "reference-site.yaml"
# test data the project keeps (see tests/data/README.md for where each file comes from)
DATA = Path(__file__).resolve().parent / "data"

settings.register_profile("default", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("ci", deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True)
settings.load_profile("ci" if os.environ.get("CI") else "default")


def reference_text() -> str:
    return REFERENCE.read_text(encoding="utf-8")


@pytest.fixture
def ref_config() -> SiteConfig:
    return load_config(REFERENCE).config


def config_with(**changes: object) -> SiteConfig:
    """The reference config with top-level sections replaced (dicts merged one level deep)."""
    data = yaml.safe_load(reference_text())
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(data.get(key), dict):
            data[key] = {**data[key], **value}
        else:
            data[key] = value
    return parse_config(yaml.safe_dump(data, allow_unicode=True)).config


T0 = datetime(2026, 3, 4, 11, 0, tzinfo=UTC)  # 18:00 in Hanoi, a Wednesday


@dataclass
class Harness:
    """An engine with a virtual time line and everything it emitted."""

    engine: Engine
    now: datetime = T0
    events: list[EventDraft] = field(default_factory=list)
    outputs_log: list[SetOutput] = field(default_factory=list)

    @classmethod
    def boot(cls, cfg: SiteConfig, sensors: dict[str, bool] | None = None, saved: dict | None = None,
             now: datetime = T0) -> Harness:
        h = cls(Engine(cfg), now)
        base = {s.id: False for s in cfg.sensors}
        base.update(sensors or {})
        h._take(h.engine.boot(now, base, saved))
        return h

    def _take(self, effects: list[Effect]) -> list[EventDraft]:
        out = []
        for e in effects:
            if isinstance(e, Emit):
                out.append(e.event)
            else:
                self.outputs_log.append(e)
        self.events.extend(out)
        return out

    def feed(self, inp: Input) -> list[EventDraft]:
        return self._take(self.engine.handle(inp, self.now))

    def wait(self, seconds: float) -> list[EventDraft]:
        self.now += timedelta(seconds=seconds)
        return self._take(self.engine.advance(self.now))

    def state(self, zone: str) -> str:
        return self.engine.zone_state(zone)

    def kinds(self, since: int = 0) -> list[str]:
        return [e.kind for e in self.events[since:]]

    def cids(self, since: int = 0) -> list[str]:
        return [e.cid for e in self.events[since:] if e.cid]

    def siren(self, sid: str = "siren.hall") -> bool:
        return self.engine.outputs[sid]


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    """A Mosquitto of its own on a free port, for MQTT tests."""
    work = tmp_path / "broker"
    work.mkdir(exist_ok=True)
    b = Broker(work)
    b.start()
    yield b
    b.stop()
    shutil.rmtree(work, ignore_errors=True)
