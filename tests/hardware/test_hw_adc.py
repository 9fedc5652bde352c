"""The MCP3xxx driver on gpiozero's MCP3008/MCP3208 classes, against the simulated chip on
gpiozero's mock SPI device: volts in, volts out; a chip that leaves the bus is noticed."""

from __future__ import annotations

import pytest

from hardware.adc import AdcError, AdcNotAnswering, AdcReader, SimulatedAdc
from hardware.backend import HardwareError


@pytest.mark.parametrize(("chip", "step"), [("mcp3008", 3.3 / 1023), ("mcp3208", 3.3 / 4095)])
def test_each_channel_reads_the_volts_the_simulator_puts_on_it_to_one_step(
    chip: str, step: float
) -> None:
    sim = SimulatedAdc(chip, 0, 3.3)  # type: ignore[arg-type]
    adc = AdcReader(chip, 0, 3.3, (0, 3, 7), sim.factory)  # type: ignore[arg-type]
    try:
        for ch, v in ((0, 1.65), (3, 3.3), (7, 0.0)):
            sim.set(ch, v)
        got = adc.read_all()
        assert set(got) == {0, 3, 7}
        assert all(abs(got[ch] - v) <= step for ch, v in ((0, 1.65), (3, 3.3), (7, 0.0)))
    finally:
        adc.close()
        sim.close()


def test_the_chip_on_the_second_chip_select_answers_there() -> None:
    sim = SimulatedAdc("mcp3008", 1, 3.3)
    adc = AdcReader("mcp3008", 1, 3.3, (2,), sim.factory)
    try:
        sim.set(2, 2.2)
        assert abs(adc.read(2) - 2.2) < 0.01
    finally:
        adc.close()
        sim.close()


def test_a_chip_that_leaves_the_bus_raises_not_answering_and_reads_again_once_back() -> None:
    sim = SimulatedAdc("mcp3008", 0, 3.3)
    adc = AdcReader("mcp3008", 0, 3.3, (0,), sim.factory)
    try:
        sim.set(0, 1.0)
        sim.unplug()
        with pytest.raises(AdcNotAnswering) as err:
            adc.read(0)
        assert isinstance(err.value, HardwareError)
        sim.plug()
        assert abs(adc.read(0) - 1.0) < 0.01
    finally:
        adc.close()
        sim.close()


def test_a_channel_that_was_not_opened_or_an_unknown_chip_is_an_adc_error() -> None:
    sim = SimulatedAdc("mcp3008", 0, 3.3)
    adc = AdcReader("mcp3008", 0, 3.3, (0,), sim.factory)
    try:
        with pytest.raises(AdcError, match="channel 5"):
            adc.read(5)
        with pytest.raises(AdcError, match="unknown ADC chip"):
            AdcReader("ads1115", 0, 3.3, (0,), sim.factory)  # type: ignore[arg-type]
    finally:
        adc.close()
        sim.close()
