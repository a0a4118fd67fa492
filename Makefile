# One cargo profile (release) and one target directory per machine, so the
# bundled RocksDB is compiled once and shared by runs, tests and benches.
export CARGO_TARGET_DIR ?= /var/tmp/agent-ledger-target
BIN := $(CARGO_TARGET_DIR)/release
DEBIAN_PACKAGES := libclang-dev g++ pkg-config libtss2-dev swtpm swtpm-tools tpm2-tools chromium chromium-driver

.PHONY: run test bench load setup build lint fmt fuzz python test-python
# The Python package (ledger-py) is built into this virtual environment.
PYTHON ?= python3
VENV := $(CARGO_TARGET_DIR)/py-venv

## Run the server on its defaults: 127.0.0.1:8080, RocksDB under ./data.
run: build
	$(BIN)/ledger-server

## Install what is missing, then run every test: the workspace, the
## TPM tests (`tpm` feature; each test process starts its own swtpm), then
## the Python package's tests against the real server binary, and the
## console's in headless Chromium.
test: setup
	cargo build --release -p zk -p verifier --no-default-features
	cargo test --release --workspace
	cargo test --release -p ledger-client --features tpm --test tpm
	$(MAKE) test-python

## The Python package: a virtual environment with the pinned test
## requirements, the abi3 wheel built by maturin (same target directory and
## profile as the rest), installed into it.
python: setup
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q -r ledger-py/requirements-test.txt
	rm -rf $(CARGO_TARGET_DIR)/wheels
	cd ledger-py && $(VENV)/bin/maturin build --release --locked --out $(CARGO_TARGET_DIR)/wheels -i $(VENV)/bin/python
	$(VENV)/bin/pip install -q --force-reinstall --no-deps $(CARGO_TARGET_DIR)/wheels/agent_ledger-*.whl

## The Python tests (pytest) against the server and verifier binaries.
test-python: python
	cargo build --release --workspace --bins
	cd ledger-py && $(VENV)/bin/python -m pytest -q -p no:cacheprovider

## Every fuzz target (fuzz/src/targets.rs) for FUZZ_ITERS executions
## (default 10^6) on the stable toolchain; `make test` runs a short pass.
## A crashing input is hex-dumped and saved; FUZZ_SEED picks another run.
FUZZ_ITERS ?= 1000000
fuzz: setup
	FUZZ_ITERS=$(FUZZ_ITERS) cargo test --release --workspace --test fuzz -- --nocapture --test-threads=$$(nproc)

## Criterion benches (same profile and target directory as the tests).
bench: setup
	cargo bench --workspace

## HTTP load against a server started with `make run` in another shell.
load: build
	$(BIN)/ledger-load --clients 64 --seconds 10

lint: python
	cargo fmt --all -- --check
	cargo fmt --manifest-path ledger-py/Cargo.toml -- --check
	cargo clippy --release --workspace --all-targets -- -D warnings
	PYO3_PYTHON=$(VENV)/bin/python cargo clippy --release --manifest-path ledger-py/Cargo.toml -- -D warnings

fmt:
	cargo fmt --all

# `--all-targets` keeps the feature set identical to `make test`, so a run
# never triggers a second RocksDB compile.
build: setup
	cargo build --release --workspace --all-targets

setup:
	@missing=""; $(PYTHON) -c 'import venv, ensurepip' 2>/dev/null || missing="python3-venv python3-pip"; \
	for p in $(DEBIAN_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing Debian packages:$$missing"; \
		if [ "$$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi; \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; \
	fi
