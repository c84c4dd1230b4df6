# Two commands for a fresh machine: `make demo` (the main job) and `make test` (the suite).
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install test test-fast demo bench clean

install: $(STAMP)

# Re-installs only when the project definition changes.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test,dashboard,jobs]'
	touch $(STAMP)

test: install
	$(BIN)/python -m pytest -q

test-fast: install
	$(BIN)/python -m pytest -q -m "not slow and not cluster"

demo: install
	$(BIN)/python -m study demo --out results/demo

# The benchmark store: 2,000 bundled IMDB reviews, built on first use (about a minute), reused afterwards.
BENCH_STORE := results/stores/bench

$(BENCH_STORE)/manifest.json: | install
	$(BIN)/python -m data_prep build --source imdb --per-class 1000 --max-len 400 --vector-size 300 --out $(BENCH_STORE)

bench: install $(BENCH_STORE)/manifest.json
	$(BIN)/python -m study bench --store $(BENCH_STORE) --preset cnn_kim --samples 256 --json

clean:
	rm -rf $(VENV) results/demo .pytest_cache
