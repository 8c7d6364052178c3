"""docker-compose.yml: read as compose v2 would (YAML semantics) and checked by docker-compose v1 itself."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
COMPOSE = REPO / "docker-compose.yml"
LONG_RUNNING = ("postgres", "chroma", "api", "ray-head", "gpu-worker")


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    loaded = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    assert isinstance(loaded, dict)
    return loaded


def test_services_and_profiles(spec: dict[str, Any]) -> None:
    services = spec["services"]
    assert set(LONG_RUNNING) <= set(services)
    assert services["ray-head"]["profiles"] == ["ray"] and services["gpu-worker"]["profiles"] == ["ray"]
    for name in ("postgres", "chroma", "api"):
        assert "profiles" not in services[name], f"{name} must run without a profile"
    assert services["api"]["command"][:2] == ["kernelwright", "serve"]
    assert services["chroma"]["command"][:2] == ["chroma", "run"]
    assert "--host" in services["chroma"]["command"] and "0.0.0.0" in services["chroma"]["command"]
    assert "--head" in services["ray-head"]["command"]
    assert "--address=ray-head:6379" in services["gpu-worker"]["command"]


def test_healthchecks_and_healthy_dependencies(spec: dict[str, Any]) -> None:
    services = spec["services"]
    for name in LONG_RUNNING:
        test = services[name]["healthcheck"]["test"]
        assert test[0] in ("CMD", "CMD-SHELL") and len(test) > 1, name
    for name, service in services.items():
        for dependency, rule in service.get("depends_on", {}).items():
            assert rule == {"condition": "service_healthy"}, f"{name} -> {dependency}"
            assert "healthcheck" in services[dependency]
            # a service may not depend on one that only a profile it lacks would start
            assert set(services[dependency].get("profiles", [])) <= set(service.get("profiles", []))


def test_gpus_by_device_reservation_not_runtime(spec: dict[str, Any]) -> None:
    services = spec["services"]
    for name in ("api", "gpu-worker"):
        devices = services[name]["deploy"]["resources"]["reservations"]["devices"]
        assert devices == [{"driver": "nvidia", "count": "all", "capabilities": ["gpu"]}]
    assert not any("runtime" in service for service in services.values())


def test_secrets_are_required_and_images_are_built_here(spec: dict[str, Any]) -> None:
    text = COMPOSE.read_text(encoding="utf-8")
    assert "${POSTGRES_PASSWORD:?" in spec["services"]["postgres"]["environment"]["POSTGRES_PASSWORD"]
    assert "${POSTGRES_PASSWORD:?" in spec["services"]["api"]["environment"]["KERNELWRIGHT_DATABASE_URL"]
    assert "sk-" not in text and "gsk_" not in text  # no key ever written into the file
    dockerfiles = {
        service["build"]["dockerfile"] for service in spec["services"].values() if "build" in service
    }
    assert dockerfiles == {"docker/Dockerfile.service", "sandbox/images/Dockerfile.gpu"}
    assert (REPO / "docker" / "Dockerfile.service").is_file()
    base = spec["services"]["sandbox-image"]["image"]
    assert spec["services"]["api"]["build"]["args"]["BASE_IMAGE"].endswith(f":-{base}}}")


def _compose(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("docker-compose")
    if binary is None:
        pytest.skip("docker-compose (v1) is not installed: apt-get install docker-compose")
    clean = {k: v for k, v in os.environ.items() if k not in ("POSTGRES_PASSWORD", "COMPOSE_PROFILES")}
    return subprocess.run(
        [binary, "-f", str(COMPOSE), *args],
        capture_output=True,
        text=True,
        env={**clean, **env},
        cwd=REPO,
        timeout=120,
        check=False,
    )


def test_compose_v1_accepts_the_file() -> None:
    done = _compose("config", POSTGRES_PASSWORD="secret")
    assert done.returncode == 0, done.stderr
    rendered = yaml.safe_load(done.stdout)
    assert (
        "postgresql://kernelwright:secret@postgres:5432/kernelwright"
        in (rendered["services"]["api"]["environment"]["KERNELWRIGHT_DATABASE_URL"])
    )
    assert (
        rendered["services"]["api"]["deploy"]["resources"]["reservations"]["devices"][0]["driver"] == "nvidia"
    )
    with_ray = _compose("--profile", "ray", "config", POSTGRES_PASSWORD="secret")
    assert with_ray.returncode == 0, with_ray.stderr


def test_compose_v1_refuses_a_missing_secret() -> None:
    done = _compose("config")
    assert done.returncode != 0
    assert "set POSTGRES_PASSWORD" in done.stderr
