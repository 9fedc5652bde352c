"""The config of supervised wiring: a sensor on an ADC loop instead of a pin, the ADC's SPI pins
taken from everyone else, every channel used once, bands that overlap refused with their line,
and the power section's thresholds."""

from __future__ import annotations

import pytest
import yaml

from controller.config import ConfigError, parse_config, summary
from controller.wiring import site_pins
from tests.conftest import reference_text

ADC = {"chip": "mcp3008", "vref": 3.3, "poll": "100ms"}
LOOP_SENSOR = {
    "id": "door.archive",
    "type": "door",
    "zone": "finance",
    "loop": {"channel": 0, "contact": "nc", "eol": "double", "eol_ohms": 4700, "alarm_ohms": 4700},
}


def _text(**changes: object) -> str:
    data = yaml.safe_load(reference_text())
    extra = changes.pop("extra_sensors", [])
    assert isinstance(extra, list)
    data["sensors"] = data["sensors"] + extra
    data.update(changes)
    return yaml.safe_dump(data, allow_unicode=True, sort_keys=False)


def _problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as err:
        parse_config(text)
    return [str(p) for p in err.value.problems]


def test_a_sensor_on_a_supervised_loop_reads_the_adc_and_takes_no_pin() -> None:
    cfg = parse_config(_text(adc=ADC, extra_sensors=[LOOP_SENSOR])).config
    s = cfg.sensor("door.archive")
    assert s.pin is None and s.loop is not None and s.loop.channel == 0
    assert "door.archive" not in {p.id for p in site_pins(cfg).inputs}
    assert "ADC0" in summary(cfg)
    assert [b.state for b in s.loop.band_set(3.3)] == ["short", "normal", "alarm", "cut"]


def test_a_sensor_with_both_a_pin_and_a_loop_or_neither_is_refused() -> None:
    both = dict(LOOP_SENSOR, pin=4)
    assert any(
        "either a pin or a loop" in p for p in _problems(_text(adc=ADC, extra_sensors=[both]))
    )
    neither = {k: v for k, v in LOOP_SENSOR.items() if k != "loop"}
    assert any("either a pin or a loop" in p for p in _problems(_text(extra_sensors=[neither])))


def test_with_an_adc_the_spi_pins_are_refused_to_sensors_with_their_line() -> None:
    on_miso = {"id": "door.x", "type": "door", "zone": "finance", "pin": 9}
    problems = _problems(_text(adc=ADC, extra_sensors=[on_miso]))
    assert any(
        p.startswith("line ") and "sensors[6].pin: pin 9 already used by the ADC's SPI0 MISO" in p
        for p in problems
    ), problems
    # without an ADC the same pin is free
    parse_config(_text(extra_sensors=[on_miso]))


def test_a_loop_without_an_adc_or_on_a_channel_already_used_is_refused() -> None:
    assert any(
        "needs the `adc` section" in p for p in _problems(_text(extra_sensors=[LOOP_SENSOR]))
    )
    twin = dict(LOOP_SENSOR, id="door.archive2")
    power = {"battery": {"channel": 0}}
    problems = _problems(_text(adc=ADC, extra_sensors=[LOOP_SENSOR, twin], power=power))
    assert any(
        "sensors[7].loop.channel: ADC channel 0 already used by door.archive" in p for p in problems
    )
    assert any(
        "power.battery.channel: ADC channel 0 already used by door.archive" in p for p in problems
    )


def test_bands_that_overlap_are_refused_with_their_line() -> None:
    bad = dict(
        LOOP_SENSOR, loop={"channel": 1, "bands": {"normal": [1.5, 1.8], "alarm": [1.7, 2.3]}}
    )
    problems = _problems(_text(adc=ADC, extra_sensors=[bad]))
    assert len(problems) == 1
    assert (
        problems[0].startswith("line ")
        and "sensors[6].loop.bands: bands normal and alarm overlap" in problems[0]
    )


