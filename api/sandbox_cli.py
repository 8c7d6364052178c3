"""`kernelwright sandbox ...`: build the worker image and check that the Docker sandbox works here.

    kernelwright sandbox build-image [--offline | --gpu] [--force]
    kernelwright sandbox doctor [--format json]

`build-image` is cached by content tag (a second run with nothing changed returns at once). `doctor`
asks the daemon, looks for the image, and starts one real worker container that reports what it can
do: its uid, whether it reaches the network, whether it can write its root file system. Exit codes:
0 everything is fine, 1 a check failed, 2 usage errors.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from kernelwright.errors import KernelwrightError
from kernelwright.settings import Settings

__all__ = ["sandbox_app"]

sandbox_app = typer.Typer(
    no_args_is_help=True, add_completion=False, help="The Docker sandbox: build its image, check it."
)
_err = Console(stderr=True)
_out = Console(soft_wrap=True, highlight=False)

# runs inside the container: reports, as one JSON line, what a candidate there could do
_PROBE = """
import json, os, socket
def attempt(fn):
    try:
        fn()
        return True
    except OSError:
        return False
def connect():
    socket.create_connection(("1.1.1.1", 53), timeout=2).close()
def write_root():
    open("/kernelwright-probe", "w").close()
def write_tmp():
    open("/tmp/probe", "w").close()
try:
    import torch
    torch_version = torch.__version__
except ImportError as exc:
    torch_version = f"not importable: {exc}"
print(json.dumps({"uid": os.getuid(), "network": attempt(connect), "root_writable": attempt(write_root),
                  "tmp_writable": attempt(write_tmp), "torch": torch_version}), flush=True)
"""


@dataclass
class _Check:
    name: str
    ok: bool
    detail: str


@sandbox_app.callback()
def _group() -> None:
    """Docker sandbox tools: `build-image` and `doctor`."""


@sandbox_app.command("build-image")
def build_image(
    gpu: Annotated[
        bool, typer.Option("--gpu", help="docker build Dockerfile.gpu (pulls the CUDA image)")
    ] = False,
    offline: Annotated[
        bool, typer.Option("--offline", help="mmdebstrap + docker import, no registry (the default)")
    ] = False,
    force: Annotated[bool, typer.Option("--force", help="rebuild even if the tagged image exists")] = False,
    mirror: Annotated[str | None, typer.Option(help="Debian mirror for the offline build")] = None,
) -> None:
    """Build the sandbox image (skipped when an image with the same content tag exists)."""
    from sandbox.images.offline import build_gpu, build_offline

    if gpu and offline:
        _err.print("[red]choose one of --gpu and --offline[/red]")
        raise typer.Exit(2)
    try:
        result = build_gpu(force=force) if gpu else build_offline(force=force, mirror=mirror)
    except KernelwrightError as exc:
        _err.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from exc
    verb = "built" if result.built else "up to date (cached)"
    _out.print(f"{result.image} {verb} in {result.seconds:.1f} s")
    _out.print(f"use it: KERNELWRIGHT_EXECUTOR=docker KERNELWRIGHT_DOCKER_IMAGE={result.image}")


async def _probe_container(settings: Settings, image: str) -> dict[str, object]:
    from sandbox.docker_executor import DockerExecutor, DockerOptions
    from sandbox.executor import Limits, ProcessSpec

    executor = DockerExecutor(
        DockerOptions(image=image, memory="512m", pids=64, cpus=1.0, tmpfs_size="16m", max_lifetime_s=120)
    )
    with tempfile.TemporaryDirectory(prefix="kw-doctor-") as tmp:
        worker = await executor.spawn(ProcessSpec(["python3", "-c", _PROBE], Path(tmp), {}, Limits()))
        try:
            answer = await worker.receive(120)
        finally:
            await worker.close()
            await executor.aclose()
    return answer


def _diagnose(settings: Settings) -> list[_Check]:
    from sandbox.docker_executor import docker_client
    from sandbox.images.offline import default_image

    checks: list[_Check] = []
    try:
        client = docker_client(timeout=10)
    except KernelwrightError as exc:
        return [_Check("daemon", False, str(exc))]
    version = client.version().get("Version", "?")
    checks.append(_Check("daemon", True, f"Docker {version} answers"))
    image = settings.docker_image or default_image(gpu=settings.device == "cuda")
    present = bool(client.images.list(name=image))
    client.close()
    fix = "run `kernelwright sandbox build-image --offline` (or --gpu)"
    checks.append(_Check("image", present, image if present else f"{image} is missing: {fix}"))
    if not present:
        return checks
    try:
        report = asyncio.run(_probe_container(settings, image))
    except KernelwrightError as exc:
        checks.append(_Check("container", False, f"a worker container did not run: {exc}"))
        return checks
    checks.append(_Check("container", True, f"a worker container ran as uid {report.get('uid')}"))
    torch_version = str(report.get("torch"))
    checks.append(_Check("worker runtime", not torch_version.startswith("not"), f"torch {torch_version}"))
    checks.append(_Check("non-root", report.get("uid") != 0, f"uid {report.get('uid')}"))
    checks.append(
        _Check(
            "network isolation", report.get("network") is False, f"outbound connect: {report.get('network')}"
        )
    )
    checks.append(
        _Check(
            "read-only root",
            report.get("root_writable") is False,
            f"root writable: {report.get('root_writable')}",
        )
    )
    checks.append(
        _Check(
            "scratch tmpfs",
            report.get("tmp_writable") is True,
            f"/tmp writable: {report.get('tmp_writable')}",
        )
    )
    return checks


@sandbox_app.command()
def doctor(
    output_format: Annotated[str, typer.Option("--format", help="text or json")] = "text",
) -> None:
    """Is the daemon reachable, is the image there, is a worker container isolated?"""
    if output_format not in ("text", "json"):
        _err.print(f"[red]--format must be text or json, not {output_format!r}[/red]")
        raise typer.Exit(2)
    checks = _diagnose(Settings())
    healthy = all(c.ok for c in checks)
    if output_format == "json":
        _out.print(json.dumps({"healthy": healthy, "checks": [asdict(c) for c in checks]}))
    else:
        for check in checks:
            mark = "[green]ok[/green]  " if check.ok else "[red]FAIL[/red]"
            _out.print(f"{mark} {check.name}: {check.detail}")
    if not healthy:
        raise typer.Exit(1)
