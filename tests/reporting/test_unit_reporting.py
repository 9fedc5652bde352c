"""The reporting component (and its remote commands) against a fake site and a fake link:
troubles it finds go on the site's trouble board, the retained state is read through the
port, the heartbeat counts the board, and a command is carried out by `Site.operate`."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from controller.config import SiteConfig, load_config
from controller.remote.component import RemoteCommands
from controller.reporting import component as reporting
from controller.reporting.component import Reporting
from tests.conftest import REFERENCE, config_with
from tests.fake_site import FakeSite
from tests.reporting.test_reporting import FakeLink

P = "officeguard/office-a"


@pytest.fixture(autouse=True)
def fake_link(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(reporting, "MqttLink", FakeLink)


@pytest.fixture
def site(tmp_path: Path) -> Iterator[FakeSite]:
    fake = FakeSite(load_config(REFERENCE).config, tmp_path)
    yield fake
    fake.close()


def run(site: FakeSite, body: object) -> None:
    async def main() -> None:
        rep = Reporting(site)
        rep.start()
        try:
            assert callable(body)
            await body(rep)
        finally:
            await rep.stop("test over")

    asyncio.run(main())


def link_of(rep: Reporting) -> FakeLink:
    assert isinstance(rep.link, FakeLink)
    return rep.link


def test_a_password_file_that_cannot_be_read_is_a_broker_trouble_on_the_board(
    tmp_path: Path,
) -> None:
    cfg: SiteConfig = config_with(mqtt={"password_file": str(tmp_path / "missing")})
    site = FakeSite(cfg, tmp_path)

    async def body(rep: Reporting) -> None:
        assert rep.link_error is not None and "missing" in rep.link_error

    run(site, body)
    [trouble] = list(site.trouble_board)
    assert (trouble["source"], trouble["cid"]) == ("mqtt", "E350")
    site.close()


def test_the_retained_state_reads_zones_and_the_detectors_link_through_the_port(
    site: FakeSite,
) -> None:
    site.statuses["detectors"] = {"rf.roof": {"link": "silent"}}

    async def body(rep: Reporting) -> None:
        link = link_of(rep)
        link.up()
        zone = [b for t, b, _ in link.sent if t == f"{P}/zone/finance/state"]
        det = [b for t, b, _ in link.sent if t == f"{P}/detector/rf.roof/state"]
        assert zone and isinstance(zone[-1], dict) and zone[-1]["state"] == "disarmed"
        assert det and isinstance(det[-1], dict)
        assert (det[-1]["online"], det[-1]["link"]) == (False, "silent")
        assert rep.connected

    run(site, body)


def test_the_heartbeat_counts_the_boards_troubles_and_the_uptime(site: FakeSite) -> None:
    site.trouble_board.raise_("journal", {"source": "journal", "cid": "E300", "what": "x"})

    async def body(rep: Reporting) -> None:
        link_of(rep).up()
        site.advance(timedelta(seconds=60))
        [beat] = [b for t, b, _ in link_of(rep).sent if t == f"{P}/heartbeat"]
        assert isinstance(beat, dict)
        assert beat["troubles"] == len(site.engine.troubles()) + 1
        assert beat["uptime_s"] == 60 and beat["interval_s"] == 60

    run(site, body)


def test_a_command_is_carried_out_by_the_site_and_answered_without_the_code(
    site: FakeSite,
) -> None:
    async def body(rep: Reporting) -> None:
        link_of(rep).up()
        cmd = {"id": "c1", "action": "arm", "zones": ["finance"], "code": "2468"}
        result = await rep.commands.handle(f"{P}/cmd", json.dumps(cmd).encode(), None)
        assert result["ok"] is True and result["id"] == "c1"
        [(done, channel)] = site.operated
        assert (done.action, done.zones, channel) == ("arm", ("finance",), "mqtt")
        [answer] = [b for t, b, _ in link_of(rep).sent if t == f"{P}/cmd/result"]
        assert "2468" not in json.dumps(answer)

    run(site, body)


def test_a_command_key_that_cannot_be_read_is_a_trouble_until_a_reload_reads_it(
    tmp_path: Path,
) -> None:
    key = tmp_path / "command.key"
    cfg = config_with(mqtt={"command_key_file": str(key)})
    site = FakeSite(cfg, tmp_path)
    link = FakeLink(cfg.mqtt, cfg.site.id, site.clock.now)
    commands = RemoteCommands(site, link)  # type: ignore[arg-type]
    assert "command_key" in site.trouble_board
    key.write_text("a long enough secret for signing\n", encoding="utf-8")
    key.chmod(0o600)
    commands.reload()
    assert "command_key" not in site.trouble_board
    site.close()
