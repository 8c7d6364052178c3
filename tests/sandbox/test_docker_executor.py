"""The Docker executor's own edges: an unreachable daemon, a missing image, stale containers swept."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import time
from pathlib import Path

import docker.errors
import pytest

from kernelwright.errors import DockerUnavailableError
from sandbox.docker_executor import LABEL, DockerExecutor, DockerOptions, docker_client, sweep_stale
from sandbox.executor import Limits, ProcessSpec


def test_unreachable_daemon_says_what_to_do(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path / 'no-such.sock'}")
    with pytest.raises(DockerUnavailableError) as caught:
        docker_client(timeout=5)
    message = str(caught.value)
    assert "no-such.sock" in message and "dockerd" in message and "KERNELWRIGHT_EXECUTOR=local" in message


def test_spawn_without_a_daemon_raises_the_same_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path / 'no-such.sock'}")
    executor = DockerExecutor(DockerOptions(image="kernelwright-sandbox:any"))
    spec = ProcessSpec(["python3", "-c", "pass"], tmp_path, {}, Limits())
    with pytest.raises(DockerUnavailableError):
        asyncio.run(executor.spawn(spec))


@pytest.mark.docker
def test_missing_image_names_the_build_command(tmp_path: Path) -> None:
    try:
        docker_client(timeout=10).close()
    except DockerUnavailableError as exc:
        pytest.skip(str(exc))
    executor = DockerExecutor(DockerOptions(image="kernelwright-sandbox:does-not-exist"))
    spec = ProcessSpec(["python3", "-c", "pass"], tmp_path, {}, Limits())
    with pytest.raises(DockerUnavailableError, match="build-image"):
        asyncio.run(executor.spawn(spec))


@pytest.mark.docker
def test_containers_of_a_dead_service_are_swept() -> None:
    try:
        client = docker_client(timeout=10)
    except DockerUnavailableError as exc:
        pytest.skip(str(exc))
    images = client.images.list(name="kernelwright-sandbox")
    if not images:
        client.close()
        pytest.skip("no kernelwright-sandbox image: run scripts/ci_docker.sh")
    labels = {
        LABEL: "worker",
        "kernelwright.host": socket.gethostname(),
        "kernelwright.pid": "999999999",  # no such process: its service is gone
        "kernelwright.started": str(int(time.time())),
    }
    stale = client.containers.create(images[0].id, command=["sleep", "600"], labels=labels)
    mine = client.containers.create(
        images[0].id,
        command=["sleep", "600"],
        labels={**labels, "kernelwright.pid": str(os.getpid())},
    )
    try:
        removed = sweep_stale(client, max_lifetime_s=3600)
        assert stale.id in removed and mine.id not in removed
        assert not client.containers.list(all=True, filters={"id": stale.id})
    finally:
        for container in (stale, mine):
            with contextlib.suppress(docker.errors.NotFound):
                container.remove(force=True)
        client.close()
