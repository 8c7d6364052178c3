"""Compiling a candidate's kernels ahead of verification, on the service host (no GPU needed).

For `ptx` and `cuda` candidates every kernel source found in the module is built with the real
toolchain (ptxas / nvcc) into the shared kernel cache as `<cache_dir>/<cache_key>.cubin`; the worker
that later runs the candidate loads those cubins instead of compiling again (see
`sandbox.runtime.kernel_cache`). Compiler messages come back as `Diagnostic`s at the candidate's
Python lines. For `triton` there is nothing to build without a GPU, so we only check that the
worker's Python can import triton. Compile problems of the candidate are data (`CompileResult`),
never exceptions; a broken configuration (an invalid `gpu_arch`) raises `ConfigError`, an unwritable
cache folder `SandboxError`.

Tools run as asyncio subprocesses in a temporary folder, with `settings.compile_timeout_s`, so a
compile never blocks the event loop; the blocking look-ups (`--version`, nvidia-smi) run in a thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from kernelwright.domain import Candidate, CompileResult, Diagnostic, Severity, Target
from kernelwright.errors import ConfigError, SandboxError
from kernelwright.settings import Settings
from sandbox.diagnostics_parse import parse_nvcc_output, parse_ptxas_output
from sandbox.kernel_source import CANDIDATE_FILE, KernelSource, find_kernel_sources
from sandbox.runtime.compilers import nvcc_command, ptxas_command
from sandbox.runtime.kernel_cache import cache_key, resolve_arch, store_cubin
from sandbox.static_checks import uses_extension_build
from sandbox.toolchains import Toolchain, detect_gpu_arch, find_nvcc, find_ptxas, install_hint

__all__ = ["DEFAULT_ARCH", "compile_candidate", "resolve_target_arch", "triton_version"]

DEFAULT_ARCH = "sm_90"
_ARCH = re.compile(r"^sm_\d+[af]?$")
# Extra flags for the service's builds only: resource usage for the log, spill warnings as diagnostics.
_PTXAS_EXTRA = ("-v", "--warn-on-spills")
_NVCC_EXTRA = ("-Xptxas=-v,--warn-on-spills",)
_LOG_LIMIT = 64 * 1024

# interpreter -> triton version (None: not importable); concurrent first checks may both run, harmlessly.
_triton_versions: dict[str, str | None] = {}


@dataclass
class _Outcome:
    """What compiling one kernel source gave."""

    diagnostics: list[Diagnostic] = field(default_factory=list)
    artifact: tuple[str, str] | None = None
    log: str = ""


async def resolve_target_arch(settings: Settings, arch: str | None = None) -> str:
    """The architecture to build for: `arch`, else settings.gpu_arch, else the local GPU's, else sm_90."""
    chosen = arch or settings.gpu_arch or await asyncio.to_thread(detect_gpu_arch) or DEFAULT_ARCH
    if not _ARCH.match(chosen):
        raise ConfigError(
            f"invalid GPU architecture {chosen!r}: expected sm_XX (e.g. sm_90); check KERNELWRIGHT_GPU_ARCH"
        )
    return chosen


async def compile_candidate(
    candidate: Candidate,
    settings: Settings,
    *,
    arch: str | None = None,
    cache_dir: Path,
    filename: str = CANDIDATE_FILE,
) -> CompileResult:
    """Compile `candidate`'s kernels for `arch`, leaving cubins in `cache_dir` (see the module doc)."""
    started = time.monotonic()
    result = await _compile(candidate, settings, arch, cache_dir, filename)
    return result.model_copy(update={"duration_s": time.monotonic() - started})


async def _compile(
    candidate: Candidate, settings: Settings, arch: str | None, cache_dir: Path, filename: str
) -> CompileResult:
    if candidate.target == Target.TT_METAL:
        return await _check_ttmetal(candidate, settings)
    syntax = _python_syntax(candidate.source, filename)
    if syntax is not None:
        return CompileResult(ok=False, toolchain="python", diagnostics=[syntax])
    if candidate.target == Target.PTX:
        return await _compile_kernels(candidate, settings, arch, cache_dir, filename, "ptxas")
    if candidate.target == Target.CUDA and uses_extension_build(candidate.source):
        return CompileResult(ok=True, toolchain="torch.utils.cpp_extension (built in the worker)")
    if candidate.target == Target.CUDA:
        return await _compile_kernels(candidate, settings, arch, cache_dir, filename, "nvcc")
    if candidate.target == Target.TRITON:
        return await _check_triton(settings)
    return CompileResult(
        ok=False,
        toolchain="tt-metal",
        toolchain_missing=True,
        diagnostics=[
            Diagnostic(
                code="toolchain.missing",
                message="the tt-metal target's toolchain is not supported yet",
                hint=install_hint("tt-metal"),
                source="compile",
            )
        ],
    )


