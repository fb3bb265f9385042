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

$(VENV)/.dev: $(VENV)/.runtime $(VENV)/checkov/bin/checkov
	$(BIN)/pip install -q --disable-pip-version-check -e ".[train,dev]"
	touch $@

# checkov pins packaging<24 (pytest needs >=24): its own environment, which
# model/querysets/checkov.py finds (after $$TREELENS_CHECKOV and PATH)
$(VENV)/checkov/bin/checkov: | $(VENV)/.runtime
	$(PYTHON) -m venv $(VENV)/checkov
	$(VENV)/checkov/bin/pip install -q --disable-pip-version-check "checkov==3.3.30"

setup: $(VENV)/.runtime          ## runtime only: the CLI and the daemon
setup-dev: $(VENV)/.dev          ## plus training, tests and lint tools

demo: setup                      ## the main job on FOLDER (default: this repository)
	$(BIN)/treelens classify $(FOLDER)
	$(BIN)/treelens suggest $(FOLDER) --engine semgrep

lint: setup-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check model daemon training tests bench

# pytest -n auto: one worker per core (xdist); each builds its own session fixtures
test: setup-dev lint test-extension  ## every test suite, the real editor (test-e2e) last
	$(BIN)/pytest -n auto
	$(MAKE) --no-print-directory test-e2e

.PHONY: dist
dist: setup                      ## dist/: the sdist and the wheel built from it (pip install dist/treelens-*.whl)
	rm -rf dist build
	$(BIN)/pip install -q --disable-pip-version-check "build>=1.2"
	$(BIN)/python -m build --outdir dist .
	rm -rf build

bench: setup-dev
	$(BIN)/python bench/tree_build.py

.PHONY: bench-scan
bench-scan: setup-dev            ## semgrep time saved by the suggested query sets (installs the [bench] extra)
	$(BIN)/pip install -q --disable-pip-version-check -e ".[bench]"
	$(BIN)/python bench/scan_savings.py

# VS Code extension (package.json, extension/): Node 20 and npm; `npm ci` again when the lockfile changes.
.PHONY: test-extension package-extension test-e2e

node_modules/.ci-stamp: package.json package-lock.json
	npm ci --no-audit --no-fund
	touch $@

test-extension: setup-dev node_modules/.ci-stamp  ## compile, lint, unit tests, protocol test against the daemon
	npm run compile
	npm run lint
	npm test

package-extension: setup node_modules/.ci-stamp  ## treelens.vsix, carrying the Treelens wheel it installs on first start
	npm run package

# The tools (Node 24, code-server, Chromium) are installed once and reused from
# $$TREELENS_E2E_TOOLS (default ~/.cache/treelens-e2e); screenshots and logs land in .e2e/artifacts/.
test-e2e: setup-dev package-extension  ## real editor: the .vsix in code-server with only a plain Python, driven through Chromium
	extension/e2e/install-tools.sh
	npm run test:e2e
