# credit-repair developer entry points. Everything runs from the venv in .venv.
#   make run    install and run the main job once on the embedded defaults
#   make test   ruff + mypy + pytest (THE test command; CI runs it via .ci/run)
#   make lint   ruff check + ruff format --check + mypy
#   make bench  every bench/bench_*.py on a small input
#   make docs   regenerate docs/数据格式.md from the code (a test fails when it is stale)

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# Stamps: re-install whenever pyproject.toml changes (or the venv is recreated).
STAMP_RUN  := $(VENV)/.installed-run
STAMP_TEST := $(VENV)/.installed-test
STAMP_BENCH := $(VENV)/.installed-bench
BENCH_ROWS ?= 10000

.DEFAULT_GOAL := help
.PHONY: help install install-test run test lint bench docs clean

help:
	@echo "make run | test | lint | bench | docs | clean"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP_RUN): pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e .
	@touch $@

$(STAMP_TEST): pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[test]'
	@touch $@ $(STAMP_RUN)

# pandas, for bench_sync.py's anchor: a benchmark extra, never a runtime dependency
$(STAMP_BENCH): pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[bench]'
	@touch $@

install: $(STAMP_RUN)
install-test: $(STAMP_TEST)

run: $(STAMP_RUN)
	$(BIN)/credit-repair run --once

lint: $(STAMP_TEST)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

test: lint
	$(BIN)/pytest

bench: $(STAMP_RUN) $(STAMP_BENCH)
	@set -e; for f in bench/bench_*.py; do \
		[ -e "$$f" ] || { echo "no benchmarks in bench/"; break; }; \
		echo "== $$f"; $(BIN)/python "$$f" --rows $(BENCH_ROWS); \
	done

docs: $(STAMP_RUN)
	$(BIN)/python -m pipeline.sync.formats_doc

clean:
	rm -rf .pytest_cache .mypy_cache .ruff_cache build *.egg-info
