# The two commands: `make run` and `make test`. Both build the virtualenv on first use.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test install lint typecheck cfn-lint browser-setup unit peer-setup test-peer bench clean \
	lock lock-upgrade sam-setup build build-x86_64 test-artifact bench-cold-start

# The dev environment installs requirements.lock, the one lock (exact pins, hashes) that the Lambda layer's
# shared/requirements.txt is cut from; the project itself goes in editable, without dependencies (all locked).
# uv (the version the lock pins) does the installing: 12 s here against pip's 2 min 50 s for the same lock,
# most of a fresh clone's `make test` budget otherwise.
UV_VERSION = $(shell sed -n 's/^uv==\([^ ]*\).*/\1/p' requirements.lock)
$(STAMP): pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check --no-deps "uv==$(UV_VERSION)"
	$(VENV)/bin/uv pip install -q --python $(PY) --require-hashes -r requirements.lock
	$(VENV)/bin/uv pip install -q --python $(PY) --no-deps -e .
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

# Four workers (pytest-xdist), each with its own local stack. Most tests wait on I/O (servers, subprocesses,
# Chromium, timeouts), so on two cores the suite took 12 min with one worker per core and 6 min 50 s with four
# (measured on a quiet machine); `make unit PYTEST_WORKERS=1` runs it in one process.
PYTEST_WORKERS ?= 4
unit: $(STAMP)
	$(VENV)/bin/pytest -m "not s3_peer and not artifact" -n $(PYTEST_WORKERS)

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

# The Lambda artifact: `sam build` with the real SAM CLI (aws-sam-cli from requirements-sam.lock, in .venv-sam,
# built once with the Python 3.12 it finds), no Docker. `build` is the deployed arm64 build (.aws-sam/build, what
# `sam deploy` uploads); `build-x86_64` the same template for this machine's CPU (.aws-sam/x86_64/build), which
# the artifact tests import. Both --cached --parallel: a second run rebuilds only what changed. test-artifact
# (part of test) builds the two side by side, then tests what they hold (tests/test_artifact.py).
sam-setup: $(STAMP)
	$(PY) -m scenestore_cli.build setup

build: $(STAMP)
	$(PY) -m scenestore_cli.build build

build-x86_64: $(STAMP)
	$(PY) -m scenestore_cli.build build --arch x86_64

test-artifact: $(STAMP)
	$(PY) -m scenestore_cli.build build --arch arm64 --arch x86_64
	SCENESTORE_ARTIFACT_REQUIRED=1 $(VENV)/bin/pytest -m artifact tests/test_artifact.py

# Re-pin after a change to pyproject.toml's dependencies (or shared/requirements.in): requirements.lock keeps
# every pin it can, and shared/requirements.txt and requirements-sam.lock follow. lock-upgrade moves every pin to
# the newest release the ranges allow (docs/deploy.md, "Build").
lock: $(STAMP)
	$(PY) -m scenestore_cli.build lock

lock-upgrade: $(STAMP)
	$(PY) -m scenestore_cli.build lock --upgrade

test: lint typecheck cfn-lint browser-setup unit test-peer test-artifact

bench: $(STAMP)
	$(PY) bench/delete_prefix.py

# Each handler's import from the built x86_64 artifact (function folder + layer), median of 5 fresh interpreters.
bench-cold-start: build-x86_64
	$(PY) bench/cold_start.py

clean:
	rm -rf $(VENV) .venv-peer .venv-peer.install.log .venv-sam .venv-sam.install.log .aws-sam .pytest_cache \
		.mypy_cache .ruff_cache