async def _check_ttmetal(candidate: Candidate, settings: Settings) -> CompileResult:
    """A tt-metal candidate is a project bundle: every check this machine allows, up to `built`."""
    from knowledge.ttmetal import Project
    from sandbox.ttmetal_build import check_ttmetal, compile_result

    project = Project.from_bundle(candidate.source)
    report = await asyncio.to_thread(check_ttmetal, project, settings, build=True, run=False)
    return compile_result(report)


def _python_syntax(source: str, filename: str) -> Diagnostic | None:
    """A `python.syntax` diagnostic if the module does not compile (compiling runs none of its code)."""
    try:
        compile(source, filename, "exec", dont_inherit=True)
    except SyntaxError as exc:
        return Diagnostic(
            code="python.syntax",
            message=exc.msg or "invalid syntax",
            file=filename,
            line=exc.lineno,
            column=exc.offset,
            source="python",
        )
    except ValueError as exc:  # e.g. NUL bytes in the source
        return Diagnostic(code="python.syntax", message=str(exc), file=filename, source="python")
    return None


def _missing(name: str, settings: Settings) -> CompileResult:
    explicit = settings.ptxas if name == "ptxas" else settings.nvcc
    if explicit is not None:
        where = f"KERNELWRIGHT_{name.upper()} points to {explicit}, which is not an executable file"
    else:
        where = (
            f"{name} is not on PATH nor in KERNELWRIGHT_CUDA_HOME/bin, $CUDA_HOME/bin or /usr/local/cuda/bin"
        )
    return CompileResult(
        ok=False,
        toolchain=name,
        toolchain_missing=True,
        diagnostics=[
            Diagnostic(
                code="toolchain.missing",
                message=f"cannot compile: {where}",
                hint=install_hint(name),
                source="compile",
            )
        ],
    )


async def _compile_kernels(
    candidate: Candidate,
    settings: Settings,
    arch: str | None,
    cache_dir: Path,
    filename: str,
    tool_name: str,
) -> CompileResult:
    scan = find_kernel_sources(candidate.source, candidate.target, filename=filename)
    finder = find_ptxas if tool_name == "ptxas" else find_nvcc
    tool = await asyncio.to_thread(finder, settings)
    label = tool.describe() if tool else tool_name
    if not scan.ok:
        return CompileResult(ok=False, toolchain=label, diagnostics=scan.diagnostics)
    if tool is None:
        missing = _missing(tool_name, settings)
        return missing.model_copy(update={"diagnostics": scan.diagnostics + missing.diagnostics})
    device_arch = await resolve_target_arch(settings, arch)
    cache_dir.mkdir(parents=True, exist_ok=True)
    names = _artifact_names(scan.sources)
    with tempfile.TemporaryDirectory(prefix="kernelwright-compile-") as tmp:
        outcomes = await asyncio.gather(
            *(
                _compile_one(
                    tool,
                    source,
                    artifact=name,
                    device_arch=device_arch,
                    cache_dir=cache_dir,
                    workdir=Path(tmp),
                    settings=settings,
                    filename=filename,
                )
                for source, name in zip(scan.sources, names, strict=True)
            )
        )
    diagnostics = list(scan.diagnostics)
    artifacts: dict[str, str] = {}
    logs: list[str] = []
    for outcome in outcomes:
        diagnostics.extend(outcome.diagnostics)
        if outcome.artifact is not None:
            artifacts[outcome.artifact[0]] = outcome.artifact[1]
        if outcome.log:
            logs.append(outcome.log)
    ok = not any(d.is_error for d in diagnostics) and len(artifacts) == len(scan.sources)
    log = "\n".join(logs)
    return CompileResult(
        ok=ok,
        toolchain=label,
        diagnostics=diagnostics,
        artifacts=artifacts,
        log=log[-_LOG_LIMIT:],
    )


def _artifact_names(sources: Sequence[KernelSource]) -> list[str]:
    """Readable, unique artifact names: the variable name (`PTX.cubin`), else `kernel0.cubin`..."""
    names: list[str] = []
    for index, source in enumerate(sources):
        base = source.name or f"kernel{index}"
        name, suffix = f"{base}.cubin", 1
        while name in names:
            name, suffix = f"{base}_{suffix}.cubin", suffix + 1
        names.append(name)
    return names


