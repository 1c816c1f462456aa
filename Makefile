# `make serve` and `make test` work on a machine that has only Python 3.11+: they create .venv
# and install what they need. llama-cpp-python compiles from source the first time (minutes);
# pip keeps the wheel in its cache, so later installs are quick.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# llama.cpp for x86-64 with AVX2, FMA and F16C rather than -march=native: on a CPU that
# reports AMX, a native build compiles AMX kernels, and where the kernel or the hypervisor does
# not let the process use AMX the first generation dies of a general protection fault. pip
# caches the wheel it builds, so the one it caches must run on the next machine too. (On other
# architectures these x86 options are ignored.)
LLAMA_CMAKE_ARGS ?= -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON

.PHONY: serve test lint bench clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
		{ echo "ModelGrid needs Python 3.11 or newer (found: $$($(PYTHON) --version))"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	@echo "Installing ModelGrid and its dependencies (the first build of llama-cpp-python takes several minutes)..."
	CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" $(BIN)/python -m pip install --quiet --progress-bar off -e '.[dev]'
	touch $(STAMP)

serve: $(STAMP)
	$(BIN)/modelgrid serve

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/mypy

test: lint
	$(BIN)/pytest

# The embedded model through the API against in-process; then the gateway's overhead (plain
# answers, then 500-piece streams) and its reliability in front of an nginx mock, the same load over many keys, and metering's
# admission and settlement (PostgreSQL and Redis as in the tests) (these need `apt-get install
# nginx wrk`; the LiteLLM comparison needs the virtualenv named in benchmarks/overhead.py, and
# is skipped without it).
bench: $(STAMP)
	$(BIN)/python benchmarks/embedded_throughput.py
	$(BIN)/python benchmarks/overhead.py
	$(BIN)/python benchmarks/overhead.py --stream --stream-tokens 500 --concurrency 16 --ttfb 0
	$(BIN)/python benchmarks/paced_streams.py
	$(BIN)/python benchmarks/reliability.py
	$(BIN)/python benchmarks/many_keys.py
	$(BIN)/python benchmarks/json_codec.py
	$(BIN)/python benchmarks/metering.py
	$(BIN)/python benchmarks/cascade_live.py
	$(BIN)/python benchmarks/retrieval.py
	$(BIN)/python benchmarks/ledger_flush.py
	$(BIN)/python benchmarks/review.py
	$(BIN)/python benchmarks/content_store.py
	$(BIN)/python benchmarks/content_prune.py
	$(BIN)/python benchmarks/provenance_growth.py
	$(BIN)/python benchmarks/provenance_layouts.py
	$(BIN)/python benchmarks/watermark.py
	$(BIN)/python benchmarks/audit.py
	$(BIN)/python benchmarks/provenance_lookup.py

clean:
	rm -rf $(VENV) .modelgrid .pytest_cache .mypy_cache .ruff_cache
