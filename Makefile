# The two commands: `make run` and `make test`. Both build the virtualenv on first use.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test install lint typecheck cfn-lint browser-setup unit peer-setup test-peer bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(VENV)/bin/scenestore serve --demo $(ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check shared cli functions tests bench
	$(VENV)/bin/ruff format --check shared cli functions tests bench

typecheck: $(STAMP)
	$(VENV)/bin/mypy shared/scenestore cli/scenestore_cli functions

cfn-lint: $(STAMP)
	$(VENV)/bin/cfn-lint template.yaml

unit: $(STAMP)
	$(VENV)/bin/pytest -m "not s3_peer"

# The second S3 server: LocalStack's S3 with presigned-signature validation on, in its own Python 3.13 virtualenv
# (.venv-peer, built once). Like browser-setup it never fails the build: what it could not install is in
# .venv-peer/.peer-status, and the s3_peer tests skip with that reason.
peer-setup: $(STAMP)
	$(PY) -m scenestore_cli.local.peer install

# browser-setup too: tests/peer/test_peer_browser_cors.py drives Chromium against the peer's CORS checks.
test-peer: peer-setup browser-setup
	$(VENV)/bin/pytest -m s3_peer tests/peer

# Browser/Node set-up for the frontend tests (chromium via apt, npm packages locally); the script reports
# what it could not install, and those tests then skip with the reason.
browser-setup: $(STAMP)
	@if [ -f clients/js/setup.sh ]; then bash clients/js/setup.sh; fi

test: lint typecheck cfn-lint browser-setup unit test-peer

bench: $(STAMP)
	$(PY) bench/delete_prefix.py

clean:
	rm -rf $(VENV) .venv-peer .venv-peer.install.log .pytest_cache .mypy_cache .ruff_cache
