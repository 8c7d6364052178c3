"""`kernelwright toolchains fetch tt-metal`: download what a target's deeper checks need.

For tt-metal: the `ttnn` wheel from PyPI (download only; it is built for CPython 3.10/3.12), whose
device headers are extracted under the kernelwright home; data-movement kernels are then syntax-checked.
Exit codes: 0 fetched, 1 the download or extraction failed, 2 usage errors.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from kernelwright.errors import KernelwrightError, UserError
from kernelwright.settings import Settings
from sandbox.ttmetal_fetch import extract_headers, fetch_ttmetal, headers_root

__all__ = ["toolchains_app"]

toolchains_app = typer.Typer(no_args_is_help=True, add_completion=False, help="Fetch toolchains and headers.")

_err = Console(stderr=True)
_FETCHABLE = ("tt-metal",)


@toolchains_app.callback()
def _group() -> None:
    """Toolchains: `fetch tt-metal` (device headers from the ttnn wheel)."""


@toolchains_app.command("fetch")
def fetch(
    name: Annotated[str, typer.Argument(help="what to fetch: tt-metal")],
    version: Annotated[str | None, typer.Option("--version", help="ttnn version (newest when unset)")] = None,
    wheel: Annotated[Path | None, typer.Option("--wheel", help="use this downloaded ttnn wheel")] = None,
    home: Annotated[Path | None, typer.Option("--home", help="kernelwright home")] = None,
) -> None:
    """Fetch a toolchain's files into the kernelwright home."""
    if name not in _FETCHABLE:
        _err.print(f"[red]error:[/] cannot fetch {name!r}; fetchable: {', '.join(_FETCHABLE)}")
        raise typer.Exit(2)
    settings = Settings() if home is None else Settings(home=home)
    try:
        if wheel is not None:
            if not wheel.is_file():
                raise UserError(f"{wheel} does not exist")
            headers_root(settings).mkdir(parents=True, exist_ok=True)
            result = extract_headers(wheel, headers_root(settings))
        else:
            _err.print("downloading the ttnn wheel from the package index (about 100 MB)...")
            result = fetch_ttmetal(settings, version)
    except UserError as exc:
        _err.print(f"[red]error:[/] {exc}")
        raise typer.Exit(2) from exc
    except KernelwrightError as exc:
        _err.print(f"[red]error:[/] {exc}")
        raise typer.Exit(1) from exc
    _err.print(f"ttnn {result.version}: {result.files} header files in {result.root}")
