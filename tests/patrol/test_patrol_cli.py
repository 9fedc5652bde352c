"""`officeguard patrol preview` and `patrol log` (issue 18): the rounds of a night from the
logbook, as text and CSV, and the preview with the holiday that shaped each round."""

from __future__ import annotations

import csv
import io
from datetime import date, timedelta
from pathlib import Path

import pytest

from controller.cli import main
from controller.config import parse_config
from controller.patrol.cli import format_log, night_log
from controller.patrol.component import Patrols
from tests.fake_site import FakeSite
from tests.patrol.test_unit_patrols import AN, CONFIG, START

M = timedelta(minutes=1)


def walk_three_rounds(site: FakeSite) -> Patrols:
    """22:00 walked on time, 00:00 walked late, 02:00 missed."""
    p = Patrols(site)
    p.start()
    site.advance(61 * M)  # 22:01
    p.on_read("cp.gate", AN, None)
    site.advance(6 * M)
    p.on_press("cp.safe", site.clock.now())
    site.advance(timedelta(hours=2) - 7 * M + 10 * M)  # 00:10
    p.on_read("cp.gate", AN, None)
    site.advance(3 * M)
    p.on_press("cp.safe", site.clock.now())
    site.advance(timedelta(hours=3))  # 03:13: the 02:00 round is gone
    return p


def test_the_log_of_a_night_shows_a_completed_a_late_and_a_missed_round(tmp_path: Path) -> None:
    cfg = parse_config(CONFIG).config
    site = FakeSite(cfg, tmp_path, start=START)
    p = walk_three_rounds(site)
    rows = night_log(cfg, site.recorded, date(2026, 3, 4), site.clock.now())
    assert [(r["due"][11:16], r["outcome"]) for r in rows] == [
        ("22:00", "completed"),
        ("00:00", "late"),
        ("02:00", "missed"),
        ("04:00", "pending"),
    ]
    first = rows[0]["visits"]
    assert [(v["checkpoint"], v["user"], v["gap_s"]) for v in first] == [
        ("cp.gate", "an", 60),
        ("cp.safe", None, 360),
    ]
    text = format_log(rows, date(2026, 3, 4), "t")
    assert "2026-03-05 02:00  night  MISSED" in text and "cp.safe" in text
    p.close()
    site.close()


def test_the_patrol_log_command_prints_csv_for_the_monthly_report(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg_file = tmp_path / "site.yaml"
    cfg_file.write_text(CONFIG + f"state_dir: {tmp_path / 'state'}\n", encoding="utf-8")
    (tmp_path / "state").mkdir()
    site = FakeSite(parse_config(cfg_file.read_text()).config, tmp_path / "state", start=START)
    p = walk_three_rounds(site)
    p.close()
    site.close()
    assert (
        main(["patrol", "log", "-c", str(cfg_file), "--night", "2026-03-04", "--format", "csv"])
        == 0
    )
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    rounds = [(r["due"][11:16], r["outcome"]) for r in rows if r["row"] == "round"]
    assert rounds[:3] == [("22:00", "completed"), ("00:00", "late"), ("02:00", "missed")]
    assert sum(1 for r in rows if r["row"] == "visit") == 4


def test_the_preview_names_the_holiday_that_shaped_a_round(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cfg_file = tmp_path / "site.yaml"
    cfg_file.write_text(CONFIG.replace("days: daily", "days: holidays"), encoding="utf-8")
    assert (
        main(["patrol", "preview", "-c", str(cfg_file), "--from", "2026-02-16", "--nights", "1"])
        == 0
    )
    out = capsys.readouterr().out
    assert "2026-02-16 22:00  night  — Lunar New Year's Eve" in out
