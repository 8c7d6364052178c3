"""`kernelwright batch ...`: run a KernelBench batch with a progress bar, resume it, and read its results.

A batch lives in the service database (`--db`, else `KERNELWRIGHT_DATABASE_URL`, else SQLite under
home), so `batch run` killed at any point is continued by `batch resume ID` (or by the same `batch run`
command given `--batch-id`), and the REST API sees the same batches.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from kernelwright.domain import Target
from kernelwright.errors import KernelwrightError, UserError
from kernelwright.logs import configure_logging
from kernelwright.settings import Settings
from sandbox.runner import make_runner

__all__ = ["batch_app"]

batch_app = typer.Typer(
    no_args_is_help=True, help="KernelBench batches: run, resume, status, export, report."
)
console = Console(stderr=True)
out = Console(soft_wrap=True)

T = TypeVar("T")
DbOpt = Annotated[str | None, typer.Option("--db", help="database URL (sqlite:///PATH, postgresql://...)")]
HomeOpt = Annotated[Path | None, typer.Option(envvar="KERNELWRIGHT_HOME", help="state folder")]


def _fail(message: str, code: int = 1) -> typer.Exit:
    console.print(f"[red]error:[/] {message}")
    return typer.Exit(code)


def _settings(home: Path | None) -> Settings:
    settings = Settings() if home is None else Settings(home=home)
    configure_logging(settings.log_level, settings.log_format)
    return settings


def _with_db(settings: Settings, url: str | None, body: Callable[[Any], Awaitable[T]]) -> T:
    """Migrate the database, run `body(db)`, dispose; library errors become exit codes here."""
    from api.db.engine import Database
    from api.services.migrations import upgrade

    db_url = url or settings.service_database_url

    async def main() -> T:
        db = Database(db_url)
        try:
            return await body(db)
        finally:
            await db.dispose()

    try:
        settings.ensure_dirs()
        upgrade(db_url)
        return asyncio.run(main())
    except UserError as exc:
        raise _fail(str(exc), 2) from exc
    except KernelwrightError as exc:
        raise _fail(str(exc), 1) from exc


def _split(values: list[str] | None) -> list[str]:
    return [part.strip() for value in values or [] for part in value.split(",") if part.strip()]


def _levels(values: list[str] | None) -> tuple[int, ...]:
    parts = _split(values)
    bad = [p for p in parts if not p.removeprefix("L").isdigit()]
    if bad:
        raise _fail(f"--levels takes level numbers such as 1,2 (got {', '.join(bad)})", 2)
    return tuple(int(p.removeprefix("L")) for p in parts)


async def _run_with_progress(db: Any, settings: Settings, batch_id: str) -> dict[str, Any]:
    from api.batch.engine import BatchRunner, SampleEvent
    from api.batch.results import batch_metrics
    from api.batch.store import list_samples, progress

    before = await progress(db, batch_id)
    columns = (
        TextColumn("[bold]batch {task.fields[batch]}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[last]}"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=False) as bar:
        task = bar.add_task(
            "samples", total=before.total, completed=before.finished, batch=batch_id[:12], last=""
        )

        def show(event: SampleEvent) -> None:
            sample = event.sample
            what = f"{sample.problem_key} #{sample.sample_index} {sample.model}"
            if event.kind == "started":
                bar.update(task, last=f"{'resuming' if event.resumed else 'started'} {what}")
                return
            bar.advance(task)
            bar.update(task, last=f"{what}: {event.outcome or event.status}")

        # one runner for the whole batch: its leases spread the samples over every GPU (or Ray actor)
        runner = make_runner(settings)
        try:
            result = await BatchRunner(db, settings, listener=show, runner=runner).run(batch_id)
        finally:
            await runner.aclose()
    metrics = batch_metrics(await list_samples(db, batch_id)).overall
    return {
        "batch_id": batch_id,
        "status": result.status.value,
        "finished_now": result.finished,
        "resumed": result.resumed,
        "metrics": metrics.to_dict(),
    }


def _rate(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}%"


def _print_summary(summary: dict[str, Any], fmt: str) -> None:
    if fmt == "json":
        out.print_json(json.dumps(summary))
        return
    m = summary["metrics"]
    out.print(
        f"batch {summary['batch_id']}: {summary['status']}; {m['samples']} samples finished, "
        f"compiled {_rate(m['compile_rate'])}, correct {_rate(m['correctness_rate'])}, "
        f"fast_1 vs eager {_rate(m['fast_p_eager']['fast_1'])}, "
        f"tokens {m['tokens']}, cost ${m['cost_usd']:.4f}"
    )


@batch_app.command("run")
def batch_run(
    suite: Annotated[str, typer.Argument(help="KernelBench folder (levelN/ID_Name.py) or .jsonl/.parquet")],
    model: Annotated[
        list[str], typer.Option("--model", "-m", help="model name (repeatable: one batch, many)")
    ],
    provider: Annotated[str | None, typer.Option(help="openai, groq or scripted")] = None,
    target: Annotated[Target, typer.Option("--target", "-t", help="ptx, cuda, triton")] = Target.TRITON,
    samples: Annotated[int, typer.Option(help="samples per problem and model")] = 1,
    levels: Annotated[list[str] | None, typer.Option(help="only these levels, e.g. 1,2")] = None,
    ids: Annotated[
        list[str] | None, typer.Option(help="only these problems: L1/19, 1/19, 19 or names")
    ] = None,
    curated: Annotated[
        str | None, typer.Option(help="curated suite JSON, or kernelbench-l1-3-curated (packaged)")
    ] = None,
    limit: Annotated[int | None, typer.Option(help="at most this many problems")] = None,
    limit_llm: Annotated[int | None, typer.Option(help="LLM calls in flight at once")] = None,
    limit_gpu: Annotated[int | None, typer.Option(help="samples verifying at once (GPU leases)")] = None,
    max_turns: Annotated[int | None, typer.Option(help="turn budget per sample")] = None,
    max_tokens: Annotated[int | None, typer.Option(help="token budget per sample")] = None,
    max_cost: Annotated[float | None, typer.Option(help="cost budget per sample in USD")] = None,
    max_wall: Annotated[float | None, typer.Option(help="wall-time budget per sample in seconds")] = None,
    arch: Annotated[str | None, typer.Option(help="GPU architecture, e.g. sm_90")] = None,
    base_url: Annotated[str | None, typer.Option(help="OpenAI-compatible server URL")] = None,
    transcripts: Annotated[
        Path | None, typer.Option(help="replay transcripts from this folder (scripted provider)")
    ] = None,
    batch_id: Annotated[
        str | None, typer.Option(help="batch id; an existing batch with this id is continued, not redone")
    ] = None,
    name: Annotated[str, typer.Option(help="a label for the batch")] = "",
    db: DbOpt = None,
    fmt: Annotated[str, typer.Option("--format", help="text or json")] = "text",
    home: HomeOpt = None,
) -> None:
    """Run SUITE x samples x models; each sample is one generation run. Resumable after a kill."""
    from api.batch.store import BatchSpec, create_batch
    from api.batch.suite import SuiteSelection, load_suite

    settings = _settings(home)
    chosen = provider or ("scripted" if transcripts else settings.provider)
    selection = SuiteSelection(suite, _levels(levels), tuple(_split(ids)), curated, limit)
    budgets = {
        k: v
        for k, v in {
            "max_turns": max_turns,
            "max_tokens": max_tokens,
            "max_cost_usd": max_cost,
            "max_wall_s": max_wall,
        }.items()
        if v is not None
    }
    provider_options: dict[str, Any] = {}
    if transcripts is not None:
        provider_options["transcripts"] = str(transcripts.resolve())
    if base_url:
        provider_options["base_url"] = base_url

    async def body(database: Any) -> dict[str, Any]:
        spec = BatchSpec(
            target=target,
            provider=chosen,
            models=tuple(model),
            samples=samples,
            limit_llm=limit_llm or settings.batch_limit_llm,
            limit_gpu=limit_gpu or settings.batch_limit_gpu,
            suite=selection.describe(),
            options={"budgets": budgets, "arch": arch, "provider_options": provider_options},
            name=name,
        )
        created = await create_batch(database, spec, load_suite(selection), batch_id)
        console.print(f"batch {created} (resume with `kernelwright batch resume {created}`)")
        return await _run_with_progress(database, settings, created)

    _print_summary(_with_db(settings, db, body), fmt)


@batch_app.command("resume")
def batch_resume(
    batch_id: Annotated[str, typer.Argument(help="the batch to continue")],
    db: DbOpt = None,
    fmt: Annotated[str, typer.Option("--format", help="text or json")] = "text",
    home: HomeOpt = None,
) -> None:
    """Continue a batch where it stopped: finished samples are kept, interrupted ones resume."""
    settings = _settings(home)
    _print_summary(_with_db(settings, db, lambda d: _run_with_progress(d, settings, batch_id)), fmt)


@batch_app.command("status")
def batch_status(
    batch_id: Annotated[str | None, typer.Argument(help="a batch id; all batches when left out")] = None,
    db: DbOpt = None,
    fmt: Annotated[str, typer.Option("--format", help="text or json")] = "text",
    home: HomeOpt = None,
) -> None:
    """List batches, or show one batch's progress per problem and its metrics."""
    from api.batch.results import batch_metrics, batch_record
    from api.batch.store import get_batch, list_batches, list_samples, progress

    settings = _settings(home)

    async def body(database: Any) -> dict[str, Any]:
        if batch_id is None:
            rows, count = await list_batches(database)
            return {"data": [batch_record(r) for r in rows], "count": count}
        batch = await get_batch(database, batch_id)
        done = await progress(database, batch_id)
        return {
            "batch": batch_record(batch),
            "progress": {"total": done.total, "by_status": done.by_status, "per_problem": done.per_problem},
            "metrics": batch_metrics(await list_samples(database, batch_id)).to_dict(),
        }

    payload = _with_db(settings, db, body)
    if fmt == "json":
        out.print_json(json.dumps(payload, default=str))
        return
    if batch_id is None:
        table = Table("id", "name", "status", "target", "models", "created")
        for row in payload["data"]:
            table.add_row(
                row["id"],
                row["name"],
                row["status"],
                row["target"],
                ",".join(row["models"]),
                row["created_at"],
            )
        out.print(table)
        return
    batch, prog = payload["batch"], payload["progress"]
    out.print(f"batch {batch['id']}: {batch['status']}, {prog['by_status']}")
    statuses = sorted({s for per in prog["per_problem"].values() for s in per})
    table = Table("problem", *statuses)
    for key, per in prog["per_problem"].items():
        table.add_row(key, *(str(per.get(s, 0)) for s in statuses))
    out.print(table)
    _print_summary(
        {"batch_id": batch["id"], "status": batch["status"], "metrics": payload["metrics"]["overall"]}, "text"
    )


