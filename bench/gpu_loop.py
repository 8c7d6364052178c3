"""The whole loop on a GPU with the scripted provider: PTX, CUDA and Triton problems end to end.

Replays the shipped transcripts (first reply flawed, second fixed) through `run_generation` with the
default verifier settings, then prints a table and writes JSON (date, machine, device, versions, per-run
figures) plus each run's trace under the output folder (default `bench/results/`).

    python bench/gpu_loop.py [--out DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

from agent.context import Budgets
from agent.providers import ScriptedProvider
from agent.run import GenerationRequest, run_generation
from kernelwright.domain import Problem, Target
from kernelwright.settings import Settings
from sandbox.toolchains import find_nvcc, find_ptxas

ROOT = Path(__file__).resolve().parent.parent
CASES = [
    ("relu", Target.PTX, "relu_ptx.json"),
    ("relu", Target.CUDA, "relu_cuda.json"),
    ("softmax", Target.TRITON, "softmax_triton.json"),
]


def _gpu() -> str:
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return "none"
    query = [smi, "--query-gpu=name,driver_version,compute_cap", "--format=csv,noheader"]
    return subprocess.run(query, capture_output=True, text=True, check=False).stdout.strip()


def _versions(settings: Settings) -> dict[str, str | None]:
    found: dict[str, str | None] = {"python": platform.python_version()}
    for name in ("torch", "triton", "langgraph", "kernelwright"):
        try:
            found[name] = version(name)
        except Exception:  # noqa: BLE001 - a package that is not installed is reported as absent
            found[name] = None
    for tool in (find_ptxas(settings), find_nvcc(settings)):
        if tool is not None:
            found[tool.name] = tool.version
    return found


async def _case(settings: Settings, problem: str, target: Target, transcript: str) -> dict[str, Any]:
    provider = ScriptedProvider.from_transcript(ROOT / "examples" / "transcripts" / transcript)
    request = GenerationRequest(
        problem=Problem.from_file(ROOT / "examples" / "problems" / f"{problem}.py"),
        target=target,
        budgets=Budgets(max_turns=4),
    )
    started = time.monotonic()
    result = await run_generation(request, settings=settings, provider=provider)
    wall = time.monotonic() - started
    attempts = []
    for attempt in result.state.attempts:
        verdict = attempt.verdict
        attempts.append(
            {
                "turn": attempt.turn,
                "outcome": attempt.outcome.value,
                "compile_s": attempt.compile.duration_s if attempt.compile else None,
                "toolchain": attempt.compile.toolchain if attempt.compile else None,
                "diagnostics": [d.render() for d in attempt.diagnostics][:5],
                "verify_s": verdict.duration_s if verdict else None,
                "candidate_ms": verdict.candidate_timing.median_ms
                if verdict and verdict.candidate_timing
                else None,
                "eager_ms": verdict.eager_timing.median_ms if verdict and verdict.eager_timing else None,
                "speedup_vs_eager": verdict.speedup_vs_eager if verdict else None,
                "max_abs_error": max((d.max_abs_error or 0.0 for d in verdict.draws), default=None)
                if verdict
                else None,
                "device": verdict.device if verdict else None,
            }
        )
    return {
        "problem": problem,
        "target": target.value,
        "transcript": transcript,
        "run_id": result.run_id,
        "status": result.state.status.value,
        "reason": result.state.stop_reason,
        "wall_s": wall,
        "attempts": attempts,
        "trace": result.trace_path,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    home = Path(tempfile.mkdtemp(prefix="kw-bench-"))
    settings = Settings(_env_file=None, home=home)
    runs = [asyncio.run(_case(settings, *case)) for case in CASES]
    stamp = datetime.now(UTC)
    for run in runs:
        trace = Path(run.pop("trace"))
        name = f"trace-{run['problem']}-{run['target']}.jsonl"
        shutil.copy(trace, args.out / name)
        run["trace_file"] = name
    report = {
        "benchmark": "gpu_loop",
        "date": stamp.isoformat(),
        "machine": platform.node(),
        "platform": platform.platform(),
        "gpu": _gpu(),
        "versions": _versions(settings),
        "settings": {
            "draws": settings.correctness_draws,
            "trials": settings.timing_trials,
            "warmup": settings.timing_warmup,
        },
        "runs": runs,
    }
    path = args.out / f"gpu_loop-{stamp.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(report, indent=1, default=str))
    print(
        f"{'problem':10} {'target':7} {'status':20} {'turns':>5} {'compile s':>9} {'verify s':>8} "
        f"{'kernel ms':>9} {'eager ms':>9} {'speedup':>8}"
    )
    for run in runs:
        last = run["attempts"][-1] if run["attempts"] else {}

        def fmt(value: Any, spec: str) -> str:
            return format(value, spec) if isinstance(value, float) else "-"

        print(
            f"{run['problem']:10} {run['target']:7} {run['status']:20} {len(run['attempts']):>5} "
            f"{fmt(last.get('compile_s'), '9.3f')} {fmt(last.get('verify_s'), '8.1f')} "
            f"{fmt(last.get('candidate_ms'), '9.4f')} {fmt(last.get('eager_ms'), '9.4f')} "
            f"{fmt(last.get('speedup_vs_eager'), '8.3f')}"
        )
    print(f"wrote {path}")
    return 0 if all(r["status"] == "succeeded" for r in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
