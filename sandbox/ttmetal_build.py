"""How far a TT-Metal project can be checked on this machine, and the one call that does it.

Levels, each needing more of the machine (detected, never assumed):
- `static_checked`: the static checks of `knowledge.ttmetal` (always).
- `syntax_checked`: data-movement kernels compiled with `g++ -m32 -fsyntax-only` against the fetched
  ttnn device headers, through the firmware wrapper (`brisck.cc` / `ncrisck.cc`) with the include paths
  and defines the TT-Metal JIT uses, the host's compile-time arguments as `KERNEL_COMPILE_TIME_ARGS`
  (so a wrong index fails its static_assert) and a generated `chlkc_descriptors.h`. Compute kernels
  are not compiled: they need the SFPI compiler's headers, which no package index ships; they stay
  at `static_checked`, and the report says so.
- `built`: with `TT_METAL_HOME` (a built tt-metal checkout), the project is configured and built with
  CMake against it.
- `ran`: with a built project and a Tenstorrent device (`/dev/tenstorrent`), the host program runs;
  its exit status is the result. Its output is not compared with a PyTorch reference here.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cache
from pathlib import Path

from kernelwright.domain import CompileResult, Diagnostic, Outcome, Severity, Verdict
from kernelwright.settings import Settings
from knowledge.ttmetal import Project, check_project
from knowledge.ttmetal.model import ProjectModel
from knowledge.ttmetal.project import FileRole
from knowledge.ttmetal.source import cb_index_value, evaluate_int
from sandbox.ttmetal_fetch import installed_headers

__all__ = [
    "Level",
    "TtMetalReport",
    "check_ttmetal",
    "compile_result",
    "gxx_m32_available",
    "syntax_check",
    "ttmetal_verdict",
]

_GXX_LINE = re.compile(
    r"^(?P<file>[^:\n]+):(?P<line>\d+):(?P<col>\d+): (?P<sev>error|fatal error|warning): (?P<msg>.*)$"
)
_TILE_BYTES = 2048  # a bfloat16 32x32 tile
_DEVICE_NODE = Path("/dev/tenstorrent")


class Level(StrEnum):
    STATIC_CHECKED = "static_checked"
    SYNTAX_CHECKED = "syntax_checked"
    BUILT = "built"
    RAN = "ran"


@dataclass
class TtMetalReport:
    """The answer of `check_ttmetal`: valid, the level reached, diagnostics and what limited the level."""

    valid: bool
    level: Level
    diagnostics: list[Diagnostic]
    notes: list[str] = field(default_factory=list)
    api_version: str = ""
    duration_s: float = 0.0

    def to_json(self) -> dict[str, object]:
        """The issue's schema: valid, level, diagnostics (file, line, code, message, hint)."""
        return {
            "valid": self.valid,
            "level": self.level.value,
            "diagnostics": [
                {"file": d.file, "line": d.line, "code": d.code, "message": d.message, "hint": d.hint}
                for d in self.diagnostics
            ],
        }