@batch_app.command("cancel")
def batch_cancel(
    batch_id: Annotated[str, typer.Argument(help="the batch to stop")],
    db: DbOpt = None,
    home: HomeOpt = None,
) -> None:
    """Stop a batch: pending samples are cancelled; a running process stops its samples at once."""
    from api.batch.store import request_cancel

    settings = _settings(home)
    row = _with_db(settings, db, lambda d: request_cancel(d, batch_id, settings.batch_stale_s))
    out.print(f"batch {row.id}: {row.status} (cancel requested)")


@batch_app.command("export")
def batch_export(
    batch_id: Annotated[str, typer.Argument(help="the batch")],
    fmt: Annotated[str, typer.Option("--format", help="json or csv")] = "json",
    output: Annotated[Path | None, typer.Option(help="write here instead of stdout")] = None,
    db: DbOpt = None,
    home: HomeOpt = None,
) -> None:
    """Export a batch's samples and metrics as JSON, or its samples as CSV."""
    from api.batch.results import export_csv, export_json
    from api.batch.store import get_batch, list_samples

    if fmt not in ("json", "csv"):
        raise _fail("--format must be json or csv", 2)
    settings = _settings(home)

    async def body(database: Any) -> str:
        batch = await get_batch(database, batch_id)
        rows = await list_samples(database, batch_id)
        return export_json(batch, rows) if fmt == "json" else export_csv(rows)

    text = _with_db(settings, db, body)
    if output is None:
        out.file.write(text)
    else:
        output.write_text(text, encoding="utf-8")
        console.print(f"written to {output}")


@batch_app.command("report")
def batch_report(
    batch_id: Annotated[str, typer.Argument(help="the batch")],
    output: Annotated[Path, typer.Option(help="the HTML file to write")],
    db: DbOpt = None,
    home: HomeOpt = None,
) -> None:
    """Write the batch's report page: metrics, speedup distribution, outcomes per level (one HTML file)."""
    from api.batch.report import render_report
    from api.batch.store import get_batch, list_samples

    settings = _settings(home)

    async def body(database: Any) -> str:
        return render_report(await get_batch(database, batch_id), await list_samples(database, batch_id))

    output.write_text(_with_db(settings, db, body), encoding="utf-8")
    out.print(f"report written to {output}")
