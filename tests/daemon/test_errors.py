"""One exception hierarchy: every exception the project defines derives from its root, found by
walking the modules (so a new exception class cannot forget it)."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from types import ModuleType

import pytest

import controller
import hardware
from controller.errors import OfficeGuardError
from hardware.backend import HardwareError

NOT_YET: set[str] = set()  # modules whose exceptions are still to join the hierarchy


def _modules(package: ModuleType) -> list[ModuleType]:
    names = [m.name for m in pkgutil.walk_packages(package.__path__, package.__name__ + ".")]
    # importing a __main__ runs its program (the CLI, the demo)
    return [
        importlib.import_module(n)
        for n in [package.__name__, *names]
        if not n.endswith(".__main__")
    ]


def _exceptions(package: ModuleType) -> list[type[BaseException]]:
    found = []
    for module in _modules(package):
        if module.__name__ in NOT_YET:
            continue
        for _, obj in inspect.getmembers(module, inspect.isclass):
            if issubclass(obj, BaseException) and obj.__module__ == module.__name__:
                found.append(obj)
    return found


def test_every_exception_of_the_daemon_derives_from_officeguard_error() -> None:
    found = _exceptions(controller)
    assert len(found) >= 9  # ConfigError, CommandError, JournalError, ... really found
    assert [c.__qualname__ for c in found if not issubclass(c, OfficeGuardError)] == []


def test_every_exception_of_the_hardware_layer_derives_from_hardware_error() -> None:
    found = _exceptions(hardware)
    assert {c.__name__ for c in found} >= {"HardwareError", "UnknownDevice"}
    assert [c.__qualname__ for c in found if not issubclass(c, HardwareError)] == []


@pytest.mark.parametrize(
    ("name", "second"),
    [
        ("controller.remote.commands.CommandError", ValueError),
        ("controller.access.codes.CodeFormatError", ValueError),
        ("controller.drone.protocol.ProtocolError", ValueError),
        ("controller.drone.odid.OdidError", ValueError),
        ("controller.console.net.MonitorError", RuntimeError),
        ("hardware.sim.UnknownDevice", KeyError),
    ],
)
def test_an_exception_that_was_a_builtin_error_still_is_one(
    name: str, second: type[BaseException]
) -> None:
    module, _, cls = name.rpartition(".")
    assert issubclass(getattr(importlib.import_module(module), cls), second)


def test_a_config_error_still_lists_its_problems_and_is_caught_as_an_officeguard_error() -> None:
    from controller.config import ConfigError, parse_config

    with pytest.raises(OfficeGuardError) as err:
        parse_config("zones: []", "site.yaml")
    assert isinstance(err.value, ConfigError)
    assert str(err.value).startswith("site.yaml: ")
    assert err.value.problems
