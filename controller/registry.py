"""The daemon's components, in the order it starts them (and stops them in reverse).

Adding a component is its package and one line here; the daemon walks this list for every
step of the lifecycle (controller/component.py) and never names a component itself, except
for the simulator's handlers that press keys and write detector lines.
"""

from __future__ import annotations

from controller.camera.component import Cameras
from controller.component import Component
from controller.dc09.component import Dc09Reporting
from controller.drone.component import DroneDetectors
from controller.keypad.component import Keypads
from controller.patrol.component import Patrols
from controller.reporting.component import Reporting
from controller.schedule.component import ScheduleService
from controller.selftest import SelfTest
from controller.supervision.component import Supervision

COMPONENTS: tuple[type[Component], ...] = (
    Keypads,
    ScheduleService,
    DroneDetectors,
    Patrols,
    Supervision,
    Reporting,
    Dc09Reporting,
    Cameras,  # after reporting: the alarm is on its way before a snapshot is asked for
    SelfTest,
)
