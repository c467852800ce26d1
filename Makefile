# Evidence Gate developer commands. `make test` is the one CI runs.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: setup test lint bench clean setup-browser setup-render setup-azurite setup-tools demo serve

setup: $(STAMP)

$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $(STAMP)

test: setup setup-browser setup-render setup-azurite setup-tools
	$(PY) -m pytest -q

# The Teams card rendering test (tests/teams) needs Debian's chromium and the pinned `adaptivecards`
# npm package. Installed only when missing; a failure here is reported by that test (it fails in CI).
RENDER := tests/teams/render
RENDER_STAMP := $(RENDER)/node_modules/.installed-stamp

setup-browser:
	@if [ ! -x /usr/bin/chromium ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "setup-browser: installing Debian chromium for the Teams card rendering test"; \
	    log=$$(mktemp); \
	    if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	           --no-install-recommends chromium fonts-liberation; } >"$$log" 2>&1; then \
	      tail -n 20 "$$log"; echo "setup-browser: chromium could not be installed"; \
	    fi; rm -f "$$log"; \
	  else echo "setup-browser: chromium is missing and needs root with apt-get to install"; fi; \
	fi

setup-render: $(RENDER_STAMP)

$(RENDER_STAMP): $(RENDER)/package.json $(RENDER)/package-lock.json
	@if command -v npm >/dev/null 2>&1; then \
	  (cd $(RENDER) && npm ci --no-audit --no-fund --loglevel=error 2>&1 | grep -v 'Unknown user config' || true); \
	  if [ -f $(RENDER)/node_modules/adaptivecards/dist/adaptivecards.min.js ]; then touch $@; \
	  else echo "setup-render: npm ci failed in $(RENDER)"; fi; \
	else echo "setup-render: npm is missing; the Teams card rendering test cannot run"; fi

# The state-store, scale-out and storage tests start Azurite (Microsoft's Azure Storage emulator:
# Table, Blob and Queue) from the pinned `azurite` npm package (tests/support/azurite.py).
AZURITE := tests/support/azurite-emulator
AZURITE_STAMP := $(AZURITE)/node_modules/.installed-stamp

setup-azurite: $(AZURITE_STAMP)

$(AZURITE_STAMP): $(AZURITE)/package.json $(AZURITE)/package-lock.json
	@if command -v npm >/dev/null 2>&1; then \
	  (cd $(AZURITE) && npm ci --no-audit --no-fund --loglevel=error 2>&1 | grep -v 'Unknown user config' || true); \
	  if [ -x $(AZURITE)/node_modules/.bin/azurite-table ]; then touch $@; \
	  else echo "setup-azurite: npm ci failed in $(AZURITE)"; fi; \
	else echo "setup-azurite: npm is missing; the Azure Storage tests cannot run"; fi

# Offline IaC checks (tests/infra): checkov + pycep-parser in their own venv, pinned in
# requirements-tools.txt (checkov's pins conflict with the app's).
TOOLS_VENV := .venv-tools
TOOLS_STAMP := $(TOOLS_VENV)/.installed-stamp

setup-tools: $(TOOLS_STAMP)

$(TOOLS_STAMP): requirements-tools.txt
	$(PYTHON) -m venv $(TOOLS_VENV)
	$(TOOLS_VENV)/bin/python -m pip install --quiet --disable-pip-version-check -r requirements-tools.txt
	touch $(TOOLS_STAMP)

lint: setup
	$(VENV)/bin/ruff check .

clean:
	rm -rf $(VENV) $(TOOLS_VENV) .pytest_cache .ruff_cache *.egg-info

# Benchmarks (bench/, docs/performance.md): each prints a table of figures with the goal and whether
# it was met; all but secret_detection (the labelled credential corpus) start their own local MLflow
# server. Run one script alone for its options (e.g. `.venv/bin/python -m bench.reconcile_sweep --per-model 20`).
bench: setup
	$(PY) -m bench.requests_per_check
	$(PY) -m bench.webhook_latency
	$(PY) -m bench.reconcile_sweep
	$(PY) -m bench.cold_start
	$(PY) -m bench.secret_detection
	$(PY) -m bench.footprint
	$(PY) -m bench.throughput
	$(PY) -m bench.reconcile_scale
	$(PY) -m bench.state_store
	$(PY) -m bench.intake_cost
	$(PY) -m bench.databricks_cold_start
	$(PY) -m bench.azureml_cold_start
	$(PY) -m bench.azureml_quiet_sweep

# The end-to-end demo (local MLflow server, evidence-gate serve, Teams endpoint, five model versions).
# `make demo PLATFORM=databricks-uc`: the same versions in Unity Catalog on the local Databricks workspace.
# `make demo PLATFORM=azureml`: the same versions as model assets of a workspace on the local Azure ML (TLS,
# managed identity, azure-ai-ml), registrations as Event Grid events, promotions as stage changes found by reconcile.
PLATFORM ?= mlflow
demo: setup setup-browser setup-render
	$(PY) -m demo --platform $(PLATFORM)

# The local stack, left running (your MLflow server when MLFLOW_TRACKING_URI is set).
serve: setup
	$(PY) -m demo.serve
