"""Every secret the project publishes as an example is known as one, so none guards a site."""

from __future__ import annotations

from pathlib import Path

import pytest

from controller.access.codes import hash_code
from controller.config import load_config, parse_config
from controller.examples import EXAMPLE_FINGERPRINTS, example_secrets, fingerprint, secrets_in
from tests.e2e import ROOT

SHIPPED = sorted((ROOT / "config").glob("*.yaml"))


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_every_secret_in_a_shipped_config_is_a_known_example(path: Path) -> None:
    cfg = load_config(path).config
    found = secrets_in(cfg)
    assert found, f"{path.name} has no secrets: is the loop looking at the right fields?"
    unknown = [where for where, value in found if fingerprint(value) not in EXAMPLE_FINGERPRINTS]
    assert unknown == [], f"{path.name}: add the fingerprints of {unknown} to controller/examples.py"
    assert example_secrets(cfg) == [where for where, _ in found]


def test_a_code_of_the_sites_own_is_not_an_example() -> None:
    text = (ROOT / "config" / "office-a.yaml").read_text(encoding="utf-8")
    cfg = load_config(ROOT / "config" / "office-a.yaml").config
    own = hash_code("9731")
    assert cfg.users[0].code_hash is not None
    mine = parse_config(text.replace(cfg.users[0].code_hash, own)).config
    assert example_secrets(mine) == ["users[1].code_hash", "users[1].duress_code_hash"]


def test_a_key_file_with_a_published_key_is_an_example(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = tmp_path / "command.key"
    key.write_text("published-demo-key\n")
    text = (ROOT / "config" / "demo.yaml").read_text(encoding="utf-8")
    text = text.replace("  heartbeat: 60s", f"  heartbeat: 60s\n  command_key_file: {key}")
    cfg = parse_config(text).config
    assert "mqtt.command_key_file" not in example_secrets(cfg)
    monkeypatch.setattr(
        "controller.examples.EXAMPLE_FINGERPRINTS",
        EXAMPLE_FINGERPRINTS | {fingerprint("published-demo-key")},
    )
    assert "mqtt.command_key_file" in example_secrets(cfg)
