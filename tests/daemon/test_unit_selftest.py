"""The self-test component against a fake site: off by default, E602 with the uptime every
`site.self_test` on the timer driver, the interval kept across a clock step; and the config
refuses a self-test more often than once a minute."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from controller.config import ConfigError, load_config
from controller.selftest import SelfTest
from tests.conftest import REFERENCE, config_with
from tests.fake_site import FakeSite


def test_the_self_test_is_off_by_default_and_sets_no_timer(tmp_path: Path) -> None:
    site = FakeSite(load_config(REFERENCE).config, tmp_path)
    test = SelfTest(site)
    test.start()
    site.advance(timedelta(days=2))
    assert site.recorded == [] and test.status() is None and site.timers.pending() == 0
    test.close()
    site.close()


def test_every_interval_the_controller_reports_itself_alive_with_its_uptime(
    tmp_path: Path,
) -> None:
    site = FakeSite(config_with(site={"self_test": "6h", "language": "en"}), tmp_path)
    test = SelfTest(site)
    test.start()
    site.advance(timedelta(hours=13))
    assert site.cids() == ["E602", "E602"]
    first, second = site.recorded
    assert first.kind == "system" and first.text == "Periodic test: controller alive (up 6h)"
    assert (first.detail["uptime_s"], second.detail["uptime_s"]) == (6 * 3600, 12 * 3600)
    assert first.detail["troubles"] == len(site.troubles())
    assert test.status() == {"self_test": {"next": (site.clock.now() + timedelta(hours=5)).isoformat(), "sent": 2}}
    test.close()
    site.close()


def test_a_clock_step_keeps_the_interval_its_length(tmp_path: Path) -> None:
    site = FakeSite(config_with(site={"self_test": "1h"}), tmp_path)
    test = SelfTest(site)
    test.start()
    site.clock.jump(site.clock.now() + timedelta(minutes=50))
    test.clock_stepped(timedelta(minutes=50))
    site.timers.reschedule_all()  # as the daemon does after every component moved its times
    site.advance(timedelta(minutes=30))
    assert site.recorded == []  # 30 min of the hour have run, the step does not count
    site.advance(timedelta(minutes=30))
    assert site.cids() == ["E602"]
    test.close()
    site.close()


def test_a_self_test_more_often_than_once_a_minute_is_refused() -> None:
    with pytest.raises(ConfigError, match="self_test"):
        config_with(site={"self_test": "10s"})
