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

bench: install
	$(BIN)/python -m study bench --store results/stores/bench --preset cnn_original --json

clean:
	rm -rf $(VENV) results/demo .pytest_cache
