#!/usr/bin/env bash
# The test command: format check, lint, strict type check, then the test suite (GPU tests skip without a GPU).
set -euo pipefail
cd "$(dirname "$0")/.."
. .venv/bin/activate
ruff format --check .
ruff check .
mypy
pytest "$@"
