# The two commands: `make up` and `make test`. Every target installs what it needs.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export PYTHONDONTWRITEBYTECODE :=

.PHONY: up test lint bench bench-pipelines bench-optimizer bench-voice bench-voice-engines bench-dashboard install clean format dashboard dashboard-api

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# torch's CPU build comes from /opt/wheels when it holds the pinned wheel, else from PyTorch's
# CPU index (scripts/uv-with-torch.sh; AIMPACT_WHEELS_DIR and AIMPACT_TORCH_INDEX override both).
$(STAMP): $(BIN)/python requirements.lock constraints.txt pyproject.toml scripts/uv-with-torch.sh scripts/precompile.py
	@echo "== install 1/4: uv (the installer) into $(VENV)"
	$(BIN)/python -m pip install -q --disable-pip-version-check uv==0.13.9
	@echo "== install 2/4: requirements.lock (about 2 GB on a first install, mostly torch)"
	UV=$(BIN)/uv scripts/uv-with-torch.sh pip install -q --python $(BIN)/python -r requirements.lock -c constraints.txt
	@echo "== install 3/4: aimpact itself (editable)"
	$(BIN)/uv pip install -q --python $(BIN)/python --no-deps -e .
	@echo "== install 4/4: byte-compiling the modules \`aimpact up\` loads (once; about a minute)"
	$(BIN)/python scripts/precompile.py
	touch $(STAMP)

install: $(STAMP)

# The dashboard's static export (dashboard/out), rebuilt when its sources or lock file change.
dashboard:
	@scripts/build-dashboard.sh

# The dashboard's typed client (dashboard/src/api/schema.d.ts) from the OpenAPI document: built from
# the routes without a server, or from a running API with `make dashboard-api API_URL=http://127.0.0.1:8000`.
dashboard-api: install
	@if [ -n "$(API_URL)" ]; then curl -fsS "$(API_URL)/openapi.json" -o dashboard/openapi.json; \
	else $(BIN)/aimpact openapi -o dashboard/openapi.json; fi
	cd dashboard && npm run --silent gen:api

up: install dashboard
	$(BIN)/aimpact up

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

test: lint dashboard
	$(BIN)/pytest

bench: install
	$(BIN)/python -m bench.agent_runs

bench-pipelines: install
	$(BIN)/python -m bench.pipelines

bench-optimizer: install
	$(BIN)/python -m bench.optimizer

bench-voice: install
	$(BIN)/python -m bench.voice

bench-voice-engines: install
	$(BIN)/python -m bench.voice_engines

bench-dashboard: install dashboard
	bench/dashboard.sh

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:
	rm -rf $(VENV) .aimpact .pytest_cache .mypy_cache .ruff_cache dashboard/node_modules dashboard/.next dashboard/out dashboard/.build-stamp
