#!/usr/bin/env bash
# Create .venv and install kernelwright with its worker extras and the dev tools. Idempotent.
# KERNELWRIGHT_TORCH overrides the torch requirement (e.g. "torch" for your platform's default build).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PYTHON" -m venv .venv
fi
. .venv/bin/activate
python -m pip install -q --upgrade "pip>=25.1"
# torch first and pinned: an unpinned torch pulls a multi-GB CUDA build on machines that only need the CPU one.
python -m pip install -q "${KERNELWRIGHT_TORCH:-torch==2.13.0}"
python -m pip install -q -e ".[worker,parquet]"
python -m pip install -q --group dev
echo "kernelwright installed in .venv ($(python -c 'import torch, triton; print("torch", torch.__version__, "triton", triton.__version__)'))"
