# Klaxon: `make demo` and `make test` are all a fresh machine needs; each sets itself up.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: venv run demo test lint unit integration bench clean chromium package deploy

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

# Needs an AWS account: credentials, the AWS CLI and an S3 bucket for the zip (docs/deploy.md).
STACK ?= klaxon-prod
deploy: package
	@test -n "$(KLAXON_ARTIFACT_BUCKET)" || { echo "make deploy: set KLAXON_ARTIFACT_BUCKET to an S3 bucket for the Lambda zip, and AWS credentials (docs/deploy.md)" >&2; exit 2; }
	@command -v aws >/dev/null || { echo "make deploy: the AWS CLI is not installed (docs/deploy.md)" >&2; exit 2; }
	aws cloudformation package --template-file build/sam/sam.json --s3-bucket "$(KLAXON_ARTIFACT_BUCKET)" --output-template-file build/sam/packaged.json
	aws cloudformation deploy --template-file build/sam/packaged.json --stack-name "$(STACK)" --capabilities CAPABILITY_IAM CAPABILITY_AUTO_EXPAND
	@echo "deployed $(STACK); next: secrets into SSM, KLAXON_PUBLIC_URL, alarm subscription (docs/deploy.md)"

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis build *.egg-info
