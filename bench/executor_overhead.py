"""Per-candidate overhead of each executor backend, next to a trivial candidate's own run time.

    python bench/executor_overhead.py [--repeats 5] [--backends local,zygote,docker]

For each backend: the time from `spawn` to the worker's first answer (process start, zygote fork or
container create+start, plus the worker's imports) and `close`, then a whole verification of a trivial
Triton candidate (CPU interpreter, 2 draws: a reference and a candidate worker). Prints a table and
writes JSON under bench/results/ (date, machine, versions).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import torch

from kernelwright.domain import Candidate, Outcome, Problem, Target
from kernelwright.settings import Settings
from sandbox.executor import Limits, ProcessSpec
from sandbox.verify import VerifyOptions, verify_candidate, worker_env
from sandbox.zygote_executor import make_executor

RESULTS = Path(__file__).resolve().parent / "results"
PROBLEM = """import torch
class Model(torch.nn.Module):
    def forward(self, x):
        return x * 2.0
def get_inputs():
    return [torch.randn(8, 100)]
def get_init_inputs():
    return []
"""
CANDIDATE = """import torch, triton
import triton.language as tl

@triton.jit
def twice(x_ptr, y_ptr, n, BLOCK: tl.constexpr):
    offs = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < n
    tl.store(y_ptr + offs, tl.load(x_ptr + offs, mask=mask) * 2.0, mask=mask)

class ModelNew(torch.nn.Module):
    def forward(self, x):
        x = x.contiguous()
        y = torch.empty_like(x)
        twice[(triton.cdiv(x.numel(), 256),)](x, y, x.numel(), BLOCK=256)
        return y
"""


async def measure(settings: Settings, repeats: int) -> dict[str, object]:
    settings.ensure_dirs()
    executor = make_executor(settings)
    spawn_s: list[float] = []
    verify_s: list[float] = []
    try:
        for _ in range(repeats):
            cwd = settings.scratch_dir / f"bench-{time.monotonic_ns()}"
            cwd.mkdir(parents=True)
            argv = [sys.executable, "-s", "-m", "sandbox.runtime.worker", "nonsense"]
            spec = ProcessSpec(argv, cwd, worker_env(settings, cwd, None, False), Limits())
            started = time.perf_counter()
            worker = await executor.spawn(spec)
            await worker.receive(300)  # the usage error: the worker is up and speaking
            await worker.close()
            spawn_s.append(time.perf_counter() - started)
        options = VerifyOptions(draws=2, timing_trials=0, timeout_s=300, device="cpu")
        problem = Problem(name="twice", source=PROBLEM)
        for _ in range(repeats):
            started = time.perf_counter()
            verdict = await verify_candidate(
                problem,
                Candidate(target=Target.TRITON, source=CANDIDATE),
                settings=settings,
                executor=executor,
                options=options,
            )
            verify_s.append(time.perf_counter() - started)
            assert verdict.outcome == Outcome.CORRECT, verdict.message
    finally:
        await executor.aclose()
    return {
        "spawn_to_first_answer_s": {"median": statistics.median(spawn_s), "all": spawn_s},
        "verify_trivial_candidate_s": {"median": statistics.median(verify_s), "all": verify_s},
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--backends", default="local,zygote,docker")
    args = parser.parse_args()
    rows: dict[str, object] = {}
    with tempfile.TemporaryDirectory(prefix="kw-bench-") as home:
        for backend in args.backends.split(","):
            settings = Settings(_env_file=None, home=Path(home) / backend, executor=backend, device="cpu")
            rows[backend] = asyncio.run(measure(settings, args.repeats))
    print(f"{'backend':<8} {'spawn->answer (s)':>18} {'verify trivial (s)':>19}")
    for backend, row in rows.items():
        assert isinstance(row, dict)
        print(
            f"{backend:<8} {row['spawn_to_first_answer_s']['median']:>18.3f} "
            f"{row['verify_trivial_candidate_s']['median']:>19.3f}"
        )
    stamp = datetime.now(UTC)
    record = {
        "date": stamp.isoformat(timespec="seconds"),
        "machine": {
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
        },
        "versions": {"torch": torch.__version__, "docker_image": os.environ.get("KERNELWRIGHT_DOCKER_IMAGE")},
        "repeats": args.repeats,
        "note": "verify = reference + candidate workers, 2 draws, CPU (Triton interpreter); spawn = start to "
        "the worker's first protocol message, then close",
        "results": rows,
    }
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"executor_overhead_{stamp:%Y%m%d}.json"
    out.write_text(json.dumps(record, indent=2) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
