"""Load bench of the REST service: N concurrent clients submitting jobs and polling them for a while.

Starts `kernelwright serve` with its embedded defaults (SQLite, zygote executor, two run slots) in a
temp home, creates a key, then runs `--clients` asyncio clients (httpx) for `--seconds`: each submits a
job (scripted provider), polls its status until it ends (or `--polls` times), and submits the next.
Reports p50/p99 latency of submit and of status, the error count and the server's peak memory, as a
table and as JSON under bench/results/.

Default jobs are light: one scripted reply without a code block, so a job runs retrieve → propose →
check → record and no sandbox worker; this measures the service, not the verifier. `--kernel` uses
the softmax transcript instead (each job then compiles and verifies twice in sandboxed workers).

    python bench/api_load.py --clients 100 --seconds 60
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench" / "results"
TERMINAL = {"succeeded", "compiled_unverified", "budget_exhausted", "failed", "cancelled"}
LIGHT_REPLY = "I would write a Triton kernel with one program per row, but I need the shapes first."


@dataclass
class Tally:
    submit_s: list[float] = field(default_factory=list)
    status_s: list[float] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)
    finished: int = 0

    def error(self, what: str) -> None:
        self.errors[what] = self.errors.get(what, 0) + 1


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _job(kernel: bool) -> dict[str, Any]:
    problem = (REPO / "examples" / "problems" / "softmax.py").read_text()
    if kernel:
        data = json.loads((REPO / "examples" / "transcripts" / "softmax_triton.json").read_text())
        replies = [r["text"] for r in data["replies"]]
    else:
        replies = [LIGHT_REPLY]
    return {
        "problem": {"source": problem, "name": "softmax"},
        "target": "triton",
        "provider": {"name": "scripted", "replies": replies},
        "budgets": {"max_turns": len(replies)},
    }


async def _client(
    base: str, token: str, body: dict[str, Any], until: float, polls: int, tally: Tally
) -> None:
    auth = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=base, headers=auth, timeout=60) as client:
        while time.monotonic() < until:
            started = time.perf_counter()
            try:
                response = await client.post("/jobs", json=body)
            except httpx.HTTPError as exc:
                tally.error(f"submit {type(exc).__name__}")
                continue
            tally.submit_s.append(time.perf_counter() - started)
            if response.status_code != 201:
                tally.error(f"submit HTTP {response.status_code}")
                continue
            job_id = response.json()["id"]
            for _ in range(polls):
                await asyncio.sleep(0.5)
                if time.monotonic() >= until:
                    break
                started = time.perf_counter()
                try:
                    status = await client.get(f"/jobs/{job_id}")
                except httpx.HTTPError as exc:
                    tally.error(f"status {type(exc).__name__}")
                    continue
                tally.status_s.append(time.perf_counter() - started)
                if status.status_code != 200:
                    tally.error(f"status HTTP {status.status_code}")
                elif status.json()["status"] in TERMINAL:
                    tally.finished += 1
                    break


def _rss_kb(pid: int, field_name: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field_name + ":"):
                return int(line.split()[1])
    except OSError:
        return 0
    return 0


def _descendants(pid: int) -> list[int]:
    out: list[int] = []
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return out
    for child in map(int, children):
        out += [child, *_descendants(child)]
    return out


def _pct(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def _machine() -> dict[str, Any]:
    cpu = "unknown"
    with contextlib.suppress(OSError, StopIteration):
        cpu = next(
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        )
    return {
        "platform": platform.platform(),
        "cpu": cpu,
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--polls", type=int, default=20, help="status polls per job at most (0.5 s apart)")
    parser.add_argument("--kernel", action="store_true", help="jobs that compile and verify a real kernel")
    parser.add_argument("--output", type=Path, default=None)
    args = parser.parse_args()

    home = Path(tempfile.mkdtemp(prefix="kw-load-")) / "home"
    home.mkdir(parents=True)
    port = _free_port()
    env = {
        **os.environ,
        "KERNELWRIGHT_HOME": str(home),
        "KERNELWRIGHT_RATE_LIMIT_PER_MINUTE": "1000000",  # the bench measures latency, not the limiter
        "KERNELWRIGHT_LOG_LEVEL": "WARNING",
    }
    log = (home.parent / "server.log").open("wb")
    server = subprocess.Popen(
        [sys.executable, "-m", "api", "serve", "--port", str(port)],
        cwd=home.parent,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline or server.poll() is not None:
                raise SystemExit(f"server did not start; see {home.parent / 'server.log'}")
            time.sleep(0.2)
        key = subprocess.run(
            [sys.executable, "-m", "api", "keys", "create", "bench", "--format", "json"],
            cwd=home.parent,
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        token = json.loads(key.stdout)["token"]
        idle_rss_kb = _rss_kb(server.pid, "VmRSS")
        tally = Tally()
        body = _job(args.kernel)

        async def run_all() -> None:
            until = time.monotonic() + args.seconds
            await asyncio.gather(
                *(_client(base, token, body, until, args.polls, tally) for _ in range(args.clients))
            )

        load_before = os.getloadavg()[0]  # other work on the machine skews latencies: recorded with them
        started = time.monotonic()
        asyncio.run(run_all())
        elapsed = time.monotonic() - started
        peak_kb = _rss_kb(server.pid, "VmHWM")
        workers_kb = sum(_rss_kb(p, "VmRSS") for p in _descendants(server.pid))
        metrics = httpx.get(f"{base}/metrics", timeout=30).text
        queue = next(
            (
                float(line.split()[-1])
                for line in metrics.splitlines()
                if line.startswith("kernelwright_queue_depth ")
            ),
            None,
        )
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            server.kill()

    result = {
        "bench": "api_load",
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": _machine(),
        "versions": {
            name: version(name)
            for name in ("kernelwright", "fastapi", "uvicorn", "sqlalchemy", "httpx", "langgraph")
        },
        "parameters": {
            "clients": args.clients,
            "seconds": args.seconds,
            "polls_per_job": args.polls,
            "jobs": "kernel (softmax transcript, sandboxed verification)"
            if args.kernel
            else "light (no code)",
            "database": "sqlite (embedded default)",
            "job_concurrency": 2,
        },
        "load_average_before_after": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        "elapsed_s": round(elapsed, 1),
        "submits": len(tally.submit_s),
        "status_polls": len(tally.status_s),
        "jobs_seen_finished": tally.finished,
        "queue_depth_at_end": queue,
        "submit_ms": {
            "p50": _pct(tally.submit_s, 0.5),
            "p99": _pct(tally.submit_s, 0.99),
            "mean": statistics.fmean(tally.submit_s) * 1000 if tally.submit_s else None,
        },
        "status_ms": {
            "p50": _pct(tally.status_s, 0.5),
            "p99": _pct(tally.status_s, 0.99),
            "mean": statistics.fmean(tally.status_s) * 1000 if tally.status_s else None,
        },
        "errors": sum(tally.errors.values()),
        "errors_by_kind": tally.errors,
        "server_rss_mb": {"idle": round(idle_rss_kb / 1024, 1), "peak": round(peak_kb / 1024, 1)},
        "worker_processes_rss_mb_at_end": round(workers_kb / 1024, 1),
    }
    print(f"{'':<10}{'count':>8}{'p50 ms':>10}{'p99 ms':>10}")
    for name in ("submit", "status"):
        stats = result[f"{name}_ms"]
        count = result["submits"] if name == "submit" else result["status_polls"]
        print(f"{name:<10}{count:>8}{stats['p50'] or 0:>10.1f}{stats['p99'] or 0:>10.1f}")
    print(
        f"errors {result['errors']} {tally.errors or ''}; jobs seen finished {tally.finished}; "
        f"queue at end {queue}; server RSS peak {result['server_rss_mb']['peak']} MB"
    )
    RESULTS.mkdir(parents=True, exist_ok=True)
    output = args.output or RESULTS / f"api_load-{time.strftime('%Y%m%d-%H%M%S')}.json"
    output.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {output}")


if __name__ == "__main__":
    main()
