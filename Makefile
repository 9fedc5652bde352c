# OfficeGuard: `make demo` runs a simulated site end to end; `make test` runs every check.
# Both create .venv and install what they need on a fresh machine; Mosquitto comes from the
# system's packages (scripts/need-mosquitto.sh installs it when run as root, else says how), and
# so does Chromium for the station's browser test (scripts/need-chromium.sh).
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: chromium mosquitto venv test lint typecheck pytest demo bench clean install uninstall

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install -q --disable-pip-version-check -e '.[dev]'
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

venv: $(STAMP)

mosquitto:
	sh scripts/need-mosquitto.sh

chromium:
	sh scripts/need-chromium.sh

lint: $(STAMP)
	$(BIN)/ruff check .

typecheck: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP) mosquitto chromium
	$(BIN)/python -m pytest -q -n 2 --dist loadfile --durations=15

test: lint typecheck pytest

demo: $(STAMP) mosquitto
	$(BIN)/python -m controller.demo

bench: $(STAMP) mosquitto
	$(BIN)/python -m bench

# on the Raspberry Pi, as root (see README "Installing on a Raspberry Pi"); PURGE=1 on uninstall
# also removes /etc/officeguard and the logbook in /var/lib/officeguard
install:
	sh scripts/install.sh install

uninstall:
	PURGE=$(PURGE) sh scripts/install.sh uninstall

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis build *.egg-info
