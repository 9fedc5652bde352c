"""The supervision component against a fake site and the simulated ADC on gpiozero's mock SPI
device: loops feed the engine like pins, a cut or a short is a tamper (an alarm when armed),
readings outside every band and a silent ADC are troubles, and mains, battery and siren lines
raise and clear their troubles after their delays, all on the virtual clock."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import yaml

from controller.config import SiteConfig, parse_config
from controller.engine import Arm, Bypass
from controller.supervision.component import Supervision
from controller.wiring import adc_channels, twin_volts
from hardware.adc import AdcReader, SimulatedAdc
from tests.conftest import reference_text
from tests.fake_site import FakeSite

ARCHIVE, VAULT = 0, 1  # loop channels
MAINS, BATTERY, SIREN_LINE = 5, 6, 7


def _config() -> SiteConfig:
    data = yaml.safe_load(reference_text())
    data["site"]["language"] = "en"
    data["adc"] = {"chip": "mcp3008", "vref": 3.3, "poll": "100ms"}
    data["sensors"] += [
        {
            "id": "door.archive",
            "name": "Archive door",
            "type": "door",
            "zone": "finance",
            "response": "instant",
            "loop": {"channel": ARCHIVE},
        },
        {
            "id": "door.vault",
            "name": "Vault door",
            "type": "door",
            "zone": "leadership",
            "response": "instant",
            "loop": {"channel": VAULT},
        },
    ]
    data["power"] = {
        "mains": {"channel": MAINS, "delay": "30s"},
        "battery": {"channel": BATTERY, "divider": 5.0, "delay": "60s"},
        "sirens": [{"siren": "siren.hall", "channel": SIREN_LINE, "delay": "5s"}],
    }
    return parse_config(yaml.safe_dump(data, allow_unicode=True)).config


class Rig:
    def __init__(self, tmp: Path, cfg: SiteConfig | None = None) -> None:
        self.cfg = cfg or _config()
        self.site = FakeSite(self.cfg, tmp)
        self.sim = SimulatedAdc("mcp3008", 0, 3.3)
        for ch, v in twin_volts(self.cfg).items():
            self.sim.set(ch, v)
        self.site.adc = AdcReader("mcp3008", 0, 3.3, adc_channels(self.cfg), self.sim.factory)
        self.sup = Supervision(self.site)
        self.sup.start()

    def close(self) -> None:
        self.sup.close()
        self.site.adc.close()
        self.sim.close()
        self.site.close()

    def after(self, volts: dict[int, float], wait: str = "1s") -> None:
        for ch, v in volts.items():
            self.sim.set(ch, v)
        seconds = float(wait.rstrip("s"))
        self.site.advance(timedelta(seconds=seconds))

    def cids(self) -> list[str | None]:
        return self.site.cids()


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[Rig]:
    r = Rig(tmp_path)
    yield r
    r.close()


def test_a_quiet_site_reads_normal_loops_mains_on_and_a_charged_battery(rig: Rig) -> None:
    rig.after({}, "5s")
    st = rig.sup.status()
    assert st is not None
    sup = st["supervision"]
    assert sup["adc"] == "ok" and sup["polls"] == 51  # one at start, then every 100 ms
    assert {k: v["state"] for k, v in sup["loops"].items()} == {
        "door.archive": "normal",
        "door.vault": "normal",
    }
    assert sup["power"] == {
        "mains": "on",
        "battery": {"state": "ok", "volts": 13.2},
        "sirens": {"siren.hall": "ok"},
    }
    assert rig.site.recorded == [] and rig.site.troubles() == []


def test_a_loop_in_alarm_drives_its_sensor_like_a_pin_and_back(rig: Rig) -> None:
    rig.site.submit(Arm(("finance",), instant=True))
    rig.after({ARCHIVE: 2.2})
    assert rig.site.engine.sensors["door.archive"].active
    assert rig.site.engine.zone_state("finance") == "triggered"
    assert "E131" in rig.cids()
    rig.after({ARCHIVE: 1.65})
    assert not rig.site.engine.sensors["door.archive"].active


def test_a_cut_loop_in_a_disarmed_zone_is_a_tamper_and_a_trouble_never_an_alarm(rig: Rig) -> None:
    rig.after({ARCHIVE: 3.3})
    tamper = rig.site.recorded[-1]
    assert (tamper.kind, tamper.cid, tamper.sensor, tamper.zone) == (
        "tamper",
        "E144",
        "door.archive",
        "finance",
    )
    assert tamper.text == "Loop of Archive door cut (Phòng tài vụ)"
    assert tamper.detail["loop"] == "cut"
    assert rig.site.engine.zone_state("finance") == "disarmed"
    assert [t["cid"] for t in rig.site.troubles()] == ["E144"]
    rig.after({ARCHIVE: 1.65})
    assert rig.site.recorded[-1].cid == "R144" and rig.site.troubles() == []


def test_a_shorted_loop_in_an_armed_zone_alarms_with_the_tamper_code_and_sounds_the_siren(
    rig: Rig,
) -> None:
    rig.site.submit(Arm(("leadership",), instant=True))
    rig.after({VAULT: 0.0})
    kinds = [(e.kind, e.cid) for e in rig.site.recorded]
    assert ("tamper", "E144") in kinds and ("alarm", "E144") in kinds
    assert rig.site.engine.zone_state("leadership") == "triggered"
    assert rig.site.engine.outputs["siren.hall"] is True
    assert not rig.site.engine.sensors["door.vault"].active  # a short says nothing of the door


def test_a_bypassed_loop_cut_in_an_armed_zone_is_reported_but_does_not_alarm(rig: Rig) -> None:
    rig.site.submit(Bypass("door.vault"))
    rig.site.submit(Arm(("leadership",), instant=True))
    rig.after({VAULT: 3.3})
    assert "E144" in rig.cids() and rig.site.engine.zone_state("leadership") == "armed_away"


def test_a_glitch_shorter_than_the_debounce_is_never_seen(rig: Rig) -> None:
    rig.sim.set(ARCHIVE, 0.0)
    rig.site.advance(timedelta(milliseconds=150))  # shorter than the 250 ms debounce
    rig.after({ARCHIVE: 1.65})
    assert rig.site.recorded == []


def test_a_reading_outside_every_band_is_a_trouble_until_a_band_holds_it(rig: Rig) -> None:
    rig.after({ARCHIVE: 1.0})
    assert rig.cids() == ["E380"] and rig.sup.loop_state("door.archive") == "trouble"
    assert rig.site.recorded[-1].kind == "trouble"
    rig.after({ARCHIVE: 1.65})
    assert rig.cids() == ["E380", "R380"]


def test_an_adc_with_only_power_on_it_that_stops_answering_is_one_trouble_until_back(
    tmp_path: Path,
) -> None:
    data = _config().model_dump()
    data["sensors"] = [s for s in data["sensors"] if s.get("loop") is None]
    rig = Rig(tmp_path, SiteConfig.model_validate(data))
    try:
        rig.sim.unplug()
        rig.site.advance(timedelta(seconds=3))  # polls between the power readings read nothing
        assert rig.cids() == ["E333"]
        rig.sim.plug()
        rig.site.advance(timedelta(seconds=3))
        assert rig.cids() == ["E333", "R333"] and rig.site.troubles() == []
    finally:
        rig.close()


def test_an_adc_that_stops_answering_is_a_trouble_and_its_loops_are_unknown_until_back(
    rig: Rig,
) -> None:
    rig.sim.unplug()
    rig.site.advance(timedelta(seconds=2))
    assert rig.cids() == ["E333"]  # once, however many polls fail
    assert rig.sup.loop_state("door.archive") == "unknown"
    st = rig.sup.status()
    assert st is not None and st["supervision"]["adc"] == "not answering"
    assert st["supervision"]["power"]["mains"] == "unknown"
    rig.sim.plug()
    rig.site.advance(timedelta(seconds=1))
    assert rig.cids() == ["E333", "R333"] and rig.sup.loop_state("door.archive") == "normal"
    assert rig.site.troubles() == []


def test_mains_lost_counts_after_its_delay_and_restores_at_once(rig: Rig) -> None:
    rig.after({MAINS: 0.0}, "29s")
    assert rig.cids() == []  # a brownout or a generator switchover
    rig.after({}, "2s")
    assert rig.cids() == ["E301"] and rig.site.recorded[-1].text == "Mains power lost"
    rig.after({MAINS: 3.3})
    assert rig.cids() == ["E301", "R301"]


def test_a_battery_that_sags_is_low_after_its_delay_and_restores_only_when_charged(
    rig: Rig,
) -> None:
    rig.after({BATTERY: 11.2 / 5}, "61s")
    assert rig.cids() == ["E302"] and rig.site.recorded[-1].text == "Battery low (11.2 V)"
    rig.after({BATTERY: 11.9 / 5}, "120s")  # recovering, not yet charged: still low
    assert rig.cids() == ["E302"]
    rig.after({BATTERY: 12.4 / 5}, "1s")
    assert rig.cids() == ["E302", "R302"]


def test_a_battery_taken_off_its_terminals_is_missing_not_low(rig: Rig) -> None:
    rig.after({BATTERY: 0.0}, "61s")
    assert rig.cids() == ["E311"]
    st = rig.sup.status()
    assert st is not None and st["supervision"]["power"]["battery"]["state"] == "missing"


def test_an_open_siren_line_is_a_trouble_but_a_sounding_siren_is_not_judged(rig: Rig) -> None:
    rig.after({SIREN_LINE: 3.3}, "6s")
    assert rig.cids() == ["E321"] and rig.site.recorded[-1].detail["fault"] == "open"
    rig.after({SIREN_LINE: 1.6}, "1s")
    assert rig.cids() == ["E321", "R321"]
    rig.site.submit(Arm(("leadership",), instant=True))
    rig.after({VAULT: 2.2}, "1s")  # an alarm: the siren sounds, its line reads the drive
    assert rig.site.engine.outputs["siren.hall"]
    rig.after({SIREN_LINE: 0.0}, "10s")
    assert "E321" not in rig.cids()[2:]


def test_mains_on_a_pin_without_any_adc_is_watched_the_same_way(tmp_path: Path) -> None:
    data = yaml.safe_load(reference_text())
    data["power"] = {"mains": {"pin": 4, "present": "low", "delay": "30s"}}
    cfg = parse_config(yaml.safe_dump(data, allow_unicode=True)).config
    site = FakeSite(cfg, tmp_path)
    site.power_inputs["@mains"] = True
    sup = Supervision(site)
    sup.start()
    try:
        site.power_inputs["@mains"] = False
        site.advance(timedelta(seconds=29))
        assert site.cids() == []
        site.advance(timedelta(seconds=2))
        assert site.cids() == ["E301"]
        st = sup.status()
        assert st is not None and st["supervision"]["adc"] == "none"
        assert st["supervision"]["power"] == {"mains": "off"}
        site.power_inputs["@mains"] = True
        site.advance(timedelta(seconds=1))
        assert site.cids() == ["E301", "R301"]
    finally:
        sup.close()
        site.close()


def test_a_loop_cut_while_the_daemon_was_down_is_reported_at_start_without_an_alarm(
    tmp_path: Path,
) -> None:
    cfg = _config()
    site = FakeSite(cfg, tmp_path)
    sim = SimulatedAdc("mcp3008", 0, 3.3)
    for ch, v in twin_volts(cfg).items():
        sim.set(ch, v)
    sim.set(VAULT, 3.3)
    site.adc = AdcReader("mcp3008", 0, 3.3, adc_channels(cfg), sim.factory)
    site.submit(Arm(("leadership",), instant=True))
    sup = Supervision(site)
    sup.start()
    try:
        assert site.recorded[-1].kind == "tamper" and site.recorded[-1].cid == "E144"
        assert "alarm" not in site.kinds()
        assert site.engine.zone_state("leadership") == "armed_away"  # no alarm from the baseline
        assert [t["cid"] for t in site.troubles()] == ["E144"]
    finally:
        sup.close()
        site.adc.close()
        sim.close()
        site.close()


def test_a_reload_takes_over_the_standing_troubles_without_reporting_them_twice(rig: Rig) -> None:
    rig.after({ARCHIVE: 3.3, MAINS: 0.0}, "31s")
    assert rig.cids() == ["E144", "E301"]
    rig.sup.close()  # a reload: the component is built again, the trouble board stays
    rig.sup = Supervision(rig.site)
    rig.sup.start()
    rig.after({}, "40s")
    assert rig.cids() == ["E144", "E301"]
    rig.after({ARCHIVE: 1.65, MAINS: 3.3})
    # the loop once debounced, the mains at its next reading (power channels: once a second)
    assert sorted(rig.cids()) == ["E144", "E301", "R144", "R301"]
    assert rig.site.troubles() == []


def test_the_loops_are_read_at_every_poll_and_mains_battery_and_siren_lines_once_a_second(
    rig: Rig,
) -> None:
    reads: dict[int, int] = {}
    real = rig.site.adc.read

    def counted(channel: int) -> float:
        reads[channel] = reads.get(channel, 0) + 1
        return float(real(channel))

    rig.site.adc.read = counted
    rig.after({}, "3s")  # 30 polls of 100 ms
    assert reads[ARCHIVE] == reads[VAULT] == 30
    assert reads[MAINS] == reads[BATTERY] == reads[SIREN_LINE] == 3
    due = rig.sup.power_due
    assert due is not None
    rig.sup.clock_stepped(timedelta(hours=-1))  # NTP steps back: the next reading keeps its pace
    assert rig.sup.power_due == due - timedelta(hours=1)
