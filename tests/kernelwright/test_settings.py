from __future__ import annotations

from pathlib import Path

import pytest

from kernelwright.settings import Settings


def test_prefix_home_and_vendor_key_names(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("KERNELWRIGHT_HOME", str(tmp_path))
    monkeypatch.setenv("KERNELWRIGHT_MAX_TURNS", "3")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    settings = Settings(_env_file=None)
    assert settings.home == tmp_path and settings.max_turns == 3
    assert settings.checkpoint_db == tmp_path / "checkpoints.sqlite"
    assert settings.traces_dir.parent == tmp_path
    assert settings.openai_api_key is not None and settings.openai_api_key.get_secret_value() == "sk-test"
    assert "sk-test" not in repr(settings)


def test_dotenv_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    env = tmp_path / ".env"
    env.write_text("KERNELWRIGHT_MODEL=llama3\nKERNELWRIGHT_OPENAI_BASE_URL=http://localhost:11434/v1\n")
    settings = Settings(_env_file=env)
    assert settings.model == "llama3" and settings.openai_base_url == "http://localhost:11434/v1"