async def _compile_one(
    tool: Toolchain,
    source: KernelSource,
    *,
    artifact: str,
    device_arch: str,
    cache_dir: Path,
    workdir: Path,
    settings: Settings,
    filename: str,
) -> _Outcome:
    options = source.options or ()
    arch = resolve_arch(source.kind, source.text, device_arch)
    key = cache_key(source.kind, source.text, arch, options)
    target = cache_dir / f"{key}.cubin"
    if target.is_file() and target.stat().st_size > 0:
        return _Outcome(artifact=(artifact, str(target)), log=f"== {artifact}: cached as {target.name}")
    stem = artifact.removesuffix(".cubin")
    suffix = ".ptx" if source.kind == "ptx" else ".cu"
    src_path, out_path = workdir / f"{stem}{suffix}", workdir / f"{stem}.cubin"
    src_path.write_text(source.text, encoding="utf-8")
    if source.kind == "ptx":
        argv = ptxas_command(tool.path, src_path, out_path, arch=arch, extra=_PTXAS_EXTRA)
    else:
        argv = nvcc_command(tool.path, src_path, out_path, arch=arch, options=options, extra=_NVCC_EXTRA)
    returncode, output = await _run(argv, workdir, settings.compile_timeout_s)
    log = f"== {artifact}: {' '.join(argv)}\n{output}".rstrip()
    if returncode is None:
        return _Outcome(
            diagnostics=[
                Diagnostic(
                    code="compile.timeout",
                    message=f"{tool.name} did not finish within {settings.compile_timeout_s:g} s and "
                    f"was killed ({source.label})",
                    file=filename,
                    line=source.start_line,
                    hint="simplify the kernel (very long unrolled code takes long to compile)",
                    source="compile",
                )
            ],
            log=log,
        )
    if source.kind == "ptx":
        diagnostics = parse_ptxas_output(output, source=source, ptx_file=src_path.name, filename=filename)
    else:
        diagnostics = parse_nvcc_output(output, source=source, cu_file=src_path.name, filename=filename)
    if returncode != 0 or not out_path.is_file():
        if not any(d.is_error for d in diagnostics):
            tail = output.strip()[-2000:] or f"exit status {returncode}, no output"
            diagnostics.append(
                Diagnostic(
                    code=f"{tool.name}.error",
                    message=f"{tool.name} failed ({source.label}): {tail}",
                    file=filename,
                    line=source.start_line,
                    source=tool.name,
                )
            )
        return _Outcome(diagnostics=diagnostics, log=log)
    stored = store_cubin(key, out_path.read_bytes(), cache_dir)  # atomic: workers may be reading
    if stored is None:
        raise SandboxError(f"cannot write the compiled kernel into the cache folder {cache_dir}")
    return _Outcome(diagnostics=diagnostics, artifact=(artifact, str(stored)), log=log)


async def _run(argv: Sequence[str], cwd: Path, timeout_s: float) -> tuple[int | None, str]:
    """(exit status, stdout+stderr) of a tool; status None when it ran out of time and was killed."""
    process = await asyncio.create_subprocess_exec(
        *argv,
        cwd=str(cwd),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        stdout, _ = await asyncio.wait_for(process.communicate(), timeout_s)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await process.wait()
        return None, ""
    return process.returncode, stdout.decode(errors="replace")


async def triton_version(python: str, timeout_s: float) -> str | None:
    """triton's version as importable by interpreter `python`, or None (the answer is cached)."""
    if python in _triton_versions:
        return _triton_versions[python]
    version: str | None = None
    try:
        returncode, output = await _run(
            [python, "-c", "import triton, sys; print(triton.__version__)"], Path.cwd(), timeout_s
        )
    except OSError:
        returncode, output = 1, ""
    if returncode == 0 and output.strip():
        version = output.strip().splitlines()[-1].strip()
    _triton_versions[python] = version
    return version


async def _check_triton(settings: Settings) -> CompileResult:
    python = settings.worker_python or sys.executable
    version = await triton_version(python, settings.compile_timeout_s)
    if version is None:
        return CompileResult(
            ok=False,
            toolchain="triton",
            toolchain_missing=True,
            diagnostics=[
                Diagnostic(
                    code="toolchain.missing",
                    message=f"the worker Python ({python}) cannot import triton",
                    severity=Severity.ERROR,
                    hint=install_hint("triton"),
                    source="compile",
                )
            ],
        )
    return CompileResult(ok=True, toolchain=f"triton {version} (compiled at first launch)")
