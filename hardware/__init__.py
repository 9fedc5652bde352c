"""The hardware layer: the pins, keypad and serial ports of one office wing, and their twin.

The drivers (inputs, outputs, keypad, serial_line) run the same on a Raspberry Pi and on the
simulated twin (sim), which plays the part of the wiring on gpiozero's mock pins and a real
pseudo-terminal. Choose the pins with `pin_factory_for(config.hardware.backend)`.
The drivers take plain values (hardware.pins) and any clock with `now()` and `call_at()`
(hardware.timing); nothing here imports the controller, which maps its config onto them.
See hardware/README.md for the pin map, the wiring and the parts list.
"""

from hardware.backend import HardwareError, SimPin, is_simulated, pin_factory_for
from hardware.inputs import Inputs, SensorInput
from hardware.keypad import MatrixKeypad
from hardware.outputs import Buzzer, Output, Outputs
from hardware.pins import InputPin, KeypadPins, OutputPin, SitePins
from hardware.serial_line import SerialLineReader
from hardware.timing import Scheduler, TimerHandle

__all__ = [
    "Buzzer",
    "HardwareError",
    "InputPin",
    "Inputs",
    "KeypadPins",
    "MatrixKeypad",
    "Output",
    "OutputPin",
    "Outputs",
    "Scheduler",
    "SensorInput",
    "SerialLineReader",
    "SimPin",
    "SitePins",
    "TimerHandle",
    "is_simulated",
    "pin_factory_for",
]
