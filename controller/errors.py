"""The root of OfficeGuard's exceptions.

Every exception the daemon defines derives from `OfficeGuardError`, so a caller (the CLI, a
test, a script) can tell "OfficeGuard refused or failed, with a message meant for a person"
from a bug with one `except`. Where an exception also was, and still is, a `ValueError` or a
`RuntimeError`, that stays its second parent, so every existing `except` keeps working.

The hardware layer keeps its own root, `hardware.backend.HardwareError`: hardware/ is to stop
importing controller/, and a root inside hardware/ would drag gpiozero (imported by
hardware/__init__) into the pure modules (config, engine) that raise these errors.
"""

from __future__ import annotations


class OfficeGuardError(Exception):
    """Something OfficeGuard refused or could not do; the message says what and why."""
