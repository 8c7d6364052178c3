"""The sandbox image, built without pulling anything from a registry.

`mmdebstrap` makes a minimal Debian bookworm root (the essential set plus `python3` and `libstdc++6`);
a hook adds the unprivileged sandbox user, the worker runtime (`sandbox/__init__.py` and
`sandbox/runtime/`) and the worker's Python packages (torch, numpy, triton and what they require,
copied from this interpreter's site-packages, so a CUDA build of torch on a GPU host makes a GPU
image); `docker import` turns the tarball into `kernelwright-sandbox:<content tag>`. The tag is a hash
of everything that goes in (the recipe, the package versions, the runtime's source), so a build whose
image already exists is skipped: CI pays for it once per daemon. Debian's python3 is 3.11, so the
copied packages must be cp311 builds.

The GPU image for hosts that can pull comes from `Dockerfile.gpu` (NVIDIA's CUDA image + torch + triton).
"""

from __future__ import annotations

import hashlib
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement

import sandbox
from kernelwright.errors import SandboxError

__all__ = [
    "IMAGE_REPO",
    "BuildResult",
    "build_gpu",
    "build_offline",
    "default_image",
    "gpu_tag",
    "offline_tag",
    "runtime_files",
    "worker_distributions",
]

IMAGE_REPO = "kernelwright-sandbox"
APT_PACKAGES = ("python3", "libstdc++6")  # libstdc++: torch and triton are C++ extensions
RECIPE = f"offline-v2: mmdebstrap --variant=essential --include={','.join(APT_PACKAGES)} bookworm"
WORKER_ROOTS = ("torch", "numpy", "triton")
SANDBOX_UID = 10001  # same as sandbox.docker_executor.SANDBOX_UID (kept here to avoid importing docker)
IMAGE_PYTHONPATH = "/opt/kernelwright:/opt/kernelwright/site-packages"
_PYTHON = (3, 11)
_HERE = Path(__file__).resolve().parent
DOCKERFILE_GPU = _HERE / "Dockerfile.gpu"


@dataclass(frozen=True)
class BuildResult:
    image: str
    built: bool  # False: an image with the same content tag existed, nothing was done
    seconds: float


def runtime_files() -> list[tuple[str, Path]]:
    """(path in the image under /opt/kernelwright, file here) for the worker runtime."""
    package = Path(sandbox.__file__).resolve().parent
    files = [("sandbox/__init__.py", package / "__init__.py")]
    files += [(f"sandbox/runtime/{p.name}", p) for p in sorted((package / "runtime").glob("*.py"))]
    return files


def worker_distributions(roots: Iterable[str] = WORKER_ROOTS) -> list[metadata.Distribution]:
    """The installed distributions the worker needs: `roots` and their requirements, transitively
    (extras left out, environment markers evaluated for this interpreter)."""
    seen: dict[str, metadata.Distribution] = {}
    todo = list(roots)
    while todo:
        name = todo.pop()
        key = name.lower().replace("_", "-")
        if key in seen:
            continue
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError as exc:
            raise SandboxError(
                f"the worker package {name!r} is not installed in {sys.executable}; install the worker "
                "extra (`pip install -e '.[worker]'`) before building the offline sandbox image"
            ) from exc
        seen[key] = dist
        for text in dist.requires or []:
            requirement = Requirement(text)
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                todo.append(requirement.name)
    return sorted(seen.values(), key=lambda d: d.metadata["Name"].lower())


def _hash_runtime(digest: hashlib._Hash) -> None:
    for name, path in runtime_files():
        digest.update(name.encode() + b"\0" + path.read_bytes() + b"\0")


def offline_tag(dists: list[metadata.Distribution] | None = None) -> str:
    """The content tag of the offline image this host would build."""
    digest = hashlib.sha256(RECIPE.encode())
    digest.update(f"python{sys.version_info[0]}.{sys.version_info[1]}".encode())
    try:
        chosen = worker_distributions() if dists is None else dists
        for dist in chosen:
            digest.update(f"{dist.metadata['Name']}=={dist.version}\n".encode())
    except SandboxError:
        digest.update(b"worker packages missing")
    _hash_runtime(digest)
    return f"offline-{digest.hexdigest()[:12]}"


def gpu_tag() -> str:
    digest = hashlib.sha256(DOCKERFILE_GPU.read_bytes())
    _hash_runtime(digest)
    return f"gpu-{digest.hexdigest()[:12]}"


def default_image(*, gpu: bool = False) -> str:
    """The image the Docker executor uses when `KERNELWRIGHT_DOCKER_IMAGE` is unset."""
    return f"{IMAGE_REPO}:{gpu_tag() if gpu else offline_tag()}"


