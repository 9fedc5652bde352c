"""The command line's finish: help that explains, the logbook for a spreadsheet, durations parsed
as the config parses them, a bounded `sim advance` that lets the loop serve, an empty code that
is no code, refusals in the site's language, and the simulated detector's heartbeats."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import re
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from controller.cli import LOG_FIELDS, build_parser
from controller.control import ControlError
from controller.drone.protocol import parse_line
from controller.remote.commands import parse_cmd
from tests.e2e import DEMO_CONFIG, ROOT, Site
from tests.project.test_faults import InProcess, settle

T0 = datetime.fromisoformat("2026-03-04T10:00:00+07:00")  # a Wednesday: every zone disarmed


# ----------------------------------------------------------------------------- --help


def _subparsers(parser):
    for action in parser._actions:
        if action.__class__.__name__ == "_SubParsersAction":
            for name, sp in action.choices.items():
                yield name, sp
                for sub, ssp in _subparsers(sp):
                    yield f"{name} {sub}", ssp


def test_every_sub_commands_help_has_a_description_explained_options_and_an_example():
    parser = build_parser()
    seen = []
    for name, sp in _subparsers(parser):
        seen.append(name)
        text = sp.format_help()
        assert sp.description and sp.description.split("\n")[0].strip(), name
        assert re.search(r"\nexample:\n  .*officeguard ", text), name
        for action in sp._actions:
            if action.option_strings and action.dest != "help":
                assert action.help, f"{name} {action.option_strings}: no help"
    assert {"run", "log", "sim serial", "sim advance", "monitor", "hash-code"} <= set(seen)


def test_sim_serial_help_shows_the_line_format_and_an_example_that_parses():
    text = dict(_subparsers(build_parser()))["sim serial"].format_help()
    assert "<JSON>*<crc32 hex>" in text
    example = re.search(r"'(\{.*\}\*[0-9a-f]{8})'", text)
    assert example is not None, text
    assert parse_line(example.group(1)).T == "hb"


def test_options_with_defaults_say_them():
    helps = {name: sp.format_help() for name, sp in _subparsers(build_parser())}
    assert "(default: 0.3)" in helps["sim pulse"]
    assert "(default: away)" in helps["arm"]
    assert "(default: text)" in helps["log"]
    assert "(default: 2)" in helps["monitor"]


# ----------------------------------------------------------------------------- in process


def test_the_simulated_detector_says_hello_and_beats_every_five_seconds_of_virtual_time(
    tmp_path: Path,
) -> None:
    async def body() -> None:
        async with InProcess(tmp_path / "state", T0, detector_nodes=True) as site:
            d = site.daemon
            station = d.detectors["rf.roof"]
            n = site.count()
            await d._h_sim_advance({"duration": "1h"})
            await settle()
            assert station.monitor.by_type["hello"] == 1
            assert station.monitor.by_type["hb"] == 720
            assert d.troubles() == [] and "trouble" not in site.kinds(n)
            await d._h_sim_heartbeat({"detector": "rf.roof", "state": "off"})
            await d._h_sim_advance({"duration": "14s"})
            assert "trouble" not in site.kinds(n)
            await d._h_sim_advance({"duration": "2s"})
            assert site.kinds(n) == ["trouble"]
            assert [t["cid"] for t in d.troubles()] == ["E333"]
            await d._h_sim_heartbeat({"detector": "rf.roof", "state": "on"})
            await d._h_sim_advance({"duration": "5s"})
            assert site.kinds(n) == ["trouble", "trouble_restore"]

    asyncio.run(body())


def test_an_empty_or_missing_mqtt_code_is_no_code_and_never_counts_toward_the_lockout(
    tmp_path: Path,
) -> None:
    async def body() -> None:
        async with InProcess(tmp_path / "state", T0) as site:
            d = site.daemon
            for payload in [b'{"action": "arm", "zone": "finance", "code": ""}'] * 5 + [
                b'{"action": "arm", "zone": "finance"}'
            ]:
                cmd, _raw = parse_cmd(payload)
                with pytest.raises(ControlError) as e:
                    await d.operate(cmd, "mqtt")
                assert e.value.reason == "no_code"
                assert str(e.value) == "Từ chối: chưa nhập mã"
            assert d.access is not None and d.access.locked() == {}
            await settle()
            events = site.events()
            assert [e.detail.get("reason") for e in events if e.kind == "system"][-6:] == [
                "no_code"
            ] * 6
            assert not any(e.cid == "E461" for e in events)  # never a wrong code
            cmd, _ = parse_cmd(b'{"action": "arm", "zone": "finance", "code": "2468"}')
            assert (await d.operate(cmd, "mqtt"))["zones"] == {"finance": "arming"}

    asyncio.run(body())


# ----------------------------------------------------------------------------- real processes


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory):
    s = Site(tmp_path_factory.mktemp("cli") / "state")
    s.start(T0.isoformat())
    yield s
    s.stop()


@pytest.mark.integration
def test_sim_advance_without_a_unit_is_refused_as_the_config_refuses_it(site: Site) -> None:
    r = site.og("sim", "advance", "10", check=False)
    assert r.returncode == 1
    assert r.stderr.strip() == (
        "Từ chối: thời lượng '10' không hợp lệ: dùng số kèm đơn vị, như 30s, 4m, 1h hoặc 1h30m"
    )
    assert site.status()["time"] == T0.isoformat()


@pytest.mark.integration
def test_sim_advance_refuses_more_than_seven_days(site: Site) -> None:
    r = site.og("sim", "advance", "7d1s", check=False)
    assert r.returncode == 1
    assert r.stderr.strip() == "Từ chối: mỗi lần chỉ tiến đồng hồ ảo tối đa 7 ngày"


@pytest.mark.integration
def test_the_daemon_answers_status_while_a_long_advance_runs(site: Site) -> None:
    start = datetime.fromisoformat(site.status()["time"])
    end = start + timedelta(days=2)
    argv = [sys.executable, "-m", "controller", "sim", "advance", "2d"]
    proc = subprocess.Popen(
        [*argv, "--state-dir", str(site.state_dir)], cwd=ROOT, env=site.env, text=True,
        stdout=subprocess.PIPE,
    )  # fmt: skip
    seen = []
    while proc.poll() is None:
        seen.append(datetime.fromisoformat(site.status()["time"]))
    assert proc.wait() == 0
    assert any(start < t < end for t in seen), seen  # served in the middle of the advance
    assert datetime.fromisoformat(site.status()["time"]) == end


@pytest.mark.integration
def test_an_empty_code_on_the_cli_is_no_code_and_never_locks_the_cli_out(site: Site) -> None:
    for _ in range(6):
        r = site.og("arm", "finance", input="\n", check=False)
        assert (r.returncode, r.stderr.strip()) == (1, "Từ chối: chưa nhập mã")
    site.og("arm", "finance", input="2468\n")
    assert site.zone("finance") == "arming"
    site.og("disarm", "finance", input="2468\n")


@pytest.mark.integration
def test_log_refuses_an_unknown_kind_and_lists_the_valid_ones(site: Site) -> None:
    r = site.og("log", "--kind", "burglary", check=False)
    assert r.returncode == 2
    assert "invalid choice: 'burglary'" in r.stderr
    assert all(k in r.stderr for k in ("'alarm'", "'keypad_lockout'", "'drone_lost'"))


@pytest.mark.integration
def test_log_as_csv_between_since_and_until_for_a_spreadsheet(site: Site) -> None:
    site.og("arm", "leadership", input="2468\n")
    site.og("disarm", "leadership", input="2468\n")
    everything = site.events()
    arm = next(e for e in everything if e["kind"] == "arm" and e.get("zone") == "leadership")
    local = datetime.fromisoformat(arm["ts"]).replace(tzinfo=None).isoformat()
    r = site.og("log", "--since", local, "--until", "2099-01-01", "--format", "csv")
    rows = list(csv.DictReader(io.StringIO(r.stdout)))
    assert tuple(rows[0].keys()) == LOG_FIELDS
    assert rows and all(row["ts"] >= arm["ts"] for row in rows)
    assert [int(row["seq"]) for row in rows] == [
        e["seq"] for e in everything if e["ts"] >= arm["ts"]
    ]
    assert (
        json.loads(rows[0]["detail"])
        == next(e for e in everything if e["seq"] == int(rows[0]["seq"]))["detail"]
    )
    assert (
        site.og("log", "--until", local, "--json").stdout
        == site.og("log", "--until", local, "--format", "json").stdout
    )
    before = [json.loads(x) for x in site.og("log", "--until", local, "--json").stdout.splitlines()]
    assert before and all(e["ts"] < arm["ts"] for e in before)


@pytest.mark.integration
def test_refusals_read_in_english_on_an_english_site(tmp_path: Path) -> None:
    config = tmp_path / "en.yaml"
    config.write_text(
        DEMO_CONFIG.read_text(encoding="utf-8").replace("language: vi", "language: en"),
        encoding="utf-8",
    )
    en = Site(tmp_path / "state", config)
    en.start(T0.isoformat())
    try:
        r = en.og("arm", "atlantis", input="2468\n", check=False)
        assert r.stderr.strip() == (
            "Refused: unknown zone atlantis (zones: leadership, finance, perimeter)"
        )
        r = en.og("arm", "finance", input="0000\n", check=False)
        assert r.stderr.strip() == "Refused: wrong code"
    finally:
        en.stop()


def test_every_refusal_renders_as_one_sentence_in_each_language():
    import string

    from controller import texts
    from controller.refusals import refusal

    for key, by_lang in texts.known().items():
        if not key.startswith("refused."):
            continue
        for lang in ("vi", "en"):
            names = {f for _, f, _, _ in string.Formatter().parse(by_lang[lang]) if f}
            e = refusal(lang, key.removeprefix("refused."), **{n: "X" for n in names})
            assert str(e).startswith("Từ chối: " if lang == "vi" else "Refused: "), (key, lang)
            assert e.reason == key.removeprefix("refused.")
