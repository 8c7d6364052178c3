"""Fetching TT-Metal device headers: the `ttnn` wheel from PyPI, downloaded (never installed).

The wheel is built for CPython 3.10 and 3.12 on manylinux x86_64 only, so it cannot be installed into
our interpreter; `pip download --no-deps --only-binary=:all: --python-version 3.12 --platform ...`
fetches it anyway (about 100 MB), and the headers the TT-Metal JIT compiles kernels against are
extracted into `home/toolchains/tt-metal/<version>/` (about 40 MB; the precompiled firmware is left out).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from kernelwright.errors import SandboxError, UserError
from kernelwright.settings import Settings

__all__ = [
    "HEADER_PREFIXES",
    "FetchResult",
    "extract_headers",
    "fetch_ttmetal",
    "headers_root",
    "installed_headers",
]

HEADER_PREFIXES = (
    "ttnn/tt_metal/hw/",
    "ttnn/tt_metal/hostdevcommon/",
    "ttnn/tt_metal/api/",
    "ttnn/tt_metal/tt-llk/",
    "ttnn/tt_metal/fabric/",
    "ttnn/tt_metal/sfpi-version",
)
_PLATFORMS = ("manylinux_2_34_x86_64", "manylinux_2_28_x86_64", "manylinux2014_x86_64")
_PYTHONS = ("3.12", "3.10")
_WHEEL = re.compile(r"^ttnn-(?P<version>[^-]+)-")
_VERSION_FILE = "KERNELWRIGHT_TTNN_VERSION"
_DOWNLOAD_TIMEOUT_S = 1800.0


@dataclass(frozen=True)
class FetchResult:
    version: str
    root: Path
    files: int
    wheel: str


def headers_root(settings: Settings) -> Path:
    return settings.toolchains_dir / "tt-metal"


def installed_headers(settings: Settings) -> tuple[Path, str] | None:
    """(root, ttnn version) of the headers to use: `settings.ttmetal_headers`, else the newest fetched."""
    if settings.ttmetal_headers is not None:
        root = settings.ttmetal_headers.expanduser()
        if not (root / "tt_metal" / "hw" / "inc").is_dir():
            raise UserError(
                f"KERNELWRIGHT_TTMETAL_HEADERS={root} holds no tt_metal/hw/inc; point it at a folder made by "
                "`kernelwright toolchains fetch tt-metal`"
            )
        marker = root / _VERSION_FILE
        return root, marker.read_text(encoding="utf-8").strip() if marker.is_file() else "unknown"
    base = headers_root(settings)
    if not base.is_dir():
        return None
    found = [
        d
        for d in base.iterdir()
        if (d / _VERSION_FILE).is_file() and (d / "tt_metal" / "hw" / "inc").is_dir()
    ]
    if not found:
        return None
    best = max(found, key=lambda d: tuple(int(p) if p.isdigit() else 0 for p in d.name.split(".")))
    return best, (best / _VERSION_FILE).read_text(encoding="utf-8").strip()


def extract_headers(wheel: Path, target_parent: Path) -> FetchResult:
    """Extract the device headers of a downloaded ttnn wheel into `target_parent/<version>/`."""
    match = _WHEEL.match(wheel.name)
    if match is None:
        raise UserError(f"{wheel.name} is not a ttnn wheel (expected ttnn-<version>-...whl)")
    version = match.group("version")
    target = target_parent / version
    staging = Path(tempfile.mkdtemp(prefix=f".{version}-", dir=target_parent))
    count = 0
    try:
        with zipfile.ZipFile(wheel) as archive:
            for info in archive.infolist():
                name = info.filename
                if info.is_dir() or not name.startswith(HEADER_PREFIXES) or ".." in Path(name).parts:
                    continue
                out = staging / name.removeprefix("ttnn/")
                out.parent.mkdir(parents=True, exist_ok=True)
                with archive.open(info) as src, out.open("wb") as dst:
                    shutil.copyfileobj(src, dst)
                count += 1
        if count == 0:
            raise SandboxError(
                f"{wheel.name} holds no tt_metal device headers; this ttnn release has another layout"
            )
        (staging / _VERSION_FILE).write_text(version + "\n", encoding="utf-8")
        if target.exists():
            shutil.rmtree(target)
        staging.rename(target)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return FetchResult(version=version, root=target, files=count, wheel=wheel.name)


def fetch_ttmetal(settings: Settings, version: str | None = None, *, keep_wheel: bool = False) -> FetchResult:
    """Download the ttnn wheel with pip (cp312, else cp310; no install) and extract its headers."""
    parent = headers_root(settings)
    parent.mkdir(parents=True, exist_ok=True)
    requirement = f"ttnn=={version}" if version else "ttnn"
    errors: list[str] = []
    with tempfile.TemporaryDirectory(prefix="kernelwright-ttnn-") as tmp:
        for python in _PYTHONS:
            for platform in _PLATFORMS:
                argv = [
                    sys.executable,
                    "-m",
                    "pip",
                    "download",
                    requirement,
                    "--no-deps",
                    "--only-binary=:all:",
                    "--python-version",
                    python,
                    "--platform",
                    platform,
                    "--disable-pip-version-check",
                    "-d",
                    tmp,
                ]
                try:
                    done = subprocess.run(
                        argv, capture_output=True, text=True, timeout=_DOWNLOAD_TIMEOUT_S, check=False
                    )
                except subprocess.TimeoutExpired:
                    errors.append(f"python {python} / {platform}: timed out")
                    continue
                wheels = sorted(Path(tmp).glob("ttnn-*.whl"))
                if done.returncode == 0 and wheels:
                    result = extract_headers(wheels[-1], parent)
                    if keep_wheel:
                        shutil.copy2(wheels[-1], parent / wheels[-1].name)
                    return result
                errors.append(f"python {python} / {platform}: {done.stderr.strip().splitlines()[-1:]}")
    raise SandboxError(
        f"could not download {requirement} from the package index: "
        + "; ".join(errors)
        + ". Check network access to PyPI (or a mirror via PIP_INDEX_URL), or download the wheel yourself "
        "and run `kernelwright toolchains fetch tt-metal --wheel FILE`"
    )
