"""The one `Settings` class: every knob, read once from the environment (prefix `KERNELWRIGHT_`) and `.env`.

`KERNELWRIGHT_HOME` is the root of all local state; every path below derives from it unless set.
Provider keys also accept the vendors' usual names (`OPENAI_API_KEY`, `GROQ_API_KEY`).
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["Settings", "get_settings"]


class Settings(BaseSettings):
    """All configuration of kernelwright. Construct explicitly in tests; use `get_settings()` at edges."""

    model_config = SettingsConfigDict(
        env_prefix="KERNELWRIGHT_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    home: Path = Field(default_factory=lambda: Path.home() / ".kernelwright")

    # LLM providers
    provider: str = "openai"
    model: str = "gpt-4o-mini"
    openai_api_key: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("KERNELWRIGHT_OPENAI_API_KEY", "OPENAI_API_KEY")
    )
    openai_base_url: str | None = Field(
        default=None, validation_alias=AliasChoices("KERNELWRIGHT_OPENAI_BASE_URL", "OPENAI_BASE_URL")
    )
    groq_api_key: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("KERNELWRIGHT_GROQ_API_KEY", "GROQ_API_KEY")
    )
    groq_base_url: str | None = None
    llm_timeout_s: float = 120.0
    llm_max_retries: int = 4
    llm_backoff_base_s: float = 1.0
    llm_temperature: float = 0.2
    llm_max_output_tokens: int = 8192

    # Budgets of one generation run
    max_turns: int = 6
    max_tokens: int = 200_000
    max_wall_s: float = 1800.0
    max_cost_usd: float = 5.0

    # Toolchains: explicit paths win; otherwise PATH, then CUDA_HOME / /usr/local/cuda are searched
    cuda_home: Path | None = None
    ptxas: Path | None = None
    nvcc: Path | None = None
    gpu_arch: str | None = Field(default=None, description="e.g. sm_90; detected from the GPU when unset")
    compile_timeout_s: float = 120.0

    # Verification
    verify_timeout_s: float = 300.0
    compile_baseline: bool = True  # time torch.compile of the reference too (GPU only)
    result_store: bool = True  # reuse verdicts of identical checks (content-addressed)
    correctness_draws: int = 5
    timing_trials: int = 100
    timing_warmup: int = 10
    device: Literal["auto", "cpu", "cuda"] = "auto"
    executor: Literal["zygote", "local"] = "zygote"  # zygote: workers forked from a warm process
    worker_python: str | None = Field(default=None, description="Python interpreter of the worker processes")

    # Retrieval (RAG): vectors in Chroma (embedded under `home/chroma`, or a server at `chroma_url`),
    # lexical search and the ingest manifest in SQLite FTS5 (`home/rag.sqlite`).
    chroma_url: str | None = Field(
        default=None, description="e.g. http://localhost:8000; embedded when unset"
    )
    embedding: Literal["hashing", "minilm", "openai"] = "hashing"
    embedding_model: str = "text-embedding-3-small"
    embedding_base_url: str | None = Field(
        default=None, description="OpenAI-compatible embeddings server; openai_base_url when unset"
    )

    # Sandbox backends, GPU leases and scale-out (issue 5)

    # Service: REST API, storage, keys (issue 7)

    # TT-Metal target (issue 8)

    # Logging
    log_level: str = "WARNING"
    log_format: Literal["console", "json"] = "console"

    @property
    def checkpoint_db(self) -> Path:
        return self.home / "checkpoints.sqlite"

    @property
    def traces_dir(self) -> Path:
        return self.home / "traces"

    @property
    def artifacts_dir(self) -> Path:
        return self.home / "artifacts"

    @property
    def scratch_dir(self) -> Path:
        return self.home / "scratch"

    @property
    def chroma_dir(self) -> Path:
        return self.home / "chroma"

    @property
    def rag_db(self) -> Path:
        return self.home / "rag.sqlite"

    @property
    def lessons_db(self) -> Path:
        return self.home / "lessons.sqlite"

    def ensure_dirs(self) -> None:
        """Create the local state folders (idempotent)."""
        for path in (self.home, self.traces_dir, self.artifacts_dir, self.scratch_dir):
            path.mkdir(parents=True, exist_ok=True)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once. Library code receives `Settings` as an argument instead."""
    return Settings()
