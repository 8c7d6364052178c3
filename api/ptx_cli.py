"""`kernelwright ptx ...`: the PTX checker on the command line.

Register it in api/cli.py with `app.add_typer(ptx_app, name="ptx")`.

`check` parses every file in one process (the tables load once), so checking hundreds of files costs
little more than a loop inside one process. Exit codes: 0 every file is valid, 1 some file is not,
2 usage errors (unreadable file, unknown target, bad option).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from kernelwright.domain import Diagnostic
from kernelwright.errors import KernelwrightError
from kernelwright.settings import Settings
from knowledge.ptx import check_ptx, load_tables, ptxas_check
from knowledge.ptx.checker import resolve_target
from knowledge.ptx.probe import (
    PtxasJudge,
    probe_subjects,
    run_probes,
    sample_subjects,
    summarize,
    write_overlay,
)

__all__ = ["ptx_app"]

ptx_app = typer.Typer(no_args_is_help=True, add_completion=False, help="Check PTX against the syntax tables.")

_err = Console(stderr=True)
_out = Console(soft_wrap=True, highlight=False)


@ptx_app.callback()
def _group() -> None:
    """PTX tools: `check` (the fast checker) and `probe` (the tables judged by ptxas)."""


def _as_json(path: str, diagnostics: list[Diagnostic]) -> str:
    return json.dumps(
        {
            "file": path,
            "valid": not any(d.is_error for d in diagnostics),
            "diagnostics": [
                {"line": d.line, "column": d.column, "code": d.code, "message": d.message, "hint": d.hint}
                for d in diagnostics
            ],
        }
    )


def _module_target(source: str) -> str | None:
    for line in source.splitlines():
        stripped = line.strip()
        if stripped.startswith(".target"):
            return stripped.split()[1].rstrip(",") if len(stripped.split()) > 1 else None
    return None


def _retarget(source: str, target: str) -> str:
    """The module with its `.target` replaced, so ptxas judges what the checker was asked about."""
    return re.sub(r"^(\s*\.target\s+)[\w]+", lambda m: m.group(1) + target, source, count=1, flags=re.M)


@ptx_app.command("check")
def check(
    files: Annotated[list[Path], typer.Argument(help="PTX files to check")],
    target: Annotated[
        str | None, typer.Option("--target", help="check as if .target were this (e.g. sm_90a)")
    ] = None,
    fmt: Annotated[
        str, typer.Option("--format", help="text or json (one JSON object per line per file)")
    ] = "text",
    ptxas: Annotated[
        bool, typer.Option("--ptxas", help="also run ptxas (check-only) and report its messages")
    ] = False,
) -> None:
    """Check PTX FILES: module directives, declarations, instructions, target and .version gates."""
    if fmt not in ("text", "json"):
        _err.print(f"[red]error:[/] --format must be text or json, not {fmt!r}")
        raise typer.Exit(2)
    if target is not None and resolve_target(target) is None:
        _err.print(f"[red]error:[/] --target {target!r} is not a target name like sm_80 or sm_90a")
        raise typer.Exit(2)
    sources: list[tuple[Path, str]] = []
    for path in files:
        try:
            sources.append((path, path.read_text(encoding="utf-8", errors="replace")))
        except OSError as exc:
            _err.print(f"[red]error:[/] cannot read {path}: {exc.strerror or exc}")
            raise typer.Exit(2) from exc
    load_tables()
    any_invalid = False
    for path, source in sources:
        diagnostics = check_ptx(source, target=target, filename=str(path))
        if ptxas:
            arch = target or _module_target(source)
            if arch:
                judged = _retarget(source, target) if target else source
                try:
                    diagnostics += ptxas_check(judged, target=arch, filename=str(path))
                except KernelwrightError as exc:
                    _err.print(f"[red]error:[/] {exc}")
                    raise typer.Exit(2) from exc
        invalid = any(d.is_error for d in diagnostics)
        any_invalid = any_invalid or invalid
        if fmt == "json":
            _out.print(_as_json(str(path), diagnostics), markup=False)
            continue
        for diagnostic in diagnostics:
            _out.print(diagnostic.render(), markup=False)
        if not invalid:
            _out.print(f"{path}: ok", markup=False)
    raise typer.Exit(1 if any_invalid else 0)


@ptx_app.command("probe")
def probe(
    sample: Annotated[
        int | None, typer.Option("--sample", min=1, help="probe N table entries (deterministic sample)")
    ] = None,
    family: Annotated[
        list[str] | None, typer.Option("--family", help="only entries of these family files (sm_80, ...)")
    ] = None,
    patch: Annotated[
        bool, typer.Option("--patch", help="write what ptxas proves into tables/probed/ptxas-X.Y.yaml")
    ] = False,
    fmt: Annotated[str, typer.Option("--format", help="text or json")] = "text",
    seed: Annotated[int, typer.Option("--seed", help="seed of the sample")] = 0,
) -> None:
    """Expand the tables into probe modules, judge them with ptxas, report disagreements.

    Exit codes: 0 the probed entries agree with ptxas, 1 some disagree, 2 usage errors or no ptxas.
    """
    from sandbox.toolchains import find_ptxas, install_hint

    if fmt not in ("text", "json"):
        _err.print(f"[red]error:[/] --format must be text or json, not {fmt!r}")
        raise typer.Exit(2)
    tool = find_ptxas(Settings())
    if tool is None:
        _err.print(f"[red]error:[/] ptxas was not found: {install_hint('ptxas')}")
        raise typer.Exit(2)
    tables = load_tables(tool.version)
    known = set(tables.families)
    unknown = [f for f in family or () if f not in known]
    if unknown:
        _err.print(
            f"[red]error:[/] unknown --family {', '.join(unknown)} (known: {', '.join(sorted(known))})"
        )
        raise typer.Exit(2)
    subjects = sample_subjects(probe_subjects(tables, family or None), sample, seed)
    judge = PtxasJudge(tool.path)
    try:
        outcomes = run_probes(tables, judge, subjects, provenance=f"probed: ptxas {tool.version}")
    finally:
        judge.close()
    report = summarize(outcomes, tool.version)
    report["ptxas_runs"] = judge.runs
    corrections = [c for o in outcomes for c in o.corrections]
    if patch and corrections:
        report["overlay"] = str(write_overlay(corrections, tool.version))
    if fmt == "json":
        _out.print(json.dumps(report), markup=False)
    else:
        for item in report["disagreements"]:
            _out.print(
                f"DISAGREE {item['subject']} [{item['kind']}] {item['target']} .version {item['version']}: "
                f"table says {item['table_says']}, ptxas says {item['ptxas_says']}: {item['instruction']}"
                + (f"  ({item['message']})" if item["message"] else ""),
                markup=False,
            )
        for text in report["corrections"]:
            _out.print(f"correction: {text}", markup=False)
        _out.print(
            f"ptxas {tool.version}: {report['subjects']} entries, {report['probes']} probes, "
            f"{report['agree']} agree ({report['agreement_pct']}%), {len(report['disagreements'])} disagree, "
            f"{report['unconfirmed']} unconfirmed (no spelling assembled)"
            + (f"; overlay written: {report['overlay']}" if "overlay" in report else ""),
            markup=False,
        )
    raise typer.Exit(1 if report["disagreements"] else 0)
