"""Time to verdict per candidate (issue 3's speed goal) over KernelBench level-1 problems.

For every problem with hand-written candidates in `bench/kernels/kb_l1/` (`<id>_<name>_{ptx,cuda}.py`,
plus the `_inline.py` twin built with torch's `load_inline`), this measures what a user waits for:

- cold: `evaluate_candidate` end to end (static checks, compile, verification with the default
  correctness draws and timing trials) in a fresh KERNELWRIGHT home, so the result store and the kernel
  cache start empty;
- from the store: the same call again in the same home, which must be answered from the result store;
- inline: the `load_inline` twin through the same verifier in a fresh home, the way KernelBench-style
  harnesses build kernels (a torch extension per candidate). There is nothing to compile ahead of
  time (the extension builds inside the worker), so the twin goes straight to `verify_candidate`; what
  the static checks said (a `check.extension_build` warning) is recorded with the row.

One executor (`make_executor`: warm zygote forks by default) serves the whole run; its start is timed
once, separately, because a service pays it once. Each candidate's failure is recorded as a row and the
run goes on; the JSON report is rewritten after every problem, so a cut-off run still leaves results.

    PYTHONPATH=. python bench/verify_speed.py [--problems L1/19,L1/23] [--limit N] [--skip-inline]
        [--inline-limit N] [--out DIR] [--timeout S] [--dataset PATH.jsonl] [--no-compile-baseline]

Only the standard library and our own packages are imported here (the GPU machine runs it from the
repository with PYTHONPATH, no install step).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any, TypeVar

from kernelwright.domain import Candidate, CompileResult, Problem, Target, Verdict
from kernelwright.domain.problem import find_problem
from kernelwright.logs import configure_logging
from kernelwright.settings import Settings
from sandbox.evaluate import evaluate_candidate
from sandbox.executor import Executor, Limits, ProcessSpec
from sandbox.static_checks import blocking, check_candidate_source
from sandbox.toolchains import detect_gpu_arch, find_nvcc, find_ptxas
from sandbox.verify import VerifyOptions, verify_candidate, worker_env
from sandbox.zygote_executor import make_executor

ROOT = Path(__file__).resolve().parent.parent
KERNELS = ROOT / "bench" / "kernels" / "kb_l1"
DATASETS = (
    ROOT / "shared" / "kernelbench" / "kernelbench.jsonl",
    ROOT.parent / "shared" / "kernelbench" / "kernelbench.jsonl",
)
GOAL_COLD_S = 2.0
GOAL_STORE_S = 0.2
_FILE = re.compile(r"^(?P<id>\d+)_(?P<stem>\w+?)_(?P<kind>ptx|cuda|inline)\.py$")
_KINDS = ("ptx", "cuda", "inline")
_MESSAGE_LIMIT = 600
_T = TypeVar("_T")
# outcomes that say nothing about time to verdict: no GPU here, no toolchain, the bench itself broke
_UNMEASURED = frozenset({"no_gpu", "toolchain_missing", "bench_error", "not_run"})


@dataclasses.dataclass
class Row:
    """One candidate's measurements (one line of the table, one object of the JSON)."""

    problem: str
    name: str
    target: str  # ptx | cuda | inline
    file: str
    outcome: str = "not_run"
    message: str = ""
    compile_s: float | None = None
    verify_s: float | None = None
    total_s: float | None = None
    from_store_s: float | None = None
    from_store: bool | None = None
    from_store_outcome: str | None = None
    speedup_vs_eager: float | None = None
    speedup_vs_compile: float | None = None
    candidate_ms: float | None = None
    eager_ms: float | None = None
    compile_ms: float | None = None
    device: str | None = None
    static_findings: list[str] = dataclasses.field(default_factory=list)
    inline_total_s: float | None = None  # on the cuda row: its load_inline twin's cold total
    inline_ratio: float | None = None  # inline_total_s / total_s
    phases_s: dict[str, float] = dataclasses.field(default_factory=dict)  # verify time per phase
    speed_of_light_ms: float | None = None
    timing_trials: int | None = None


def _discover() -> dict[int, dict[str, Path]]:
    """Problem id -> {kind: file} for the candidate files in `bench/kernels/kb_l1/`."""
    found: dict[int, dict[str, Path]] = {}
    for path in sorted(KERNELS.glob("*.py")):
        match = _FILE.match(path.name)
        if match is not None:
            found.setdefault(int(match["id"]), {})[match["kind"]] = path
    return found


