"""The repository stands on its own: a bare clone builds, tests and documents itself.

Nothing tracked names a path outside the repo, the data the tests use lives under `tests/data/`
and `config/`, and the reference pages in `docs/` cover every config key, CLI command, event
kind and detector message, so a new key or command cannot ship undocumented.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import typing
from pathlib import Path

import pytest
from pydantic import BaseModel

from controller.cli import build_parser
from controller.config import SiteConfig, load_config, parse_config
from controller.drone import protocol
from tests.conftest import DATA, REFERENCE, ROOT

DOCS = ROOT / "docs"


def _tracked_files() -> list[Path]:
    out = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True
    ).stdout.decode()
    return [ROOT / name for name in out.split("\0") if name]


def test_no_tracked_file_names_a_path_outside_the_repository() -> None:
    # built from parts so that this file does not match itself
    outside = re.compile("|".join(re.escape(p) for p in ("../" + "shared", "/wo" + "rk/", "DES" + "IGN.md")))
    offenders = []
    for path in _tracked_files():
        if not path.is_file():
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        for n, line in enumerate(text.splitlines(), 1):
            if outside.search(line):
                offenders.append(f"{path.relative_to(ROOT)}:{n}: {line.strip()}")
    assert offenders == []


def test_the_reference_config_and_the_test_vectors_are_inside_the_repository() -> None:
    assert REFERENCE.is_relative_to(ROOT) and DATA.is_relative_to(ROOT)
    assert load_config(REFERENCE).config.site.id == "office-a"
    vectors = (DATA / "odid.tsv").read_text(encoding="utf-8")
    provenance = (DATA / "README.md").read_text(encoding="utf-8")
    sources = {
        line.split("\t")[1] for line in vectors.splitlines() if line.strip() and not line.startswith("#")
    }
    assert sources == {"core-c", "wireshark-bcn"}
    for source in sources:
        assert f"`{source}`" in provenance


def _model_keys(model: type[BaseModel], seen: set[type[BaseModel]]) -> set[str]:
    """Every field name of a config model and of the models nested in it."""
    if model in seen:
        return set()
    seen.add(model)
    keys: set[str] = set()
    for name, info in model.model_fields.items():
        keys.add(name)
        stack = [info.annotation]
        while stack:
            tp = stack.pop()
            if isinstance(tp, type) and issubclass(tp, BaseModel):
                keys |= _model_keys(tp, seen)
            stack.extend(typing.get_args(tp))
    return keys


def test_every_config_key_is_in_the_config_reference() -> None:
    page = (DOCS / "config.md").read_text(encoding="utf-8")
    missing = sorted(k for k in _model_keys(SiteConfig, set()) if f"`{k}`" not in page)
    assert missing == []


def test_every_station_setting_is_in_the_station_reference() -> None:
    from controller.station.settings import StationSettings

    page = (DOCS / "station.md").read_text(encoding="utf-8")
    missing = sorted(k for k in _model_keys(StationSettings, set()) if f"`{k}`" not in page)
    assert missing == []


def test_an_unknown_key_points_to_a_page_that_exists() -> None:
    text = REFERENCE.read_text(encoding="utf-8").replace("  heartbeat: 60s", "  heartbeet: 60s", 1)
    with pytest.raises(Exception) as err:
        parse_config(text, "site.yaml")
    message = str(getattr(err.value, "problems", err.value))
    pointed = re.findall(r"(docs/[\w.-]+\.md|config/[\w.-]+)", message)
    assert pointed, message
    for rel in pointed:
        assert (ROOT / rel).exists(), rel


def _commands(parser: argparse.ArgumentParser, prefix: str = "") -> list[str]:
    found = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found.append(f"{prefix}{name}")
                found += _commands(sub, f"{prefix}{name} ")
    return found


def test_every_command_is_in_the_cli_reference() -> None:
    page = (DOCS / "cli.md").read_text(encoding="utf-8")
    missing = [c for c in _commands(build_parser()) if f"`{c}" not in page]
    assert missing == []


def test_every_event_kind_is_in_the_events_reference() -> None:
    schema = json.loads((ROOT / "controller" / "event.schema.json").read_text(encoding="utf-8"))
    page = (DOCS / "events.md").read_text(encoding="utf-8")
    kinds = schema["properties"]["kind"]["enum"]
    assert [k for k in kinds if f"| `{k}` |" not in page] == []
    fields = schema["properties"].keys()
    assert [f for f in fields if f"`{f}`" not in page] == []


def test_every_detector_message_type_is_in_the_protocol_reference() -> None:
    page = (DOCS / "detector-protocol.md").read_text(encoding="utf-8")
    types = [cls.T for cls in typing.get_args(protocol.Message)]
    assert sorted(types) == ["err", "hb", "hello", "rf", "rid"]
    assert [t for t in types if f"| `{t}` |" not in page] == []
    # the example lines in the page are real lines the controller accepts
    examples = [line for line in page.splitlines() if line.startswith('{"v":1')]
    assert len(examples) >= 4
    for line in examples:
        protocol.parse_line(line)
