"""`kernelwright tt-metal check PROJECT_DIR`: every TT-Metal check this machine allows, on a project folder.

Exit codes: 0 the project is valid at the level reached, 1 it is not, 2 usage errors (no such folder,
not a project, unknown API version, bad option). `--format json` prints
`{"valid", "level", "diagnostics": [{"file", "line", "code", "message", "hint"}]}`; the agent's check
node calls the same `sandbox.ttmetal_build.check_ttmetal`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from kernelwright.errors import KernelwrightError
from kernelwright.settings import Settings
from knowledge.ttmetal import Project
from sandbox.ttmetal_build import check_ttmetal

__all__ = ["ttmetal_app"]

ttmetal_app = typer.Typer(no_args_is_help=True, add_completion=False, help="TT-Metal (Tenstorrent) projects.")

_err = Console(stderr=True)
_out = Console(soft_wrap=True, highlight=False)


@ttmetal_app.callback()
def _group() -> None:
    """TT-Metal tools: `check` a project (static checks, syntax check, build, run: as far as possible)."""


@ttmetal_app.command("check")
def check(
    project_dir: Annotated[
        Path, typer.Argument(help="project folder: kernels/, the host .cpp, CMakeLists.txt")
    ],
    fmt: Annotated[str, typer.Option("--format", help="text or json")] = "text",
    api_version: Annotated[
        str | None, typer.Option("--api-version", help="TT-Metal version to assume (e.g. 0.81.1, 2026-06)")
    ] = None,
    no_build: Annotated[
        bool, typer.Option("--no-build", help="stop before building, even with TT_METAL_HOME")
    ] = False,
    home: Annotated[Path | None, typer.Option("--home", help="kernelwright home (fetched headers)")] = None,
) -> None:
    """Check a TT-Metal project; exit 0 when valid, 1 when not, 2 on usage errors."""
    if fmt not in ("text", "json"):
        _err.print(f"[red]error:[/] --format must be text or json, not {fmt!r}")
        raise typer.Exit(2)
    try:
        settings = Settings() if home is None else Settings(home=home)
        if api_version is not None:
            settings = settings.model_copy(update={"ttmetal_api_version": api_version})
        project = Project.from_dir(project_dir)
        report = check_ttmetal(project, settings, build=not no_build)
    except KernelwrightError as exc:
        _err.print(f"[red]error:[/] {exc}")
        raise typer.Exit(2) from exc
    if fmt == "json":
        _out.print(json.dumps(report.to_json()), markup=False)
    else:
        for diagnostic in report.diagnostics:
            _out.print(diagnostic.render(), markup=False)
        verdict = "valid" if report.valid else "INVALID"
        _out.print(f"{project_dir}: {verdict} (level {report.level.value})", markup=False)
        for note in report.notes:
            _out.print(f"  note: {note}", markup=False)
    raise typer.Exit(0 if report.valid else 1)