def _top_level_entries(dist: metadata.Distribution) -> tuple[Path, set[str]]:
    site = Path(str(dist.locate_file(""))).resolve()
    names = {Path(str(f)).parts[0] for f in dist.files or [] if not str(f).startswith("..")}
    return site, {n for n in names if (site / n).exists()}


def _image_exists(image: str) -> bool:
    done = subprocess.run(["docker", "image", "inspect", image], capture_output=True, check=False)
    return done.returncode == 0


def _run(argv: list[str], what: str, timeout: float) -> None:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    except FileNotFoundError as exc:
        raise SandboxError(f"{what}: {argv[0]} is not installed ({exc}); apt-get install {argv[0]}") from exc
    except subprocess.TimeoutExpired as exc:
        raise SandboxError(f"{what} took longer than {timeout:g} s") from exc
    if done.returncode != 0:
        raise SandboxError(f"{what} failed ({done.returncode}): {(done.stderr or done.stdout)[-3000:]}")


def build_offline(
    *, force: bool = False, mirror: str | None = None, workdir: Path | None = None
) -> BuildResult:
    """Build (or find) the offline image; see the module docstring. Needs root for mmdebstrap here."""
    started = time.monotonic()
    if sys.version_info[:2] != _PYTHON:
        raise SandboxError(
            f"the offline image runs Debian bookworm's Python {_PYTHON[0]}.{_PYTHON[1]}, but the worker "
            f"packages here are for {sys.version_info[0]}.{sys.version_info[1]}: build from a 3.11 "
            "environment, or use the GPU Dockerfile (`kernelwright sandbox build-image --gpu`)"
        )
    dists = worker_distributions()
    image = f"{IMAGE_REPO}:{offline_tag(dists)}"
    if not force and _image_exists(image):
        return BuildResult(image, built=False, seconds=time.monotonic() - started)
    with tempfile.TemporaryDirectory(prefix="kw-image-", dir=workdir) as tmp:
        stage = Path(tmp) / "stage"
        (stage / "site-packages").mkdir(parents=True)
        for name, path in runtime_files():
            (stage / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, stage / name)
        for dist in dists:
            site, names = _top_level_entries(dist)
            for name in names:
                target = stage / "site-packages" / name
                if (site / name).is_dir():
                    shutil.copytree(site / name, target, symlinks=True, dirs_exist_ok=True)
                else:
                    shutil.copy2(site / name, target)
        passwd = f"sandbox:x:{SANDBOX_UID}:{SANDBOX_UID}:kernelwright sandbox:/tmp:/usr/sbin/nologin"
        hook = (
            f'echo {shlex.quote(passwd)} >> "$1/etc/passwd" && '
            f'echo "sandbox:x:{SANDBOX_UID}:" >> "$1/etc/group" && '
            f'mkdir -p "$1/opt/kernelwright" && cp -a {shlex.quote(str(stage))}/. "$1/opt/kernelwright/" && '
            'rm -rf "$1/var/cache/apt/archives"/*.deb "$1/var/lib/apt/lists"/*'
        )
        rootfs = Path(tmp) / "rootfs.tar"
        argv = [
            "mmdebstrap",
            "--variant=essential",
            f"--include={','.join(APT_PACKAGES)}",
            "--format=tar",
            f"--customize-hook={hook}",
            "bookworm",
            str(rootfs),
        ]
        if mirror:
            argv.append(mirror)
        _run(argv, "mmdebstrap (the Debian root of the sandbox image)", timeout=1800)
        changes = [
            f"USER {SANDBOX_UID}:{SANDBOX_UID}",
            "WORKDIR /tmp",
            "ENV PATH=/usr/local/bin:/usr/bin:/bin",
            f"ENV PYTHONPATH={IMAGE_PYTHONPATH}",
            "ENV PYTHONDONTWRITEBYTECODE=1",
            f"LABEL kernelwright.sandbox.image={image.split(':', 1)[1]}",
        ]
        argv = ["docker", "import", *(arg for c in changes for arg in ("--change", c)), str(rootfs), image]
        _run(argv, "docker import (the sandbox image)", timeout=1800)
    return BuildResult(image, built=True, seconds=time.monotonic() - started)


def build_gpu(*, force: bool = False, context: Path | None = None) -> BuildResult:
    """`docker build` of Dockerfile.gpu (pulls NVIDIA's CUDA image and torch: needs the network)."""
    started = time.monotonic()
    image = f"{IMAGE_REPO}:{gpu_tag()}"
    if not force and _image_exists(image):
        return BuildResult(image, built=False, seconds=time.monotonic() - started)
    root = context or Path(sandbox.__file__).resolve().parent.parent
    argv = ["docker", "build", "-f", str(DOCKERFILE_GPU), "-t", image, str(root)]
    _run(argv, "docker build (the GPU sandbox image)", timeout=3600)
    return BuildResult(image, built=True, seconds=time.monotonic() - started)
