# Quick start: `make demo` and `make test`. Both set up .venv on first use, with the `demo`
# extra (PyAV, numpy, matplotlib: the demo's media and pictures) and the `dev` tools; the
# library itself (`pip install sealroom`) needs neither.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test lint bench clean web

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11+ is required")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev,demo]'
	@touch $(STAMP)

demo: $(STAMP)
	$(BIN)/sealroom demo

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy

# The web core's node tests run inside pytest (tests/web/), which installs web/'s pinned
# packages with `npm ci` when node is present and skips them, saying why, when it is not.
test: lint
	$(BIN)/python -m pytest

# The web client's pinned packages, for `sealroom serve` to hand out with the page.
web:
	cd web && npm ci --no-audit --no-fund

bench: $(STAMP)
	$(BIN)/python bench/pre.py
	$(BIN)/python bench/rekey.py
	$(BIN)/python bench/keyservice.py
	$(BIN)/python bench/media.py
	$(BIN)/python bench/artifacts.py
	$(BIN)/python bench/web.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis web/node_modules
