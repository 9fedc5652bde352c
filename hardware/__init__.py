"""The hardware layer: the pins, keypad and serial ports of one office wing, and their twin.

The drivers (inputs, outputs, keypad, serial_line) run the same on a Raspberry Pi and on the
simulated twin (sim), which plays the part of the wiring on gpiozero's mock pins and a real
pseudo-terminal. Choose the pins with `pin_factory_for(config.hardware.backend)`.
See hardware/README.md for the pin map, the wiring and the parts list.
"""

from hardware.backend import HardwareError, SimPin, is_simulated, pin_factory_for
from hardware.inputs import Inputs, SensorInput, active_level
from hardware.keypad import MatrixKeypad
from hardware.outputs import Buzzer, Output, Outputs
from hardware.serial_line import SerialLineReader

__all__ = [
    "Buzzer",
    "HardwareError",
    "Inputs",
    "MatrixKeypad",
    "Output",
    "Outputs",
    "SensorInput",
    "SerialLineReader",
    "SimPin",
    "active_level",
    "is_simulated",
    "pin_factory_for",
]
