"""Installer help for supervised loops: `officeguard wiring calibrate` and `wiring test`.

Both talk to the running daemon (which holds the ADC) through its status: they read what a
loop reads now (`supervision.loops.<sensor>.volts` and `.state`), a few times, and ask the
installer to close and open the detector in between. `calibrate` then centres the normal and
alarm bands on what was read (`bands.calibrated_bands`) and writes them into the config file
under the sensor's `loop:` (the rest of the file, comments included, is kept as it was; the
result is validated before it replaces the file). `test` walks every loop and says, per loop,
what the panel read when open and when closed, and whether that is what it should be.

The prompts and the reads are given as functions, so the walk is tested without a terminal.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from controller.config import SiteConfig, parse_config
from controller.errors import OfficeGuardError
from controller.supervision.bands import Band, calibrated_bands

Read = Callable[[str], tuple[str, float | None]]  # sensor -> (state, volts) now
Ask = Callable[[str], None]  # show a prompt, return once the installer is ready


class WiringError(OfficeGuardError, ValueError):
    """A loop that cannot be calibrated or tested (no reading, not a loop, a bad file)."""


def read_average(read: Read, sensor: str, samples: int = 5) -> float:
    """The mean of a few readings of one loop (the daemon polls between them)."""
    got = [v for _, v in (read(sensor) for _ in range(samples)) if v is not None]
    if not got:
        raise WiringError(f"{sensor}: no reading (is the ADC answering?)")
    return sum(got) / len(got)


def calibrate(cfg: SiteConfig, sensor: str, read: Read, ask: Ask) -> tuple[Band, ...]:
    """Read the loop closed (normal) then open (alarm); the bands that fit what was read."""
    s = _loop_sensor(cfg, sensor)
    assert s.loop is not None and cfg.adc is not None
    ask(f"Close {sensor} ({s.name or s.type}): door shut, detector quiet. Press Enter.")
    normal = read_average(read, sensor)
    ask(f"Now open {sensor} (trip the detector) and hold it. Press Enter.")
    alarm = read_average(read, sensor)
    if abs(normal - alarm) < 4 * s.loop.hysteresis:
        raise WiringError(
            f"{sensor}: closed {normal:.2f} V and open {alarm:.2f} V are too close to tell apart "
            "(is the alarm resistor fitted across the contact?)"
        )
    return calibrated_bands(s.loop.wiring, cfg.adc.vref, normal, alarm)


def _loop_sensor(cfg: SiteConfig, sensor: str) -> Any:
    try:
        s = cfg.sensor(sensor)
    except KeyError:
        raise WiringError(f"no sensor {sensor!r} in the config") from None
    if s.loop is None or cfg.adc is None:
        raise WiringError(f"{sensor} is on a pin, not on a supervised loop")
    return s


def bands_yaml(bands: tuple[Band, ...], indent: int) -> list[str]:
    pad = " " * indent
    lines = [f"{pad}bands:                       # officeguard wiring calibrate"]
    lines += [f"{pad}  {b.state}: [{b.lo}, {b.hi}]" for b in bands]
    return lines


def write_bands(path: Path, sensor: str, bands: tuple[Band, ...]) -> str:
    """The config file with `bands:` under the sensor's `loop:` (replacing any there), written
    in place once it validates; returns the new text."""
    text = path.read_text(encoding="utf-8")
    root = yaml.compose(text, Loader=yaml.SafeLoader)
    loop_node = _find_loop(root, sensor)
    if loop_node.flow_style or not loop_node.value:
        raise WiringError(f"{sensor}: write its `loop:` as a block (one key a line) to calibrate it")
    lines = text.split("\n")
    keys = loop_node.value
    indent = keys[0][0].start_mark.column
    end = _last_line(loop_node) + 1  # the line after the mapping's last value
    old = next(((k, v) for k, v in keys if k.value == "bands"), None)
    if old is not None:  # drop the old block, from its key to its last value
        start, stop = old[0].start_mark.line, _last_line(old[1]) + 1
        del lines[start:stop]
        end -= stop - start
    lines[end:end] = bands_yaml(bands, indent)
    new = "\n".join(lines)
    parse_config(new, str(path))  # never write a file the daemon would refuse
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(new)
    os.chmod(tmp, path.stat().st_mode & 0o777)
    os.replace(tmp, path)
    return new


def _last_line(node: Any) -> int:
    """The last line (0-based) holding a scalar of this node: a block node's end mark is where
    the next token starts, which may be lines of comments later."""
    if isinstance(node, yaml.ScalarNode):
        return int(node.end_mark.line)
    if isinstance(node, yaml.SequenceNode):
        items = list(node.value)
    elif isinstance(node, yaml.MappingNode):
        items = [x for kv in node.value for x in kv]
    else:
        items = []
    lines = [_last_line(x) for x in items]
    if node.flow_style:
        lines.append(int(node.end_mark.line))
    return max(lines, default=int(node.start_mark.line))


def _find_loop(root: Any, sensor: str) -> Any:
    if isinstance(root, yaml.MappingNode):
        for k, v in root.value:
            if k.value == "sensors" and isinstance(v, yaml.SequenceNode):
                for item in v.value:
                    fields = {kk.value: vv for kk, vv in item.value} if isinstance(item, yaml.MappingNode) else {}
                    idn = fields.get("id")
                    if idn is not None and idn.value == sensor and "loop" in fields:
                        return fields["loop"]
    raise WiringError(f"{sensor}: no `loop:` mapping for it in the file")


@dataclass(frozen=True)
class LoopCheck:
    sensor: str
    closed: tuple[str, float | None]
    opened: tuple[str, float | None]

    @property
    def ok(self) -> bool:
        return self.closed[0] == "normal" and self.opened[0] == "alarm"

    def line(self) -> str:
        def shown(r: tuple[str, float | None]) -> str:
            return f"{r[0]} ({'?' if r[1] is None else f'{r[1]:.2f}'} V)"

        verdict = "OK" if self.ok else "CHECK THE WIRING"
        return f"{self.sensor:<18} closed: {shown(self.closed):<20} open: {shown(self.opened):<20} {verdict}"


def walk(cfg: SiteConfig, read: Read, ask: Ask, sensors: list[str] | None = None) -> list[LoopCheck]:
    """`wiring test`: every loop (or those named), opened then closed, what the panel read."""
    names = sensors or [s.id for s in cfg.sensors if s.loop is not None]
    out = []
    for sid in names:
        s = _loop_sensor(cfg, sid)
        ask(f"{sid} ({s.name or s.type}, zone {s.zone}): open it and press Enter.")
        opened = read(sid)
        ask(f"{sid}: close it and press Enter.")
        closed = read(sid)
        out.append(LoopCheck(sid, closed, opened))
    return out


def read_from_status(status: Callable[[], dict[str, Any]]) -> Read:
    """A `Read` over the daemon's status (`supervision.loops`)."""

    def read(sensor: str) -> tuple[str, float | None]:
        loops = (status().get("supervision") or {}).get("loops") or {}
        loop = loops.get(sensor)
        if loop is None:
            raise WiringError(f"the daemon does not supervise {sensor} (is it running this config?)")
        return str(loop["state"]), loop.get("volts")

    return read
