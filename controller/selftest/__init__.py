"""The periodic self-test: the controller says it is alive, as an event (E602)."""

from controller.selftest.component import SelfTest

__all__ = ["SelfTest"]