def test_resistors_that_cannot_be_told_apart_within_their_tolerance_are_refused() -> None:
    bad = dict(
        LOOP_SENSOR, loop={"channel": 1, "eol_ohms": 10000, "alarm_ohms": 500, "tolerance": 0.05}
    )
    assert any(
        "sensors[6].loop: bands normal and alarm" in p
        for p in _problems(_text(adc=ADC, extra_sensors=[bad]))
    )


def test_power_thresholds_must_rise_and_a_siren_line_names_a_known_siren() -> None:
    power = {
        "battery": {"channel": 6, "missing": 7, "low": 12.5, "restore": 12.2},
        "sirens": [{"siren": "siren.nowhere", "channel": 7}],
    }
    problems = _problems(_text(adc=ADC, power=power))
    assert any("missing < low < restore" in p for p in problems)
    assert any("power.sirens[0].siren: unknown siren 'siren.nowhere'" in p for p in problems)


def test_a_full_power_section_loads_with_its_defaults() -> None:
    power = {
        "mains": {"channel": 5},
        "battery": {"channel": 6, "divider": 5.0},
        "sirens": [{"siren": "siren.hall", "channel": 7}],
    }
    cfg = parse_config(_text(adc=ADC, power=power)).config
    assert cfg.power is not None and cfg.power.battery is not None
    assert (cfg.power.battery.low, cfg.power.battery.restore) == (11.5, 12.2)
    assert cfg.power.sirens[0].siren == "siren.hall"


def test_mains_on_a_pin_claims_the_pin_and_takes_a_pin_or_a_channel_not_both() -> None:
    from controller.wiring import site_pins

    cfg = parse_config(_text(power={"mains": {"pin": 4}})).config
    mains = [p for p in site_pins(cfg).inputs if p.id == "@mains"]
    assert len(mains) == 1 and mains[0].pin == 4 and mains[0].pull_up is True
    assert mains[0].active_high is False  # an AC-OK output pulled low while mains is present
    clash = {"id": "door.x", "type": "door", "zone": "finance", "pin": 4}
    assert any("pin 4 already used by power.mains" in p for p in _problems(_text(power={"mains": {"pin": 4}}, extra_sensors=[clash])))
    both = {"mains": {"pin": 4, "channel": 5}}
    assert any("either a channel or a pin" in p for p in _problems(_text(adc=ADC, power=both)))


def test_check_config_warns_when_the_adcs_spi_device_is_missing(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from controller.preflight import spi_findings

    cfg = parse_config(_text(adc=dict(ADC, device=1))).config
    (f,) = spi_findings(cfg, tmp_path)
    assert f.path == "adc" and "spidev0.1 is missing" in f.message and not f.error and f.blocks_ok
    (tmp_path / "spidev0.1").touch()
    assert spi_findings(cfg, tmp_path) == []
    assert spi_findings(parse_config(reference_text()).config, tmp_path) == []


def test_a_loop_sensor_takes_its_contact_in_the_loop_not_in_wiring() -> None:
    odd = dict(LOOP_SENSOR, wiring="no")
    assert any("loop.contact" in p for p in _problems(_text(adc=ADC, extra_sensors=[odd])))


def test_status_prints_what_each_loop_reads_and_the_power(capsys) -> None:  # type: ignore[no-untyped-def]
    from controller.cli import _print_status

    _print_status(
        {
            "site": "office-a",
            "zones": {"finance": {"state": "disarmed"}},
            "sensors": {"door.archive": {"zone": "finance", "active": False}},
            "outputs": {"siren.hall": False},
            "troubles": [{"cid": "E144", "source": "door.archive", "what": "loop cut"}],
            "supervision": {
                "adc": "ok",
                "loops": {"door.archive": {"state": "cut", "volts": 3.3, "channel": 0}},
                "power": {"mains": "off", "battery": {"state": "low", "volts": 11.2},
                          "sirens": {"siren.hall": "ok"}},
            },
        }
    )
    out = capsys.readouterr().out
    assert "door.archive" in out and "[loop cut, 3.30 V]" in out
    assert "power: mains off, battery low (11.2 V), siren.hall line ok" in out
