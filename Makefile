# make demo: create .venv if missing, install mlefit, run a real fit on sample_data/.
# make test: the same environment, the whole test suite (what CI runs).
# make bench: the same environment plus the bench extra; mlefit side by side with statsmodels,
#   scikit-learn and glum (benchmarks/compare.py; BENCH_ARGS=--quick for a smoke run).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test bench sample-data clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/mlefit fit sample_data/admissions.csv --family bernoulli --target admitted

test: $(STAMP)
	$(BIN)/python -m pytest -n 2 -q

BENCH_STAMP := $(VENV)/.bench-installed
BENCH_ARGS ?= --json benchmarks/results.json

$(BENCH_STAMP): $(STAMP) pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[test,bench]'
	touch $(BENCH_STAMP)

bench: $(BENCH_STAMP)
	$(BIN)/python benchmarks/compare.py $(BENCH_ARGS)

sample-data: $(STAMP)
	$(BIN)/python sample_data/make_samples.py

clean:
	rm -rf $(VENV) .pytest_cache
