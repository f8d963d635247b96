# Biobank Commons — the two quick-start commands are `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
VENDOR := src/biobank/web/static/vendor
# anvil (an Ethereum dev node) for the JSON-RPC chain tests, from npm; .ci/run installs the same
ANVIL_VERSION := 1.7.1
ANVIL := .ci/tools/node_modules/.bin/anvil

.PHONY: install assets tools demo serve test test-sqlite test-postgres lint typecheck bench clean

$(STAMP): pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c requirements.lock -e ".[dev]"
	touch $(STAMP)

install: $(STAMP) assets  ## Create .venv, install the package and front-end assets

$(VENDOR)/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	mkdir -p $(VENDOR)
	cp node_modules/htmx.org/dist/htmx.min.js $(VENDOR)/
	cp node_modules/@picocss/pico/css/pico.min.css $(VENDOR)/
	cp node_modules/chart.js/dist/chart.umd.min.js $(VENDOR)/
	touch $(VENDOR)/.installed

assets: $(VENDOR)/.installed  ## Install htmx, Pico and Chart.js from npm into the static folder

$(ANVIL):
	npm install --prefix .ci/tools --no-save --no-audit --no-fund --loglevel=error @foundry-rs/anvil@$(ANVIL_VERSION)

tools: $(ANVIL)  ## Install anvil (npm) for the chain tests

demo: install  ## Load a synthetic demo consortium and serve it at http://127.0.0.1:8000
	$(BIN)/biobank demo

serve: install
	$(BIN)/biobank serve

test: install tools  ## Run the whole suite on SQLite (and on PostgreSQL when BIOBANK_TEST_POSTGRES=1)
	$(BIN)/pytest

test-postgres: install tools
	BIOBANK_TEST_POSTGRES=1 $(BIN)/pytest

lint: install
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy src

bench: install  ## Run the benchmarks; results in bench/results/*.json and a Markdown table
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) node_modules $(VENDOR) .pytest_cache .mypy_cache .ruff_cache
