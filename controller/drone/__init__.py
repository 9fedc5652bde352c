"""Drone detection: what the roof-top RF detector hears, turned into alarm events.

- `protocol`: the serial line protocol spoken by the detector node (firmware_py/).
- `odid`: the Open Drone ID (Remote ID) decoder, and an encoder for tests and simulation.
- `geo`: distance and direction from the office to a drone.
- `tracker`: broadcasts gathered into one track per drone.
- `detector`: `DetectorMonitor`, one per configured detector: lines in, events out.
- `twin`: `DetectorNode`, the detector's firmware in simulation (hello, heartbeats).
"""

from controller.drone.detector import DetectorMonitor, format_distance
from controller.drone.protocol import ProtocolError, encode_line, ensure_framed, parse_line

__all__ = [
    "DetectorMonitor",
    "ProtocolError",
    "encode_line",
    "ensure_framed",
    "format_distance",
    "parse_line",
]
