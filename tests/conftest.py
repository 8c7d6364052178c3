"""Suite-wide fixtures: no real LLM requests, state in a temp folder, GPU tests skip without a GPU."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.providers import base as provider_base
from kernelwright.settings import Settings

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "examples"
SHARED = REPO.parent / "shared"


def _gpu_visible() -> bool:
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return False
    return subprocess.run([smi, "-L"], capture_output=True, check=False).returncode == 0


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if _gpu_visible():
        return
    skip = pytest.mark.skip(reason="needs an NVIDIA GPU (run on the device machine)")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _block_model_requests(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Real LLM calls fail in tests unless a test sets ALLOW_MODEL_REQUESTS itself."""
    monkeypatch.setattr(provider_base, "ALLOW_MODEL_REQUESTS", False)
    for var in ("OPENAI_API_KEY", "GROQ_API_KEY", "KERNELWRIGHT_OPENAI_API_KEY", "KERNELWRIGHT_GROQ_API_KEY"):
        monkeypatch.delenv(var, raising=False)
    yield


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    """Settings isolated from the environment and .env, with state under a temp folder."""
    return Settings(
        _env_file=None,
        home=tmp_path / "home",
        llm_backoff_base_s=0.0,
        timing_trials=5,
        timing_warmup=1,
        correctness_draws=3,
        verify_timeout_s=120,
    )


@pytest.fixture
def examples() -> Path:
    return EXAMPLES
