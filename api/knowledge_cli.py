"""`kernelwright knowledge ...`: ingest documents, search collections, manage lessons.

Thin: every command calls the library (`rag.ingest`, `rag.search`, `knowledge.lessons_store`) and
turns its errors into exit codes here (2: usage, such as an unknown collection; 1: other failures).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from kernelwright.errors import KernelwrightError, UserError
from kernelwright.settings import Settings

__all__ = ["knowledge_app"]

knowledge_app = typer.Typer(
    no_args_is_help=True, help="Ingest documents into searchable collections; search them; manage lessons."
)
lessons_app = typer.Typer(no_args_is_help=True, help="List, show and prune lessons learned by past runs.")
knowledge_app.add_typer(lessons_app, name="lessons")

console = Console(stderr=True)
out = Console(soft_wrap=True)

HomeOpt = Annotated[Path | None, typer.Option(envvar="KERNELWRIGHT_HOME", help="state folder")]
FormatOpt = Annotated[str, typer.Option("--format", help="text or json")]


def _settings(home: Path | None) -> Settings:
    return Settings() if home is None else Settings(home=home)


def _fail(message: str, code: int = 1) -> typer.Exit:
    console.print(f"[red]error:[/] {message}", markup=True, highlight=False)
    return typer.Exit(code)


def _check_format(fmt: str) -> None:
    if fmt not in ("text", "json"):
        raise _fail("--format must be text or json", 2)


@knowledge_app.command()
def ingest(
    paths: Annotated[list[Path] | None, typer.Argument(help="files and folders to ingest")] = None,
    collection: Annotated[str | None, typer.Option(help="collection name")] = None,
    builtin: Annotated[bool, typer.Option(help="ingest the packaged guides as collection 'builtin'")] = False,
    reset: Annotated[bool, typer.Option(help="drop the collection first (to change its embedding)")] = False,
    fmt: FormatOpt = "text",
    home: HomeOpt = None,
) -> None:
    """Ingest md, rst, html, txt, pdf and source files; re-ingest updates only what changed."""
    from rag.ingest import IngestProgress, ingest_builtin
    from rag.ingest import ingest as run_ingest

    _check_format(fmt)
    if builtin == bool(paths):
        raise _fail("give PATH... with --collection NAME, or --builtin alone", 2)
    if paths and not collection:
        raise _fail("--collection NAME is required with PATH...", 2)
    settings = _settings(home)
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True, disable=fmt == "json") as bar:
        task = bar.add_task("ingesting", total=None)

        def on_progress(event: IngestProgress) -> None:
            bar.update(
                task, total=event.total, completed=event.done, description=f"{event.action} {event.path}"
            )

        try:
            if builtin:
                report = ingest_builtin(settings, progress=on_progress)
            else:
                assert paths is not None and collection is not None
                report = run_ingest(
                    paths, collection=collection, settings=settings, progress=on_progress, reset=reset
                )
        except UserError as exc:
            raise _fail(str(exc), 2) from exc
        except KernelwrightError as exc:
            raise _fail(str(exc), 1) from exc
    payload = {
        "collection": report.collection,
        "added": report.added,
        "updated": report.updated,
        "unchanged": report.unchanged,
        "removed": report.removed,
        "chunks_written": report.chunks_written,
        "chunks_total": report.chunks_total,
        "reembedded": report.reembedded,
        "duration_s": round(report.duration_s, 3),
    }
    if fmt == "json":
        out.print_json(json.dumps(payload))
        return
    out.print(
        f"{report.collection}: {report.added} added, {report.updated} updated, {report.unchanged} unchanged, "
        f"{report.removed} removed files; {report.chunks_total} chunks ({report.duration_s:.1f} s)"
        + (f"; {report.reembedded} re-embedded for the current vector layout" if report.reembedded else "")
    )


@knowledge_app.command()
def search(
    query: Annotated[str, typer.Argument(help="what to look for")],
    collection: Annotated[str, typer.Option(help="collection name")] = "builtin",
    k: Annotated[int, typer.Option("--k", help="number of hits", min=1)] = 5,
    fmt: FormatOpt = "text",
    home: HomeOpt = None,
) -> None:
    """Search a collection (hybrid: lexical FTS5 + vectors, fused by reciprocal rank)."""
    import rag

    _check_format(fmt)
    settings = _settings(home)
    try:
        hits = rag.search(query, collection=collection, k=k, settings=settings)
    except UserError as exc:
        raise _fail(str(exc), 2) from exc
    except KernelwrightError as exc:
        raise _fail(str(exc), 1) from exc
    if fmt == "json":
        out.print_json(json.dumps([hit.model_dump(mode="json") for hit in hits]))
        return
    if not hits:
        out.print("no hits")
    for hit in hits:
        out.print(f"[bold]{hit.citation}[/]  {hit.score:.4f}  {hit.heading or ''}", highlight=False)
        out.print(hit.text, markup=False, highlight=False)
        out.print()


@knowledge_app.command()
def collections(fmt: FormatOpt = "text", home: HomeOpt = None) -> None:
    """List ingested collections with their file and chunk counts."""
    from rag.fts import FtsStore

    _check_format(fmt)
    settings = _settings(home)
    infos = FtsStore(settings.rag_db).collections()
    if fmt == "json":
        out.print_json(
            json.dumps(
                [
                    {"name": c.name, "embedding": c.embedding, "files": c.files, "chunks": c.chunks}
                    for c in infos
                ]
            )
        )
        return
    table = Table("collection", "embedding", "files", "chunks")
    for info in infos:
        table.add_row(info.name, info.embedding, str(info.files), str(info.chunks))
    out.print(table)
    if all(info.name != "builtin" for info in infos):
        out.print("builtin: the packaged guides, searched lexically (`ingest --builtin` adds vectors)")


@lessons_app.command("list")
def lessons_list(
    kind: Annotated[str | None, typer.Option(help="fix or tuning")] = None,
    target: Annotated[str | None, typer.Option(help="ptx, cuda, triton or tt-metal")] = None,
    fmt: FormatOpt = "text",
    home: HomeOpt = None,
) -> None:
    """List lessons, newest first."""
    from knowledge.lessons_store import LessonStore

    _check_format(fmt)
    if kind not in (None, "fix", "tuning"):
        raise _fail("--kind must be fix or tuning", 2)
    store = LessonStore.from_settings(_settings(home))
    lessons = store.lessons(kind=kind, target=target)  # type: ignore[arg-type]
    if fmt == "json":
        out.print_json(json.dumps([lesson.model_dump(mode="json") for lesson in lessons]))
        return
    table = Table()
    table.add_column("id", no_wrap=True)
    for name in ("kind", "target", "arch", "about", "outcome", "run", "date"):
        table.add_column(name)
    for lesson in lessons:
        about = lesson.signature if lesson.kind == "fix" else lesson.problem_class
        table.add_row(
            lesson.id,
            lesson.kind,
            lesson.target,
            lesson.arch or "",
            (about or "")[:60],
            lesson.outcome,
            lesson.run_id,
            lesson.created_at.date().isoformat(),
        )
    out.print(table)
    out.print(f"{len(lessons)} lessons")


@lessons_app.command("show")
def lessons_show(
    lesson_id: Annotated[str, typer.Argument(metavar="ID", help="lesson id (or a unique prefix)")],
    fmt: FormatOpt = "text",
    home: HomeOpt = None,
) -> None:
    """Show one lesson in full."""
    from knowledge.lessons_store import LessonStore

    _check_format(fmt)
    lesson = LessonStore.from_settings(_settings(home)).get(lesson_id)
    if lesson is None:
        raise _fail(f"no lesson {lesson_id!r} (or the prefix is ambiguous); see `knowledge lessons list`", 2)
    if fmt == "json":
        out.print_json(lesson.model_dump_json())
        return
    out.print(f"lesson {lesson.id} ({lesson.kind})", highlight=False)
    out.print(lesson.render(), markup=False, highlight=False)


@lessons_app.command("prune")
def lessons_prune(
    older_than: Annotated[
        float | None, typer.Option("--older-than", help="delete lessons older than DAYS")
    ] = None,
    lesson_id: Annotated[
        list[str] | None, typer.Option("--id", help="delete this lesson (repeatable)")
    ] = None,
    home: HomeOpt = None,
) -> None:
    """Delete old or named lessons."""
    from knowledge.lessons_store import LessonStore

    if older_than is None and not lesson_id:
        raise _fail("give --older-than DAYS and/or --id ID", 2)
    deleted = LessonStore.from_settings(_settings(home)).prune(
        older_than_days=older_than, ids=lesson_id or ()
    )
    out.print(f"deleted {deleted} lessons")
