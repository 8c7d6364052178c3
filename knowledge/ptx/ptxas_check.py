"""ptxas as the judge: run it on a module (check-only where possible) and parse its verdict.

The deterministic checker runs first; this runs ptxas after it, with `-arch=compute_NN` when only
validation is wanted (no SASS is generated, which is cheaper), and turns its messages into the same
`Diagnostic` type via the sandbox's existing parser, so the model sees both in one list.
"""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

from kernelwright.domain import Diagnostic
from kernelwright.errors import ToolchainError
from kernelwright.settings import Settings

__all__ = ["ptxas_arch", "ptxas_check"]


def ptxas_arch(target: str, *, check_only: bool = True) -> str:
    """The `-arch` value for `target`: `compute_90a` for check-only runs, else `sm_90a`."""
    return target.replace("sm_", "compute_", 1) if check_only else target


def ptxas_check(
    source: str,
    *,
    target: str,
    settings: Settings | None = None,
    check_only: bool = True,
    filename: str = "kernel.ptx",
    timeout_s: float | None = None,
) -> list[Diagnostic]:
    """ptxas's diagnostics for `source` assembled for `target` (raises ToolchainError if absent)."""
    from sandbox.diagnostics_parse import parse_ptxas_output
    from sandbox.toolchains import find_ptxas, install_hint

    settings = settings or Settings()
    tool = find_ptxas(settings)
    if tool is None:
        raise ToolchainError(f"ptxas was not found: {install_hint('ptxas')}")
    with tempfile.TemporaryDirectory(prefix="kw-ptx-") as folder:
        path = Path(folder) / Path(filename).name
        path.write_text(source, encoding="utf-8")
        try:
            done = subprocess.run(
                [
                    str(tool.path),
                    f"-arch={ptxas_arch(target, check_only=check_only)}",
                    str(path),
                    "-o",
                    "/dev/null",
                ],
                capture_output=True,
                text=True,
                timeout=timeout_s or settings.compile_timeout_s,
                stdin=subprocess.DEVNULL,
                check=False,
            )
        except (OSError, subprocess.SubprocessError) as exc:
            raise ToolchainError(f"ptxas could not be run: {exc}") from exc
    found = parse_ptxas_output(done.stdout + done.stderr, ptx_file=path.name)
    return [d.model_copy(update={"file": filename}) if d.file is not None else d for d in found]
