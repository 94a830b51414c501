# Floopy developer entry point. `make help` lists the targets.
# `make run` and `make test` work on a fresh Debian machine with Python 3.11 and Rust.

PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.floopy-deps
NATIVE_SOURCES := $(shell find rust -name '*.rs' -o -name Cargo.toml) Cargo.toml

# The dev environment is pinned: every pip install here, maturin's included, reads
# constraints.txt, so a fresh machine gets the versions CI got. `make lock` refreshes it.
export PIP_CONSTRAINT := $(CURDIR)/constraints.txt

.DEFAULT_GOAL := help
.PHONY: help run test build lint fmt typecheck lock fuzz fuzz-repro bench bench-client bench-load bench-cache bench-dashboard screenshots system-deps clean

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-13s %s\n", $$1, $$2}'

$(BIN)/python:
	@$(PYTHON) -m venv $(VENV) 2>/dev/null || { \
	  echo "python venv module missing: installing python3-venv"; \
	  apt-get update -qq && apt-get install -y -qq python3-venv >/dev/null && $(PYTHON) -m venv $(VENV); }
	$(BIN)/pip install -q --upgrade pip

$(STAMP): pyproject.toml constraints.txt | $(BIN)/python
	$(BIN)/pip install -q "maturin>=1.7,<2"
	$(BIN)/maturin develop -q --release --extras dev
	@touch $(STAMP) .venv/.floopy-native

.venv/.floopy-native: $(NATIVE_SOURCES) | $(STAMP)
	$(BIN)/maturin develop -q --release --skip-install
	@touch $@

build: $(STAMP) .venv/.floopy-native  ## create .venv and build the native module (release)

system-deps:  ## install the Debian packages the tests use, where missing
	@bash scripts/system-deps.sh test

run: build  ## start the gateway at http://127.0.0.1:8787 and its dashboard at :8788 (prints how to log in)
	$(BIN)/floopy serve

# The fuzzer's time in `make test`, shared by its targets.
FUZZ_SMOKE_SECONDS ?= 25
SECONDS ?= 300
FUZZ := nice cargo run --quiet --profile fuzz -p floopy-fuzz --

test: system-deps build  ## install what the tests need, build, run cargo tests, a short fuzz run, pytest (a skip for a missing file or service fails it)
	cargo test --workspace --quiet
	$(FUZZ) --seconds $(FUZZ_SMOKE_SECONDS)
	$(BIN)/pytest -q -p no:cacheprovider

fuzz:  ## fuzz the native core: SECONDS=600 in all, TARGETS="sse jsonl", SEED=s ITERATIONS=n to replay
	$(FUZZ) $(if $(ITERATIONS),--iterations $(ITERATIONS),--seconds $(SECONDS)) \
	  $(if $(SEED),--seed $(SEED)) $(TARGETS)

fuzz-repro:  ## replay a saved failing input: make fuzz-repro TARGET=sse FILE=target/fuzz-crashes/...
	$(FUZZ) --repro $(TARGET) $(FILE)

lint: build  ## ruff, cargo fmt --check, clippy, mypy, the native stub against the module
	$(BIN)/ruff check python tests benches
	$(BIN)/ruff format --check python tests benches
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings
	$(BIN)/mypy
	$(BIN)/python -m mypy.stubtest floopy._native

fmt:  ## format Python and Rust sources
	$(BIN)/ruff format python tests benches
	$(BIN)/ruff check --fix python tests benches
	cargo fmt --all

typecheck: build  ## mypy on python/floopy
	$(BIN)/mypy

lock: build  ## rewrite constraints.txt from the .venv (after changing a dependency)
	@{ echo "# Exact versions of the dev environment; make installs with it (PIP_CONSTRAINT)."; \
	  echo "# Rewritten by \`make lock\`; never edited by hand."; \
	  $(BIN)/pip freeze --exclude floopy --exclude pip; } > constraints.txt

bench: build  ## micro benches: native hot path against pure-Python equivalents
	$(BIN)/pytest benches/micro -q -p no:cacheprovider --benchmark-only \
	  --benchmark-columns=min,median,mean,ops --benchmark-sort=name \
	  --benchmark-json=benches/results/micro.json
	$(BIN)/python benches/report_micro.py benches/results/micro.json

bench-client: build  ## upstream HTTP clients (aiohttp, httpx, Rust, native) under wrk, via nginx mock
	@bash scripts/system-deps.sh bench
	VIRTUAL_ENV=$(CURDIR)/$(VENV) $(BIN)/maturin develop -q --release \
	  -m benches/load/client/rust_client/Cargo.toml
	$(BIN)/python benches/load/client/run.py

bench-load: build  ## Floopy beside direct, nginx and LiteLLM under load (~20 min; ARGS=--quick)
	@bash scripts/system-deps.sh bench
	$(BIN)/python benches/load/run.py $(ARGS)

bench-cache: build  ## the cache under load: exact hits, misses, cache off (~6 min; ARGS=--rounds 1)
	@bash scripts/system-deps.sh bench
	$(BIN)/python benches/load/cache.py $(ARGS)

screenshots: system-deps build  ## the browser tests, keeping their screenshots in docs/screenshots/
	FLOOPY_SCREENSHOTS=$(CURDIR)/docs/screenshots $(BIN)/pytest -q -p no:cacheprovider \
	  tests/integration/test_dashboard.py

bench-dashboard: system-deps build  ## 1M requests in the embedded store: each page's query and first paint
	nice $(BIN)/python benches/dashboard/run.py $(ARGS)

clean:  ## remove build output and the virtualenv
	rm -rf $(VENV) target .pytest_cache
