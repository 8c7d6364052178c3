#!/usr/bin/env bash
# One command: set up, then run the main job on embedded defaults (SQLite checkpoints, local sandbox,
# in-process runner) with no API key and no GPU: replay a recorded conversation through the scripted
# provider, compile the Triton kernel it proposes, verify it under Triton's CPU interpreter, refine once.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
. .venv/bin/activate
export KERNELWRIGHT_HOME=${KERNELWRIGHT_HOME:-$PWD/.kernelwright}
kernelwright generate examples/problems/softmax.py --target triton \
  --transcript examples/transcripts/softmax_triton.json "$@"
