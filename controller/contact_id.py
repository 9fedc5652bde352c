"""Ademco Contact ID (SIA DC-05) event codes used by OfficeGuard: the one table.

Every event carries `cid` = qualifier + code: `E` for a new event or an opening (disarm),
`R` for a restore or a closing (arm). The security office's receivers and most central-station
software read these codes directly. docs/contact-id.md is generated from this table.

The same row gives the SIA DC-03 code a receiving centre is sent in SIA-DCS messages (DC-09
`format: SIA-DCS`), one for the `E` qualifier and one for the `R`: MQTT's `cid`, ADM-CID and
SIA-DCS all come from this one table, so they can never disagree. Where DC-03 has no code of
its own (guard patrols) the closest one is used, as docs/contact-id.md says.
"""

from __future__ import annotations

import re
from typing import NamedTuple


class Code(NamedTuple):
    name: str  # the Contact ID event's short name
    when: str  # when OfficeGuard sends it
    sia: tuple[str, str]  # SIA DC-03 code for E (new event, opening) and R (restore, closing)


# code -> its row
CODES: dict[int, Code] = {
    100: Code("Medical", "not used", ("MA", "MR")),
    101: Code(
        "Personal emergency",
        "a patrolling guard silent longer than the plan allows (no sign of life, lone-worker safety); R101 at the next visit",
        ("QA", "QR"),
    ),
    102: Code(
        "Fail to report in", "a patrol round never started by its deadline (missed)", ("US", "UR")
    ),
    110: Code("Fire alarm", "a fire sensor (24h) trips; R110 when it restores", ("FA", "FR")),
    120: Code("Panic alarm", "a panic button (24h, silent by default) is pressed", ("PA", "PR")),
    121: Code(
        "Duress",
        "a user's duress code was entered: disarms as asked, reports silently",
        ("HA", "HR"),
    ),
    122: Code("Silent panic", "not used", ("HA", "HR")),
    130: Code("Burglary", "a sensor trips in an armed zone (generic)", ("BA", "BR")),
    131: Code(
        "Perimeter burglary", "an instant door/window sensor trips in an armed zone", ("BA", "BR")
    ),
    132: Code(
        "Interior burglary",
        "a motion sensor (follower/instant) trips in an armed zone",
        ("BA", "BR"),
    ),
    133: Code(
        "24-hour burglary (safe)", "a vibration sensor on a safe detects an attack", ("BA", "BR")
    ),
    134: Code("Entry/exit burglary", "the entry delay ran out without a disarm", ("BA", "BR")),
    137: Code("Tamper", "a tamper loop opens (cabinet, siren box, detector)", ("TA", "TR")),
    144: Code(
        "Sensor tamper",
        "a sensor's own tamper, a supervised loop cut or shorted, or a drone detector's tamper/fault",
        ("TA", "TR"),
    ),
    150: Code(
        "24-hour non-burglary",
        "a drone is detected over the site; R150 when it is lost",
        ("UA", "UR"),
    ),
    300: Code("System trouble", "a system trouble: storage, clock, configuration", ("YX", "YZ")),
    301: Code("AC loss", "mains gone for `power.mains.delay`; R301 when it is back", ("AT", "AR")),
    302: Code(
        "Low system battery",
        "the standby battery under `power.battery.low`; R302 at `restore`",
        ("YT", "YR"),
    ),
    311: Code(
        "Battery missing/dead",
        "the standby battery reads under `power.battery.missing`",
        ("YM", "YR"),
    ),
    321: Code(
        "Bell/siren trouble",
        "a siren output fault, or its supervised line open or shorted (`power.sirens`)",
        ("YA", "YH"),
    ),
    330: Code(
        "System peripheral trouble",
        "a camera does not answer, or answers with no JPEG",
        ("IA", "IR"),
    ),
    333: Code(
        "Expansion module failure",
        "a drone detector's port or heartbeat is silent, a patrol checkpoint's pins cannot be"
        " opened, or the ADC of supervised loops does not answer",
        ("ET", "ER"),
    ),
    350: Code(
        "Communication trouble",
        "the outbox is near its limit (central station unreachable for long)",
        ("YS", "YK"),
    ),
    373: Code("Fire trouble", "not used", ("FT", "FJ")),
    374: Code(
        "Exit error", "an entry/exit sensor still open when the exit delay ends", ("EE", "BR")
    ),
    377: Code(
        "Swinger shutdown",
        "a sensor tripped too often in one armed period and is shut down",
        ("BD", "BE"),
    ),
    380: Code(
        "Sensor trouble",
        "a sensor stuck active across an arming or active at boot in an armed zone, or a "
        "supervised loop reading outside every band",
        ("UT", "UJ"),
    ),
    401: Code("Open/close by user", "E401 disarm, R401 arm, by a named user", ("OP", "CL")),
    403: Code("Automatic open/close", "E403 auto-disarm, R403 auto-arm, by schedule", ("OA", "CA")),
    406: Code("Cancel", "a disarm during an alarm, within the abort window", ("OC", "OC")),
    421: Code(
        "Access denied",
        "a badge at a patrol checkpoint is unknown or its user is disabled",
        ("DD", "DD"),
    ),
    422: Code(
        "Access report by user",
        "a guard visited a patrol checkpoint (who, where, when)",
        ("DG", "DG"),
    ),
    441: Code("Armed home (stay)", "R441 armed home or night by a user", ("OG", "CG")),
    450: Code(
        "Exception open/close", "a patrol checkpoint visited out of the planned order", ("US", "UR")
    ),
    452: Code(
        "Late to open/close", "a patrol round not started within its tolerance (late)", ("US", "UR")
    ),
    455: Code("Auto-arm failed", "a scheduled arming refused (open sensors)", ("CI", "CI")),
    458: Code("User on premises", "E458 a patrol round started, R458 completed", ("JP", "JP")),
    459: Code(
        "Recent closing", "an alarm within the recent-closing window after arming", ("CR", "CR")
    ),
    461: Code("Wrong code", "a wrong code at a keypad or in a remote command", ("DD", "DD")),
    570: Code("Zone bypass", "a sensor bypassed (E570) or unbypassed (R570)", ("BB", "BU")),
    601: Code(
        "Manual trigger test report",
        "E601 by `officeguard dc09 test`: sent to the receiving centre only, not journaled",
        ("RX", "RX"),
    ),
    602: Code(
        "Periodic test report",
        "E602 every `site.self_test` (off by default): controller alive, with its uptime",
        ("RP", "RP"),
    ),
    612: Code(
        "Point not tested",
        "a checkpoint of a patrol round left unvisited at its deadline (skipped)",
        ("US", "UR"),
    ),
    627: Code("Program mode entry", "configuration reloaded", ("LB", "LX")),
    628: Code("Program mode exit", "not used", ("LX", "LX")),
}


def cid(code: int, restore: bool = False) -> str:
    """`cid(134)` -> "E134", `cid(401, restore=True)` -> "R401"."""
    if code not in CODES:
        raise KeyError(f"Contact ID code {code} is not in the table")
    return f"{'R' if restore else 'E'}{code:03d}"


def sia(cid_: str) -> str:
    """The SIA DC-03 code of an event's `cid`: `sia("E130")` -> "BA", `sia("R401")` -> "CL"."""
    m = re.fullmatch(r"([ER])(\d{3})", cid_)
    if m is None or int(m.group(2)) not in CODES:
        raise KeyError(f"{cid_!r} is not a Contact ID code of the table")
    new, restore = CODES[int(m.group(2))].sia
    return new if m.group(1) == "E" else restore


def markdown_table() -> str:
    rows = [
        "| code | name | SIA-DCS (E / R) | OfficeGuard sends it when |",
        "|---|---|---|---|",
    ]
    rows += [
        f"| {code:03d} | {c.name} | {c.sia[0]} / {c.sia[1]} | {c.when} |"
        for code, c in sorted(CODES.items())
    ]
    return "\n".join(rows)
