"""The `dc09` section: paths, numbers for the centre, and what is refused."""

from __future__ import annotations

import pytest

from controller.config import ConfigError
from controller.dc09.mapping import Numbering
from tests.conftest import config_with

PRIMARY = {"host": "127.0.0.1", "port": 12128}


def test_a_site_without_a_dc09_section_reports_to_no_centre(ref_config):
    assert ref_config.dc09 is None


def test_a_centre_with_a_primary_and_a_backup_path_is_read_with_its_defaults():
    cfg = config_with(
        dc09={"account": "1234", "primary": PRIMARY, "backup": {**PRIMARY, "protocol": "udp"}}
    )
    assert cfg.dc09 is not None
    assert cfg.dc09.primary.protocol == "tcp" and cfg.dc09.backup is not None
    assert cfg.dc09.backup.protocol == "udp"
    assert cfg.dc09.primary.poll.total_seconds() == 60
    assert (cfg.dc09.receiver, cfg.dc09.line, cfg.dc09.key_format) == ("0", "0", "hex")


@pytest.mark.parametrize(
    "section, where",
    [
        ({"account": "12", "primary": PRIMARY}, "dc09.account"),
        ({"account": "1234", "primary": {**PRIMARY, "protocol": "sctp"}}, "dc09.primary"),
        ({"account": "1234", "primary": PRIMARY, "partitions": {"nowhere": 1}}, "dc09.partitions"),
        ({"account": "1234", "primary": PRIMARY, "sensors": {"ghost": 1}}, "dc09.sensors"),
        ({"account": "1234", "primary": PRIMARY, "users": {"ghost": 1}}, "dc09.users"),
    ],
)
def test_a_bad_dc09_section_is_refused_with_its_path(section, where):
    with pytest.raises(ConfigError) as err:
        config_with(dc09=section)
    assert where in str(err.value.problems)


def test_zones_sensors_and_users_are_numbered_by_position_unless_pinned(ref_config):
    cfg = config_with(
        dc09={"account": "1234", "primary": PRIMARY, "sensors": {ref_config.sensors[1].id: 42}}
    )
    assert cfg.dc09 is not None
    n = Numbering.of(cfg, cfg.dc09)
    assert n.partitions[cfg.zones[0].id] == 1
    assert n.sensors[cfg.sensors[0].id] == 1 and n.sensors[cfg.sensors[1].id] == 42
    zone, sensor = cfg.zones[1].id, cfg.sensors[1].id
    assert n.data({"cid": "E130", "zone": zone, "sensor": sensor}) == "1130 02 042"
    if cfg.users:
        assert n.data({"cid": "R401", "zone": zone, "user": cfg.users[0].name}) == "3401 02 001"
    assert n.data({"cid": None, "kind": "system"}) is None
