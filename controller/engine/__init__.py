"""The pure alarm engine: (state, input, now) -> (state', effects). See engine.py."""

from controller.engine.engine import Engine
from controller.engine.model import (
    Arm,
    Bypass,
    Disarm,
    Effect,
    Emit,
    ExternalAlarm,
    Input,
    OutputFault,
    SensorChange,
    SetOutput,
    Silence,
)

__all__ = [
    "Arm",
    "Bypass",
    "Disarm",
    "Effect",
    "Emit",
    "Engine",
    "ExternalAlarm",
    "Input",
    "OutputFault",
    "SensorChange",
    "SetOutput",
    "Silence",
]
