#!/bin/sh
# Builds the Treelens wheel the .vsix carries (extension/bundled/): on first start the
# extension installs it into its own virtual environment (src/common/privateEnv.ts).
# Python: $PYTHON, else the project's .venv, else python3. Runs before `vsce package`.
set -eu
cd "$(dirname "$0")/.."
PY="${PYTHON:-}"
if [ -z "$PY" ]; then
  if [ -x .venv/bin/python ]; then PY=.venv/bin/python; else PY=python3; fi
fi
# setuptools' build/ folder keeps files of removed modules: start from nothing
rm -rf extension/bundled build
# without build isolation when this Python has a recent enough setuptools (no download needed)
ISOLATION=
if "$PY" -c 'import sys, setuptools; sys.exit(int(setuptools.__version__.split(".")[0]) < 69)' 2>/dev/null; then
  ISOLATION=--no-build-isolation
fi
"$PY" -m pip wheel --no-deps $ISOLATION --disable-pip-version-check --no-input -q -w extension/bundled .
rm -rf build
ls extension/bundled/treelens-*.whl