def _problem_id(key: str) -> int:
    """`L1/19`, `1/19` or `19` -> 19 (level 1 only: the candidates here are level-1 kernels)."""
    text = key.strip().removeprefix("L")
    level, _, pid = text.rpartition("/")
    if level not in ("", "1") or not pid.isdigit():
        raise SystemExit(f"--problems takes level-1 keys such as L1/19, not {key!r}")
    return int(pid)


def _dataset(arg: Path | None) -> Path:
    for path in (arg,) if arg is not None else DATASETS:
        if path is not None and path.is_file():
            return path
    where = arg if arg is not None else " or ".join(map(str, DATASETS))
    raise SystemExit(f"KernelBench dataset not found at {where}; pass --dataset PATH.jsonl")


def _gpu() -> str:
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return "none"
    query = [smi, "--query-gpu=name,driver_version,compute_cap,memory.total", "--format=csv,noheader"]
    try:
        done = subprocess.run(query, capture_output=True, text=True, check=False, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"nvidia-smi failed: {exc}"
    return done.stdout.strip() or done.stderr.strip()


def _versions(settings: Settings) -> dict[str, str | None]:
    found: dict[str, str | None] = {"python": platform.python_version()}
    for name in ("torch", "triton", "kernelwright"):
        try:
            found[name] = version(name)
        except Exception:  # noqa: BLE001 - a package that is not installed is reported as absent
            found[name] = None
    if found["kernelwright"] is None:  # run from the checkout with PYTHONPATH: no dist metadata
        with contextlib.suppress(Exception):
            import kernelwright

            found["kernelwright"] = str(getattr(kernelwright, "__version__", None))
    if found["torch"] is None:  # the worker's torch (the GPU image's own python) may lack dist metadata
        with contextlib.suppress(Exception):
            import torch

            found["torch"] = str(torch.__version__)
    for label, finder in (("ptxas", find_ptxas), ("nvcc", find_nvcc)):
        tool = finder(settings)
        found[label] = tool.version if tool is not None else None
    return found


def _fill(row: Row, compiled: CompileResult | None, verdict: Verdict) -> None:
    """Copy what the verdict and compile step say into the row."""
    row.outcome = verdict.outcome.value
    row.message = verdict.message[:_MESSAGE_LIMIT]
    row.compile_s = compiled.duration_s if compiled is not None else None
    row.verify_s = verdict.duration_s
    row.speedup_vs_eager = verdict.speedup_vs_eager
    row.speedup_vs_compile = verdict.speedup_vs_compile
    row.candidate_ms = verdict.candidate_timing.median_ms if verdict.candidate_timing else None
    row.eager_ms = verdict.eager_timing.median_ms if verdict.eager_timing else None
    row.compile_ms = verdict.compile_timing.median_ms if verdict.compile_timing else None
    row.device = verdict.device
    row.phases_s = dict(verdict.phases_s)
    row.speed_of_light_ms = verdict.speed_of_light_ms
    row.timing_trials = verdict.candidate_timing.trials if verdict.candidate_timing else None


async def _timed(call: Callable[[], Awaitable[_T]], limit: float) -> tuple[_T, float]:
    """`call()`'s result and its wall time, bounded by `limit` seconds."""
    started = time.perf_counter()
    result = await asyncio.wait_for(call(), limit)
    return result, time.perf_counter() - started


class Bench:
    """Holds the run's settings, executor and options; measures one candidate at a time."""

    def __init__(self, base: Settings, executor: Executor, options: VerifyOptions, work: Path) -> None:
        self.base = base
        self.executor = executor
        self.options = options
        self.work = work
        # the verifier's own timeouts bound each step; this only stops a wedged call from ending the run
        self.limit = 4 * options.timeout_s + 900.0
        self._homes = 0

    def fresh_settings(self, label: str) -> Settings:
        """Settings whose home is a new, empty folder: empty result store and kernel cache."""
        self._homes += 1
        home = self.work / f"{self._homes:03d}-{label}"
        settings = self.base.model_copy(update={"home": home})
        settings.ensure_dirs()
        return settings

    async def native(self, problem: Problem, target: Target, path: Path) -> Row:
        """Cold `evaluate_candidate`, then the same call again from the store."""
        row = Row(problem.key, problem.name, target.value, path.name)
        candidate = Candidate(target=target, source=path.read_text(encoding="utf-8"))
        settings = self.fresh_settings(f"{problem.key.replace('/', '_')}-{target.value}")
        try:
            (compiled, verdict), row.total_s = await _timed(
                lambda: evaluate_candidate(
                    problem, candidate, settings=settings, executor=self.executor, options=self.options
                ),
                self.limit,
            )
            _fill(row, compiled, verdict)
            (_, again), row.from_store_s = await _timed(
                lambda: evaluate_candidate(
                    problem, candidate, settings=settings, executor=self.executor, options=self.options
                ),
                self.limit,
            )
            row.from_store = again.from_store
            row.from_store_outcome = again.outcome.value
        except Exception as exc:  # noqa: BLE001 - one broken candidate must not end the run
            row.outcome = "bench_error"
            row.message = f"{exc!r}\n{traceback.format_exc()}"[-_MESSAGE_LIMIT:]
        finally:
            shutil.rmtree(settings.home, ignore_errors=True)
        return row

    async def inline(self, problem: Problem, path: Path) -> Row:
        """The load_inline twin, cold, through `verify_candidate` (static checks and pre-compile skipped)."""
        row = Row(problem.key, problem.name, "inline", path.name)
        source = path.read_text(encoding="utf-8")
        findings = check_candidate_source(source, Target.CUDA)
        row.static_findings = sorted(
            {f"{d.code} ({'blocking' if d in blocking(findings) else 'advisory'})" for d in findings}
        )
        candidate = Candidate(target=Target.CUDA, source=source)
        settings = self.fresh_settings(f"{problem.key.replace('/', '_')}-inline")
        try:
            verdict, row.total_s = await _timed(
                lambda: verify_candidate(
                    problem, candidate, settings=settings, executor=self.executor, options=self.options
                ),
                self.limit,
            )
            _fill(row, None, verdict)
        except Exception as exc:  # noqa: BLE001 - one broken candidate must not end the run
            row.outcome = "bench_error"
            row.message = f"{exc!r}\n{traceback.format_exc()}"[-_MESSAGE_LIMIT:]
        finally:
            shutil.rmtree(settings.home, ignore_errors=True)
        return row

    async def start_executor(self) -> float:
        """Seconds to get the first worker (for the zygote executor: the zygote's start, paid once)."""
        scratch = self.base.scratch_dir / "bench-start"
        scratch.mkdir(parents=True, exist_ok=True)
        gpu = detect_gpu_arch() is not None
        argv = [self.base.worker_python or sys.executable, "-s", "-m", "sandbox.runtime.worker", "reference"]
        spec = ProcessSpec(argv, scratch, worker_env(self.base, scratch, None, gpu), Limits())
        started = time.perf_counter()
        worker = await self.executor.spawn(spec)
        elapsed = time.perf_counter() - started
        await worker.close()
        return elapsed


def _median(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def _measured(row: Row) -> bool:
    """Rows whose time is a real time to verdict (not a GPU-less or broken run's)."""
    return row.total_s is not None and row.outcome not in _UNMEASURED


def _summary(rows: list[Row]) -> dict[str, Any]:
    """Medians per target (over all rows measured, and over correct ones), and the inline ratio."""
    out: dict[str, Any] = {"goal_cold_s": GOAL_COLD_S, "goal_from_store_s": GOAL_STORE_S}
    for target in ("ptx", "cuda", "inline"):
        mine = [r for r in rows if r.target == target and _measured(r)]
        correct = [r for r in mine if r.outcome == "correct"]
        entry: dict[str, Any] = {
            "candidates": len(mine),
            "correct": len(correct),
            "median_cold_s": _median([r.total_s for r in mine]),
            "median_cold_s_correct": _median([r.total_s for r in correct]),
            "max_cold_s": max((r.total_s for r in mine if r.total_s is not None), default=None),
        }
        if target != "inline":
            entry["median_from_store_s"] = _median([r.from_store_s for r in mine])
            entry["served_from_store"] = sum(1 for r in mine if r.from_store)
        out[target] = entry
    native = [r for r in rows if r.target in ("ptx", "cuda") and _measured(r)]
    cold = _median([r.total_s for r in native])
    store = _median([r.from_store_s for r in native if r.from_store])
    out["median_cold_s"] = cold
    out["median_from_store_s"] = store
    out["median_inline_ratio"] = _median([r.inline_ratio for r in rows if r.target == "cuda"])
    out["meets_cold_goal"] = (
        None
        if cold is None
        else all(
            (out[t]["median_cold_s"] or 0.0) <= GOAL_COLD_S for t in ("ptx", "cuda") if out[t]["candidates"]
        )
    )
    out["meets_store_goal"] = None if store is None else store <= GOAL_STORE_S
    outcomes: dict[str, int] = {}
    for row in rows:
        outcomes[f"{row.target}:{row.outcome}"] = outcomes.get(f"{row.target}:{row.outcome}", 0) + 1
    out["outcomes"] = outcomes
    return out


def _fmt(value: Any, spec: str) -> str:
    return format(value, spec) if isinstance(value, int | float) and not isinstance(value, bool) else "-"


def _line(row: Row) -> str:
    store = "" if row.from_store is None else ("S" if row.from_store else "x")
    return (
        f"{row.problem:7} {row.name[:34]:34} {row.target:6} {row.outcome:16} {_fmt(row.compile_s, '8.3f')} "
        f"{_fmt(row.total_s, '8.2f')} {_fmt(row.from_store_s, '7.3f')}{store:1} "
        f"{_fmt(row.speedup_vs_eager, '7.3f')} {_fmt(row.speedup_vs_compile, '7.3f')} "
        f"{_fmt(row.inline_total_s, '8.2f')} {_fmt(row.inline_ratio, '6.1f')}"
    )


HEADER = (
    f"{'problem':7} {'name':34} {'target':6} {'outcome':16} {'compile':>8} {'total s':>8} {'store s':>7}  "
    f"{'x eager':>7} {'x comp':>7} {'inline s':>8} {'ratio':>6}"
)


def _summary_lines(summary: dict[str, Any]) -> list[str]:
    """The summary as the closing lines of the console output."""
    lines = []
    for target in ("ptx", "cuda", "inline"):
        entry = summary[target]
        line = (
            f"{target:6}: {entry['candidates']} candidates, {entry['correct']} correct; median cold "
            f"{_fmt(entry['median_cold_s'], '.2f')} s "
            f"(correct only {_fmt(entry['median_cold_s_correct'], '.2f')})"
        )
        if target != "inline":
            line += (
                f", median from store {_fmt(entry['median_from_store_s'], '.3f')} s "
                f"({entry['served_from_store']} served from the store)"
            )
        lines.append(line)
    lines.append(
        f"goal: median cold <= {GOAL_COLD_S} s for ptx and cuda: {summary['meets_cold_goal']}; "
        f"median from store <= {GOAL_STORE_S} s: {summary['meets_store_goal']} "
        f"({_fmt(summary['median_from_store_s'], '.3f')} s); "
        f"median inline/ours ratio: {_fmt(summary['median_inline_ratio'], '.1f')}"
    )
    return lines


def _write(path: Path, report: dict[str, Any], rows: list[Row]) -> None:
    report["rows"] = [dataclasses.asdict(r) for r in rows]
    report["summary"] = _summary(rows)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(report, indent=1, default=str))
    tmp.replace(path)


async def _run(args: argparse.Namespace) -> int:
    dataset = _dataset(args.dataset)
    found = _discover()
    ids = [_problem_id(k) for k in args.problems.split(",")] if args.problems else sorted(found)
    missing = [i for i in ids if i not in found]
    if missing:
        raise SystemExit(f"no candidates in {KERNELS} for L1/{', L1/'.join(map(str, missing))}")
    if args.limit is not None:
        ids = ids[: args.limit]
    work = Path(tempfile.mkdtemp(prefix="kw-verify-speed-", dir=args.work))
    # Harness caches (GPU peaks for the speed-of-light bound, torch.compile of the baselines) belong to the
    # machine, not to a candidate: every fresh home shares one, as a service's runs would.
    base = Settings(_env_file=None, home=work / "run", harness_cache=work / "harness-cache")
    if args.timeout is not None:
        base = base.model_copy(update={"verify_timeout_s": args.timeout})
    base.ensure_dirs()
    configure_logging(base.log_level, base.log_format)  # default WARNING: keeps the table readable
    options = dataclasses.replace(
        VerifyOptions.from_settings(base),
        compile_baseline=base.compile_baseline and not args.no_compile_baseline,
    )
    stamp = datetime.now(UTC)
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"verify_speed-{stamp.strftime('%Y%m%d-%H%M%S')}.json"
    report: dict[str, Any] = {
        "benchmark": "verify_speed",
        "date": stamp.isoformat(),
        "machine": {"host": platform.node(), "platform": platform.platform(), "python": sys.executable},
        "gpu": _gpu(),
        "gpu_arch": detect_gpu_arch(),
        "versions": _versions(base),
        "settings": {
            "executor": base.executor,
            "device": base.device,
            "draws": options.draws,
            "timing_trials": options.timing_trials,
            "timing_warmup": options.timing_warmup,
            "timeout_s": options.timeout_s,
            "compile_baseline": options.compile_baseline,
            "result_store": base.result_store,
            "dataset": str(dataset),
            "problems": [f"L1/{i}" for i in ids],
            "skip_inline": args.skip_inline,
            "inline_limit": args.inline_limit,
            "timing_budget_s": options.timing_budget_s,
            "min_timing_trials": options.min_timing_trials,
            "speed_of_light_slack": options.speed_of_light_slack,
        },
        "notes": [
            "cold: evaluate_candidate in a fresh KERNELWRIGHT home (empty result store and kernel cache); "
            "the executor (zygote) is shared by the whole run and its start is timed once (executor_start_s)",
            "from_store: the same evaluate_candidate again in the same home; from_store says whether the "
            "result store answered (no_gpu/infrastructure/timeout verdicts are never stored)",
            "inline: the load_inline twin through verify_candidate in a fresh home, static checks and the "
            "up-front compile skipped (it builds in the worker); inline_ratio = its total / the cuda "
            "candidate's cold total",
            "harness caches (measured GPU peaks, torch.compile of baselines) are shared by every fresh "
            "home: they belong to the machine; phases_s splits verify_s; timing stops by the timing "
            "budget (timing_budget_s) once every variant has min_timing_trials",
        ],
    }
    executor = make_executor(base)
    bench = Bench(base, executor, options, work)
    rows: list[Row] = []
    # a load_inline build takes about a minute: --inline-limit keeps a full run inside a device lease
    inline_left = args.inline_limit if args.inline_limit is not None else len(ids)
    try:
        try:
            report["executor_start_s"] = await bench.start_executor()
        except Exception as exc:  # noqa: BLE001 - reported; the candidates' own rows will show the damage
            report["executor_start_s"] = None
            report["executor_start_error"] = repr(exc)
        print(f"executor start (one-off): {_fmt(report['executor_start_s'], '.2f')} s", flush=True)
        print(HEADER, flush=True)
        for pid in ids:
            files = found[pid]
            try:
                problem = find_problem(f"{dataset}#L1/{pid}")
            except Exception as exc:  # noqa: BLE001 - a problem that cannot load is one row, not the end
                rows.append(Row(f"L1/{pid}", "?", "-", "-", outcome="bench_error", message=repr(exc)))
                print(_line(rows[-1]), flush=True)
                continue
            cuda_row: Row | None = None
            for kind in _KINDS:
                file = files.get(kind)
                if file is None or (kind == "inline" and (args.skip_inline or inline_left <= 0)):
                    continue
                if kind == "inline":
                    inline_left -= 1
                    row = await bench.inline(problem, file)
                    if cuda_row is not None and _measured(cuda_row) and _measured(row):
                        cuda_row.inline_total_s = row.total_s
                        cuda_row.inline_ratio = (row.total_s or 0.0) / (cuda_row.total_s or 1.0)
                else:
                    row = await bench.native(problem, Target(kind), file)
                    if kind == "cuda":
                        cuda_row = row
                rows.append(row)
                print(_line(row), flush=True)
                if row.outcome not in ("correct", "no_gpu"):
                    print(
                        f"        {row.message.strip().splitlines()[0][:200] if row.message else ''}",
                        flush=True,
                    )
            if cuda_row is not None and cuda_row.inline_ratio is not None:
                print(f"        inline/cuda ratio {cuda_row.inline_ratio:.1f}", flush=True)
            _write(path, report, rows)
    finally:
        with contextlib.suppress(Exception):
            await executor.aclose()
        shutil.rmtree(work, ignore_errors=True)
    _write(path, report, rows)
    for line in _summary_lines(report["summary"]):
        print(line, flush=True)
    print(f"wrote {path}", flush=True)
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--problems", help="comma-separated level-1 keys (L1/19,L1/23); default: all with kernels"
    )
    parser.add_argument("--limit", type=int, help="only the first N problems")
    parser.add_argument(
        "--skip-inline", action="store_true", help="do not build and verify the load_inline twins"
    )
    parser.add_argument(
        "--inline-limit", type=int, help="build load_inline twins for the first N problems only"
    )
    parser.add_argument(
        "--out", type=Path, default=ROOT / "bench" / "results", help="folder of the JSON report"
    )
    parser.add_argument(
        "--timeout", type=float, help="verification timeout per candidate, seconds (default: settings)"
    )
    parser.add_argument(
        "--dataset", type=Path, help="KernelBench JSONL (default: shared/kernelbench/kernelbench.jsonl)"
    )
    parser.add_argument(
        "--no-compile-baseline",
        action="store_true",
        help="do not time torch.compile of the reference (Inductor compiles inside every cold verdict)",
    )
    parser.add_argument(
        "--work", type=Path, help="folder for the per-measurement homes (default: the system temp)"
    )
    args = parser.parse_args()
    return asyncio.run(_run(args))


if __name__ == "__main__":
    sys.exit(main())
