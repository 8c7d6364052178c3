"""Throughput of N candidates through both runners, on 1 slot and (where there are two) 2 slots.

A slot is a GPU on a GPU host and a CPU slot (a declared logical GPU, for Ray) elsewhere. Each
configuration starts its runner (timed separately: a service pays it once), then evaluates the same
N jobs (the softmax problem of examples/ with its honest Triton kernel, one distinct key per job; the
result store is off so every job really runs) and records wall time, jobs per second, the per-job
verify time, the outcomes, and the scaling of 2 slots over 1. The Ray rows are skipped, with a note,
where `import ray` fails (the GPU device has no Ray of its own: scripts/device_ray_bundle.sh builds a
pruned one to carry there).

    PYTHONPATH=. python bench/runner_throughput.py [--jobs 8] [--runners inprocess,ray] [--out DIR]

Writes bench/results/runner_throughput-<stamp>.json and prints a table.
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
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from kernelwright.domain import Candidate, Problem, Target
from kernelwright.logs import configure_logging
from kernelwright.settings import Settings
from sandbox.leases import discover_slots
from sandbox.runner import EvalJob, InProcessRunner, Runner
from sandbox.toolchains import detect_gpu_arch
from sandbox.verify import VerifyOptions

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Row:
    runner: str
    slots: int
    jobs: int
    start_s: float = 0.0
    wall_s: float = 0.0
    jobs_per_s: float = 0.0
    verify_median_s: float | None = None
    outcomes: dict[str, int] = field(default_factory=dict)
    # median seconds per verification phase: where a job's time grows when slots run side by side
    phases_median_s: dict[str, float] = field(default_factory=dict)
    events: list[str] = field(default_factory=list)
    error: str | None = None


def _versions() -> dict[str, str | None]:
    found: dict[str, str | None] = {"python": platform.python_version()}
    for name in ("torch", "triton", "ray", "kernelwright"):
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = None
    return found


def _gpu_name() -> str | None:
    from sandbox.result_store import gpu_model

    name = gpu_model()
    return None if name == "cpu" else name


def _jobs(count: int, gpu: bool) -> list[EvalJob]:
    problem = Problem.from_file(ROOT / "examples" / "problems" / "softmax.py")
    source = (ROOT / "examples" / "kernels" / "softmax_triton.py").read_text()
    options = VerifyOptions(
        draws=3, timing_trials=20 if gpu else 0, timing_warmup=3, timeout_s=120, compile_baseline=False
    )
    candidate = Candidate(target=Target.TRITON, source=source)
    return [EvalJob(f"softmax-{index}", problem, candidate, options) for index in range(count)]


def _settings(home: Path, slots: int, gpus: list[str]) -> Settings:
    declared = [int(g) for g in gpus[:slots]] if gpus and all(g.isdigit() for g in gpus) else None
    return Settings(
        _env_file=None,
        home=home,
        result_store=False,
        cpu_slots=slots,
        gpus=declared,
        runner_health_interval_s=3600.0,
    )


async def _measure(kind: str, slots: int, jobs: list[EvalJob], settings: Settings) -> Row:
    row = Row(kind, slots, len(jobs))
    runner: Runner
    began = time.monotonic()
    if kind == "ray":
        from sandbox.ray_runner import RayRunner

        runner = RayRunner(settings, workers=slots)
        await runner.start()
    else:
        in_process = InProcessRunner(settings, slots=discover_slots(settings)[:slots])
        await in_process.start()
        runner = in_process
    row.start_s = time.monotonic() - began
    try:
        began = time.monotonic()
        verdicts = await runner.run_all(jobs)
        row.wall_s = time.monotonic() - began
    finally:
        await runner.aclose()
    row.jobs_per_s = len(jobs) / row.wall_s if row.wall_s > 0 else 0.0
    row.verify_median_s = statistics.median(v.duration_s for v in verdicts.values())
    row.outcomes = dict(Counter(v.outcome.value for v in verdicts.values()))
    names = sorted({name for v in verdicts.values() for name in v.phases_s})
    row.phases_median_s = {
        name: round(statistics.median(v.phases_s.get(name, 0.0) for v in verdicts.values()), 4)
        for name in names
    }
    row.events = [f"{e.kind}:{e.slot}" for e in runner.events if e.kind != "actor_started"]
    return row


def _table(rows: list[Row]) -> list[str]:
    lines = [
        f"{'runner':<10} {'slots':>5} {'jobs':>4} {'start s':>8} {'wall s':>8} {'jobs/s':>7} "
        f"{'verify s':>9}  outcomes"
    ]
    for r in rows:
        if r.error:
            lines.append(f"{r.runner:<10} {r.slots:>5} {r.jobs:>4}  error: {r.error}")
            continue
        median = f"{r.verify_median_s:.2f}" if r.verify_median_s is not None else "-"
        lines.append(
            f"{r.runner:<10} {r.slots:>5} {r.jobs:>4} {r.start_s:>8.2f} {r.wall_s:>8.2f} "
            f"{r.jobs_per_s:>7.3f} {median:>9}  {r.outcomes}"
        )
    return lines


def _scaling(rows: list[Row]) -> dict[str, float]:
    ratios = {}
    for kind in ("inprocess", "ray"):
        by_slots = {r.slots: r for r in rows if r.runner == kind and not r.error}
        if 1 in by_slots and 2 in by_slots and by_slots[1].jobs_per_s > 0:
            ratios[kind] = by_slots[2].jobs_per_s / by_slots[1].jobs_per_s
    return ratios


async def _run(args: argparse.Namespace) -> int:
    configure_logging("WARNING")
    gpu = detect_gpu_arch() is not None
    gpus = [s.device for s in discover_slots(Settings(_env_file=None)) if s.device is not None]
    available = len(gpus) if gpu else 2  # CPU: two logical slots
    notes: list[str] = []
    kinds = [k.strip() for k in args.runners.split(",") if k.strip()]
    if "ray" in kinds:
        try:
            import ray  # noqa: F401
        except ImportError as exc:
            kinds.remove("ray")
            notes.append(f"ray rows skipped: `import ray` failed here ({exc})")
    if available < 2:
        notes.append(f"2-slot rows skipped: {available} GPU visible")
    jobs = _jobs(args.jobs, gpu)
    load_before = os.getloadavg()  # a shared machine's load skews every figure: record it
    rows: list[Row] = []
    stamp = datetime.now(UTC)
    for kind in kinds:
        for slots in (1, 2):
            if slots > available:
                continue
            with tempfile.TemporaryDirectory(prefix="kw-throughput-") as home:
                try:
                    rows.append(await _measure(kind, slots, jobs, _settings(Path(home), slots, gpus)))
                except Exception as exc:  # noqa: BLE001 - one failed configuration must not lose the others
                    rows.append(Row(kind, slots, len(jobs), error=f"{type(exc).__name__}: {exc}"))
            print("\n".join(_table(rows[-1:])[1:]), flush=True)
    report: dict[str, Any] = {
        "bench": "runner_throughput",
        "date": stamp.isoformat(),
        "machine": {
            "host": platform.node(),
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "gpu": _gpu_name(),
            "gpus_visible": len(gpus),
            "load_avg_1_5_15_before": load_before,
            "load_avg_1_5_15_after": os.getloadavg(),
        },
        "versions": _versions(),
        "config": {
            "jobs": args.jobs,
            "problem": "examples/problems/softmax.py (64x1000 fp32)",
            "candidate": "examples/kernels/softmax_triton.py",
            "verify": asdict(jobs[0].options) if jobs and jobs[0].options else None,
            "slot": "GPU" if gpu else "CPU slot (Triton interpreter; Ray: one declared logical GPU each)",
        },
        "rows": [asdict(r) for r in rows],
        "scaling_2_over_1": _scaling(rows),
        "notes": notes,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"runner_throughput-{stamp.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps(report, indent=1, default=str) + "\n")
    print("\n".join(_table(rows)))
    print(f"scaling (2 slots / 1 slot throughput): {report['scaling_2_over_1']}")
    for note in notes:
        print(f"note: {note}")
    print(f"report: {path}")
    return 0 if rows and not any(r.error for r in rows) else 1


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--jobs", type=int, default=8, help="candidates per configuration")
    parser.add_argument("--runners", default="inprocess,ray", help="comma-separated: inprocess, ray")
    parser.add_argument(
        "--out", type=Path, default=ROOT / "bench" / "results", help="folder of the JSON report"
    )
    return asyncio.run(_run(parser.parse_args()))


if __name__ == "__main__":
    sys.exit(main())
