"""`kernelwright sandbox ...` on the command line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from api.cli import app

runner = CliRunner()


def test_doctor_without_a_daemon_fails_with_the_fix(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path / 'no-such.sock'}")
    result = runner.invoke(app, ["sandbox", "doctor", "--format", "json"])
    assert result.exit_code == 1
    report = json.loads(result.output[result.output.index("{") :])
    assert report["healthy"] is False
    assert report["checks"][0]["name"] == "daemon" and "dockerd" in report["checks"][0]["detail"]


def test_build_image_refuses_two_kinds_at_once() -> None:
    result = runner.invoke(app, ["sandbox", "build-image", "--gpu", "--offline"])
    assert result.exit_code == 2


@pytest.mark.docker
def test_doctor_on_a_working_daemon(monkeypatch: pytest.MonkeyPatch) -> None:
    from sandbox.docker_executor import docker_client

    try:
        client = docker_client(timeout=10)
    except Exception as exc:  # noqa: BLE001 - no daemon: nothing to check
        pytest.skip(str(exc))
    images = client.images.list(name="kernelwright-sandbox")
    client.close()
    if not images:
        pytest.skip("no kernelwright-sandbox image: run scripts/ci_docker.sh")
    monkeypatch.setenv("KERNELWRIGHT_DOCKER_IMAGE", images[0].tags[0])
    result = runner.invoke(app, ["sandbox", "doctor", "--format", "json"])
    report = json.loads(result.output[result.output.index("{") :])
    assert result.exit_code == 0, report
    names = {c["name"] for c in report["checks"] if c["ok"]}
    assert {"network isolation", "read-only root", "non-root", "worker runtime"} <= names