@cache
def gxx_m32_available(gxx: str = "g++") -> bool:
    """Whether `g++ -m32` can parse a C++ standard header (needs g++-multilib on Debian/Ubuntu)."""
    path = shutil.which(gxx)
    if path is None:
        return False
    try:
        done = subprocess.run(
            [path, "-m32", "-std=c++17", "-fsyntax-only", "-x", "c++", "-"],
            input="#include <cstdint>\n#include <array>\n",
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return False
    return done.returncode == 0


def _arch_flags(root: Path, arch: str) -> list[str]:
    short = "wormhole" if arch == "wormhole_b0" else "blackhole"
    defines_dir = "wormhole_b0_defines" if short == "wormhole" else "blackhole_defines"
    inc = root / "tt_metal" / "hw" / "inc"
    internal = inc / "internal" / "tt-1xx" / short
    ckernels = root / "tt_metal" / "hw" / "ckernels" / arch / "metal"
    llk = root / "tt_metal" / "tt-llk" / f"tt_llk_{arch}"
    banks = ("12", "64", "4", "6") if short == "wormhole" else ("8", "64", "3", "6")
    return [
        f"-DARCH_{short.upper()}",
        f"-DNUM_DRAM_BANKS={banks[0]}",
        f"-DNUM_L1_BANKS={banks[1]}",
        f"-DLOG_BASE_2_OF_NUM_DRAM_BANKS={banks[2]}",
        f"-DLOG_BASE_2_OF_NUM_L1_BANKS={banks[3]}",
        "-DIS_NOT_POW2_NUM_DRAM_BANKS=1",
        *(f"-I{p}" for p in (root, root / "tt_metal", inc, inc / "internal", inc / "internal" / "tt-1xx")),
        *(f"-I{p}" for p in (internal, internal / defines_dir, internal / "noc")),
        *(
            f"-I{p}"
            for p in (ckernels / "common", ckernels / "llk_io", llk / "common" / "inc", llk / "llk_lib")
        ),
        f"-I{root / 'tt_metal' / 'hostdevcommon' / 'api'}",
        f"-I{root / 'tt_metal' / 'api'}",
    ]


def _descriptors() -> str:
    def row(ctype: str, value: int) -> str:
        return f"[32] = {{{', '.join([str(value)] * 32)}}};"

    return (
        "#pragma once\n#include <cstdint>\n"
        f"constexpr std::int32_t unpack_tile_size{row('', _TILE_BYTES)}\n"
        f"constexpr std::int32_t pack_tile_size{row('', _TILE_BYTES)}\n"
        f"constexpr std::uint8_t unpack_tile_r_dim{row('', 32)}\n"
        f"constexpr std::uint8_t unpack_tile_c_dim{row('', 32)}\n"
        f"constexpr std::uint8_t unpack_tile_num_faces{row('', 4)}\n"
        f"constexpr std::uint8_t unpack_src_format{row('', 5)}\n"
        f"constexpr std::uint8_t pack_dst_format{row('', 5)}\n"
    )


def _ct_values(model: ProjectModel, path: str) -> tuple[list[int], list[str]]:
    """Compile-time args and named args (`{"name",value}`) as the JIT would pass them, best effort."""
    kernel = model.kernel(path)
    setup = kernel.setup if kernel else None
    if setup is None or setup.compile_args is None:
        return [], []
    env: dict[str, str] = {}
    for host in model.project.host_files:
        env.update(host.assignments)
    values: list[int] = []
    slots = setup.compile_args
    i = 0
    while i < len(slots):
        slot = slots[i]
        if slot.startswith("TensorAccessorArgs("):
            values += [2, _TILE_BYTES]  # IsDram, aligned page size (interleaved DRAM buffer)
            i += 2
            continue
        value = cb_index_value(slot)
        values.append(value if value is not None else (evaluate_int(slot, env) or 1))
        i += 1
    named = [f'{{"{name}",1}}' for name in sorted(setup.named_args or ())]
    return values, named


def syntax_check(project: Project, headers: Path, settings: Settings) -> tuple[list[Diagnostic], list[str]]:
    """g++ -m32 -fsyntax-only of every data-movement kernel; (diagnostics, kernels checked)."""
    model = ProjectModel.read(project)
    found: list[Diagnostic] = []
    checked: list[str] = []
    firmware = headers / "tt_metal" / "hw" / "firmware" / "src" / "tt-1xx"
    with tempfile.TemporaryDirectory(prefix="kernelwright-ttm-") as tmp:
        work = Path(tmp)
        tree = work / "project"
        project.write(tree)
        for path in project.paths(FileRole.DATAFLOW):
            kernel = model.kernel(path)
            processor = kernel.setup.processor if kernel and kernel.setup else None
            on_ncrisc = processor == "RISCV_1"
            gen = work / f"gen{len(checked)}"
            gen.mkdir()
            (gen / "kernel_includes.hpp").write_text(f'#include "{tree / path}"\n', encoding="utf-8")
            (gen / "chlkc_descriptors.h").write_text(_descriptors(), encoding="utf-8")
            ct, named = _ct_values(model, path)
            argv = [
                "g++",
                "-m32",
                "-std=c++17",
                "-fsyntax-only",
                "-Wno-attributes",
                "-fno-exceptions",
                "-fno-rtti",
                "-DTENSIX_FIRMWARE",
                "-DLOCAL_MEM_EN=0",
                "-DKERNEL_BUILD",
                "-DPROGRAMMABLE_CORE_TYPE=0",
                "-DDISPATCH_MESSAGE_ADDR=0",
                "-DPCIE_NOC_X=0",
                "-DPCIE_NOC_Y=3",
                "-DNOC_MODE=0",
                f"-DCOMPILE_FOR_{'NCRISC' if on_ncrisc else 'BRISC'}",
                f"-DPROCESSOR_INDEX={1 if on_ncrisc else 0}",
                f"-DNOC_INDEX={1 if on_ncrisc else 0}",
                f"-DKERNEL_COMPILE_TIME_ARGS={','.join(str(v) for v in ct)}",
                f"-I{gen}",
                *_arch_flags(headers, settings.ttmetal_arch),
            ]
            if named:
                argv.append(f"-DKERNEL_COMPILE_TIME_ARG_MAP={','.join(named)}")
            argv.append(str(firmware / ("ncrisck.cc" if on_ncrisc else "brisck.cc")))
            try:
                done = subprocess.run(
                    argv,
                    capture_output=True,
                    text=True,
                    timeout=settings.compile_timeout_s,
                    check=False,
                    cwd=work,
                )
            except subprocess.TimeoutExpired:
                found.append(
                    Diagnostic(
                        code="ttm.syntax.timeout",
                        message=f"g++ did not finish within {settings.compile_timeout_s:g} s",
                        file=path,
                        source="g++",
                    )
                )
                continue
            checked.append(path)
            found += _parse_gxx(done.stdout + done.stderr, tree, path, done.returncode)
    return found, checked


def _parse_gxx(output: str, tree: Path, kernel: str, returncode: int) -> list[Diagnostic]:
    """g++ errors located in the project (errors inside headers go to the kernel line that led there)."""
    found: list[Diagnostic] = []
    prefix = str(tree) + "/"
    last_project_line: int | None = None
    for raw in output.splitlines():
        line: int | None
        match = _GXX_LINE.match(raw)
        mention = re.search(re.escape(prefix) + r"([^:]+):(\d+)", raw)
        if mention is not None:
            last_project_line = int(mention.group(2))
        if match is None or match.group("sev") == "warning":
            continue
        file = match.group("file")
        if file.startswith(prefix):
            rel, line = file[len(prefix) :], int(match.group("line"))
            message = match.group("msg")
        else:
            rel, line = kernel, last_project_line
            message = f"{match.group('msg')} (in {Path(file).name}:{match.group('line')})"
        found.append(
            Diagnostic(
                code="ttm.syntax.error",
                message=message,
                file=rel,
                line=line,
                hint="g++ -m32 -fsyntax-only against the TT-Metal device headers rejected this",
                source="g++",
            )
        )
    if returncode != 0 and not found:
        tail = output.strip().splitlines()[-3:] or [f"exit status {returncode}"]
        found.append(Diagnostic(code="ttm.syntax.error", message="; ".join(tail), file=kernel, source="g++"))
    return found


def _device_present() -> bool:
    return _DEVICE_NODE.exists()


def _build(
    project: Project, tt_metal_home: Path, workdir: Path, settings: Settings
) -> tuple[list[Diagnostic], Path | None]:
    """Configure and build with CMake against a built tt-metal; (diagnostics, executable or None)."""
    tree = workdir / "project"
    project.write(tree)
    build = workdir / "build"
    env = {**os.environ, "TT_METAL_HOME": str(tt_metal_home)}
    prefix = ";".join(
        str(p) for p in (tt_metal_home / "build", tt_metal_home / "build_Release", tt_metal_home)
    )
    steps = (
        [
            "cmake",
            "-S",
            str(tree),
            "-B",
            str(build),
            f"-DCMAKE_PREFIX_PATH={prefix}",
            "-DCMAKE_BUILD_TYPE=Release",
        ],
        ["cmake", "--build", str(build), "-j", str(os.cpu_count() or 2)],
    )
    for argv in steps:
        try:
            done = subprocess.run(
                argv,
                capture_output=True,
                text=True,
                timeout=settings.compile_timeout_s * 5,
                check=False,
                env=env,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            return [Diagnostic(code="ttm.build.failed", message=f"{argv[0]}: {exc}", source="cmake")], None
        if done.returncode != 0:
            out = (done.stdout + done.stderr).strip()
            diags = _parse_gxx(
                out, tree, project.paths(FileRole.HOST)[0] if project.paths(FileRole.HOST) else "", 1
            )
            return diags or [
                Diagnostic(code="ttm.build.failed", message=out[-2000:] or "cmake failed", source="cmake")
            ], None
    executables = [p for p in build.iterdir() if p.is_file() and os.access(p, os.X_OK)]
    return [], executables[0] if executables else None


def _run(executable: Path, project_dir: Path, tt_metal_home: Path, settings: Settings) -> list[Diagnostic]:
    env = {**os.environ, "TT_METAL_HOME": str(tt_metal_home)}
    try:
        done = subprocess.run(
            [str(executable)], capture_output=True, text=True, timeout=settings.ttmetal_run_timeout_s,
            check=False, env=env, cwd=project_dir,
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        return [
            Diagnostic(
                code="ttm.run.timeout",
                message=f"the host program did not finish within {settings.ttmetal_run_timeout_s:g} s "
                "(a circular-buffer deadlock hangs the device)",
                hint="check CB page counts; `tt-smi -r` resets a hung device",
                source="run",
            )
        ]
    if done.returncode != 0:
        tail = (done.stdout + done.stderr).strip()[-2000:]
        return [
            Diagnostic(
                code="ttm.run.failed",
                message=f"the host program exited with status {done.returncode}: {tail}",
                source="run",
            )
        ]
    return []


def check_ttmetal(
    project: Project, settings: Settings, *, build: bool = True, run: bool = True
) -> TtMetalReport:
    """Every check this machine allows (see the module doc). The CLI and the agent both call this."""
    started = time.monotonic()
    headers = installed_headers(settings)
    version = settings.ttmetal_api_version or (headers[1] if headers else None)
    from knowledge.ttmetal.tables import load_tables

    assumed = load_tables().resolve_version(version)
    diagnostics = check_project(project, assumed)
    notes = [f"static checks assume TT-Metal {assumed}"]
    level = Level.STATIC_CHECKED

    def report(valid: bool) -> TtMetalReport:
        return TtMetalReport(valid, level, diagnostics, notes, assumed, time.monotonic() - started)

    if any(d.is_error for d in diagnostics):
        return report(False)
    if headers is None:
        notes.append(
            "no device headers: run `kernelwright toolchains fetch tt-metal` to syntax-check kernels"
        )
    elif not gxx_m32_available():
        notes.append("g++ -m32 cannot compile here (install g++-multilib): kernels not syntax-checked")
    else:
        found, checked = syntax_check(project, headers[0], settings)
        diagnostics += found
        level = Level.SYNTAX_CHECKED
        notes.append(
            f"data-movement kernels syntax-checked with g++ -m32 against ttnn {headers[1]} headers "
            f"({len(checked)} kernel(s)); compute kernels static-checked only (they need SFPI headers)"
        )
        if any(d.is_error for d in found):
            return report(False)
    home = settings.tt_metal_home
    if not build or home is None:
        if home is None:
            notes.append("TT_METAL_HOME not set: not built")
        return report(True)
    if not (home / "tt_metal").is_dir():
        diagnostics.append(
            Diagnostic(
                code="ttm.build.no_tt_metal",
                message=f"TT_METAL_HOME={home} is not a tt-metal checkout (no tt_metal/ folder)",
                severity=Severity.WARNING,
                hint="point TT_METAL_HOME at a built tt-metal checkout, or unset it",
                source="build",
            )
        )
        return report(True)
    with tempfile.TemporaryDirectory(prefix="kernelwright-ttm-build-") as tmp:
        found, executable = _build(project, home, Path(tmp), settings)
        diagnostics += found
        if found or executable is None:
            return report(False)
        level = Level.BUILT
        if not run:
            return report(True)
        if not _device_present():
            notes.append(f"no Tenstorrent device ({_DEVICE_NODE} absent): built, not run")
            return report(True)
        found = _run(executable, Path(tmp) / "project", home, settings)
        diagnostics += found
        if found:
            return report(False)
        level = Level.RAN
        notes.append("the host program ran and exited 0; its output was not compared with a reference")
        return report(True)


def compile_result(report: TtMetalReport) -> CompileResult:
    """The report as the compile step's result (`toolchain` names the level, `log` the notes)."""
    return CompileResult(
        ok=report.valid,
        toolchain=f"tt-metal checks ({report.level.value}, API {report.api_version})",
        diagnostics=report.diagnostics,
        duration_s=report.duration_s,
        log="\n".join(report.notes),
        level=report.level.value,
    )


def ttmetal_verdict(result: CompileResult) -> Verdict:
    """An honest verdict for a project that passed every check this machine allows: never `correct`.

    No Tenstorrent device was used to compare it with the reference, so the outcome is `no_gpu` (the
    candidate is not at fault; the run ends as compiled-but-unverified) and `level` says how far it got.
    """
    level = result.level or Level.STATIC_CHECKED.value
    return Verdict(
        outcome=Outcome.NO_GPU,
        level=level,
        message=f"tt-metal project passed the checks up to level {level}; it was not compared with the "
        f"reference on a Tenstorrent device. {result.log}".strip(),
        diagnostics=[d for d in result.diagnostics if not d.is_error],
    )
