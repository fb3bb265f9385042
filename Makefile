# Every chore has a target here; the README's two commands are `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
FOLDER ?= .

.PHONY: setup setup-dev demo test lint bench

$(VENV)/.runtime: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check -e .
	touch $@

$(VENV)/.dev: $(VENV)/.runtime
	$(BIN)/pip install -q --disable-pip-version-check -e ".[train,dev]"
	touch $@

setup: $(VENV)/.runtime          ## runtime only: the CLI and the daemon
setup-dev: $(VENV)/.dev          ## plus training, tests and lint tools

demo: setup                      ## the main job on FOLDER (default: this repository)
	$(BIN)/treelens inspect $(FOLDER)

lint: setup-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check model daemon training tests bench

test: setup-dev lint             ## every test suite
	$(BIN)/pytest

bench: setup-dev
	$(BIN)/python bench/tree_build.py
