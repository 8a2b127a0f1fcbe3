# Klaxon: `make demo` and `make test` are all a fresh machine needs; each sets itself up.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: venv run demo test lint unit integration bench clean chromium package

$(STAMP): requirements.txt requirements-dev.txt constraints.txt pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@echo "installing pinned dependencies into $(VENV) ..."
	@$(PY) -m pip install -q --disable-pip-version-check -r requirements.txt -r requirements-dev.txt -c constraints.txt
	@$(PY) -m pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e .
	@touch $@

venv: $(STAMP)

run: venv
	$(VENV)/bin/klaxon run

demo: venv
	$(VENV)/bin/klaxon demo

lint: venv
	$(PY) -m ruff check .

test: venv lint chromium
	$(VENV)/bin/klaxon playbooks validate
	KLAXON_REQUIRE_E2E=1 $(PY) -m pytest -n 2 --dist loadfile tests

# Debian chromium for the browser tests (Playwright never downloads a browser of its own).
chromium:
	@bash tools/ensure_chromium.sh

unit: venv
	$(PY) -m pytest tests/unit

integration: venv
	$(PY) -m pytest tests/integration

bench: venv
	$(PY) -m bench.ingest

# Deployable artefacts (SAM template + Terraform + zip with precompiled bytecode), offline.
package: venv
	infra/package.sh

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis build *.egg-info
