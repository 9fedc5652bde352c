"""Ademco Contact ID (SIA DC-05) event codes used by OfficeGuard: the one table.

Every event carries `cid` = qualifier + code: `E` for a new event or an opening (disarm),
`R` for a restore or a closing (arm). The security office's receivers and most central-station
software read these codes directly. docs/contact-id.md is generated from this table.
"""

from __future__ import annotations

# code -> (short name, when OfficeGuard sends it)
CODES: dict[int, tuple[str, str]] = {
    100: ("Medical", "not used"),
    101: (
        "Personal emergency",
        "a patrolling guard silent longer than the plan allows (no sign of life, lone-worker safety); R101 at the next visit",
    ),
    102: ("Fail to report in", "a patrol round never started by its deadline (missed)"),
    110: ("Fire alarm", "a fire sensor (24h) trips; R110 when it restores"),
    120: ("Panic alarm", "a panic button (24h, silent by default) is pressed"),
    121: ("Duress", "a user's duress code was entered: disarms as asked, reports silently"),
    122: ("Silent panic", "not used"),
    130: ("Burglary", "a sensor trips in an armed zone (generic)"),
    131: ("Perimeter burglary", "an instant door/window sensor trips in an armed zone"),
    132: ("Interior burglary", "a motion sensor (follower/instant) trips in an armed zone"),
    133: ("24-hour burglary (safe)", "a vibration sensor on a safe detects an attack"),
    134: ("Entry/exit burglary", "the entry delay ran out without a disarm"),
    137: ("Tamper", "a tamper loop opens (cabinet, siren box, detector)"),
    144: (
        "Sensor tamper",
        "a sensor's own tamper, a supervised loop cut or shorted, or a drone detector's tamper/fault",
    ),
    150: ("24-hour non-burglary", "a drone is detected over the site; R150 when it is lost"),
    300: ("System trouble", "a system trouble: storage, clock, configuration"),
    301: ("AC loss", "mains gone for `power.mains.delay`; R301 when it is back"),
    302: ("Low system battery", "the standby battery under `power.battery.low`; R302 at `restore`"),
    311: ("Battery missing/dead", "the standby battery reads under `power.battery.missing`"),
    321: (
        "Bell/siren trouble",
        "a siren output fault, or its supervised line open or shorted (`power.sirens`)",
    ),
    330: ("System peripheral trouble", "a camera does not answer, or answers with no JPEG"),
    333: (
        "Expansion module failure",
        "a drone detector's port or heartbeat is silent, a patrol checkpoint's pins cannot be"
        " opened, or the ADC of supervised loops does not answer",
    ),
    350: (
        "Communication trouble",
        "the outbox is near its limit (central station unreachable for long)",
    ),
    373: ("Fire trouble", "not used"),
    374: ("Exit error", "an entry/exit sensor still open when the exit delay ends"),
    377: ("Swinger shutdown", "a sensor tripped too often in one armed period and is shut down"),
    380: (
        "Sensor trouble",
        "a sensor stuck active across an arming or active at boot in an armed zone, or a "
        "supervised loop reading outside every band",
    ),
    401: ("Open/close by user", "E401 disarm, R401 arm, by a named user"),
    403: ("Automatic open/close", "E403 auto-disarm, R403 auto-arm, by schedule"),
    406: ("Cancel", "a disarm during an alarm, within the abort window"),
    421: ("Access denied", "a badge at a patrol checkpoint is unknown or its user is disabled"),
    422: ("Access report by user", "a guard visited a patrol checkpoint (who, where, when)"),
    441: ("Armed home (stay)", "R441 armed home or night by a user"),
    450: ("Exception open/close", "a patrol checkpoint visited out of the planned order"),
    452: ("Late to open/close", "a patrol round not started within its tolerance (late)"),
    455: ("Auto-arm failed", "a scheduled arming refused (open sensors)"),
    458: ("User on premises", "E458 a patrol round started, R458 completed"),
    459: ("Recent closing", "an alarm within the recent-closing window after arming"),
    461: ("Wrong code", "a wrong code at a keypad or in a remote command"),
    570: ("Zone bypass", "a sensor bypassed (E570) or unbypassed (R570)"),
    601: (
        "Manual trigger test report",
        "E601 by `officeguard dc09 test`: sent to the receiving centre only, not journaled",
    ),
    602: (
        "Periodic test report",
        "E602 every `site.self_test` (off by default): controller alive, with its uptime",
    ),
    612: (
        "Point not tested",
        "a checkpoint of a patrol round left unvisited at its deadline (skipped)",
    ),
    627: ("Program mode entry", "configuration reloaded"),
    628: ("Program mode exit", "not used"),
}


def cid(code: int, restore: bool = False) -> str:
    """`cid(134)` -> "E134", `cid(401, restore=True)` -> "R401"."""
    if code not in CODES:
        raise KeyError(f"Contact ID code {code} is not in the table")
    return f"{'R' if restore else 'E'}{code:03d}"


def markdown_table() -> str:
    rows = ["| code | name | OfficeGuard sends it when |", "|---|---|---|"]
    rows += [f"| {code:03d} | {name} | {when} |" for code, (name, when) in sorted(CODES.items())]
    return "\n".join(rows)
