"""The station's settings file: every key, every problem with its line, flags over the file."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from controller.cli import build_parser
from controller.config import ConfigError
from controller.station.incidents import Incident
from controller.station.service import broker_of, db_url, settings_of
from controller.station.settings import load_settings, parse_settings
from tests.station.proc import og_station

FULL = """\
database: postgresql://station@127.0.0.1/station
broker:
  url: mqtts://central.office:8883
  username: station
  password_file: /etc/officeguard/station.pass
  ca_file: /etc/officeguard/ca.pem
  client_id: station-1
  topic_prefix: bank
  share: office
  keepalive: 20s
listen: 0.0.0.0:8443
secret_file: /etc/officeguard/station.secret
https: true
language: en
command_keys: /etc/officeguard/command-keys
buffer_limit: 50000
heartbeat_margin: 45s
write_every: 100ms
supervisor_limit: 10m
ageing:
  1: {amber: 10s, red: 40s}
"""


def test_a_settings_file_with_every_key_is_read() -> None:
    s = parse_settings(FULL)
    assert s.database.startswith("postgresql://") and s.broker.share == "office"
    assert s.broker.mqtt().url == "mqtts://central.office:8883" and s.broker.topic_prefix == "bank"
    assert s.listen == "0.0.0.0:8443" and s.https and s.language == "en"
    assert s.buffer_limit == 50_000 and s.heartbeat_margin == timedelta(seconds=45)
    assert s.write_every == timedelta(milliseconds=100)
    assert s.supervisor_limit == timedelta(minutes=10)
    # priority 1 as the file says; 2 and 3 keep their defaults
    assert s.ageing_seconds() == {1: (10.0, 40.0), 2: (60.0, 300.0), 3: (300.0, 1800.0)}
    assert parse_settings("").database == "station.db"  # an empty file: the defaults


def test_ageing_that_turns_red_before_amber_or_names_no_priority_is_refused_with_its_line() -> None:
    text = "ageing:\n  1: {amber: 5m, red: 1m}\n  4: {amber: 1m, red: 2m}\n"
    with pytest.raises(ConfigError) as err:
        parse_settings(text, "station.yaml")
    msg = str(err.value)
    assert "amber comes first" in msg and "line 2" in msg
    assert "line 3" in msg and "must be 1, 2 or 3" in msg


def test_the_console_colours_an_incident_by_the_stations_ageing() -> None:
    inc = Incident(id="e1", site="office-a", priority=1, what="burglary", zone=None,
                   opened_at=0.0, title="Alarm")  # fmt: skip
    assert inc.colour(20.0) == "green"  # the default: amber after 30 s
    fast = parse_settings("ageing:\n  1: {amber: 10s, red: 15s}\n").ageing_seconds()
    assert inc.colour(12.0, fast) == "amber" and inc.colour(20.0, fast) == "red"


def test_every_problem_of_a_settings_file_is_told_with_its_line() -> None:
    text = """\
database: station.db
broker:
  url: http://central
  shaer: office
listen: nowhere
heartbeat_margin: 300s
buffer_limit: 10
"""
    with pytest.raises(ConfigError) as err:
        parse_settings(text, "station.yaml")
    lines = str(err.value).splitlines()
    assert lines[0] == "station.yaml: 5 problems"
    assert lines[1].startswith("  line 3: broker.url: bad broker URL 'http://central'")
    assert lines[2] == (
        "  line 4: broker.shaer: unknown key (check the spelling; every key is in docs/station.md)"
    )
    assert lines[3].startswith("  line 5: listen: bad listen address 'nowhere'")
    assert lines[4].startswith("  line 6: heartbeat_margin: the margin is more than 0 s")
    assert lines[5].startswith("  line 7: buffer_limit: Input should be greater than or equal")


def test_a_flag_wins_over_the_settings_file_and_the_file_over_the_defaults(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OFFICEGUARD_STATION_DB", raising=False)
    f = tmp_path / "station.yaml"
    f.write_text(FULL.replace("  password_file: /etc/officeguard/station.pass\n", ""))
    parse = build_parser().parse_args
    from_file = parse(["station", "serve", "--settings", str(f)])
    s = settings_of(from_file)
    assert db_url(from_file, s) == "postgresql://station@127.0.0.1/station"
    broker, prefix = broker_of(from_file, s)
    assert (broker.address.host, broker.address.port, prefix) == ("central.office", 8883, "bank")
    flags = parse(
        ["station", "serve", "--settings", str(f), "--db", "other.db",
         "--broker", "mqtt://127.0.0.1:1884", "--prefix", "officeguard"]
    )  # fmt: skip
    broker, prefix = broker_of(flags, settings_of(flags))
    assert db_url(flags, settings_of(flags)) == "other.db"
    assert (broker.address.host, broker.address.port, prefix) == ("127.0.0.1", 1884, "officeguard")
    assert broker.mqtt.username == "station"  # the file's login stays with another URL
    none = parse(["station", "serve"])
    assert db_url(none, settings_of(none)) == "station.db"


def test_a_bad_settings_file_stops_the_station_with_its_problems(tmp_path: Path) -> None:
    f = tmp_path / "station.yaml"
    f.write_text("listen: 8080\nlanguage: fr\n")
    r = og_station("serve", "--settings", str(f))
    assert r.returncode == 78, r.stderr
    assert "line 1: listen" in r.stderr and "line 2: language" in r.stderr


def test_the_database_named_in_the_settings_file_is_the_one_migrated(tmp_path: Path) -> None:
    f = tmp_path / "station.yaml"
    f.write_text(f"database: {tmp_path / 'office.db'}\n")
    r = og_station("migrate", "--settings", str(f))
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "office.db").exists()
    assert load_settings(f).database.endswith("office.db")


def test_the_example_in_the_station_reference_is_a_valid_settings_file() -> None:
    page = (Path(__file__).parents[2] / "docs" / "station.md").read_text(encoding="utf-8")
    section = page[page.index("## Settings file") :]
    example = section[section.index("```yaml\n") + 8 : section.index("```\n", section.index("```yaml"))]
    s = parse_settings(example, "docs/station.md")
    assert s == parse_settings("")  # it shows the defaults
