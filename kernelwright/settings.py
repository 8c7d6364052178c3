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
    timing_budget_s: float | None = 0.3  # after the first round, stop timing once spent (>= 10 trials)
    speed_of_light_slack: float = 0.7  # quarantine candidates faster than this share of the bound
    harness_cache: Path | None = Field(
        default=None, description="trusted caches (baseline compiles, GPU peaks); home/cache when unset"
    )
    device: Literal["auto", "cpu", "cuda"] = "auto"
    executor: Literal["zygote", "local", "docker"] = "zygote"  # zygote: workers forked from a warm process
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
    runner: Literal["inprocess", "ray"] = "inprocess"  # who evaluates batches: asyncio here, or Ray actors
    ray_address: str | None = Field(
        default=None, description="Ray cluster to join (ray://head:10001, auto); a local Ray when unset"
    )
    gpus: list[int] | None = Field(
        default=None, description="GPU indices to lease, JSON [0,1]; else CUDA_VISIBLE_DEVICES, nvidia-smi"
    )
    cpu_slots: int = Field(default=1, ge=1, description="evaluations at once where no GPU is leased")
    runner_job_timeout_s: float | None = None  # hard limit per evaluation; 4 x verify_timeout_s when unset
    runner_health_interval_s: float = 300.0  # health-check an idle slot's worker after this long
    # a verification's job folder (both workers' scratch, on the host's disk even under Docker, where it
    # is bind-mounted) is capped in total: past either cap the workers are killed
    scratch_quota_bytes: int = Field(default=4 * 1024**3, ge=1 << 20)
    scratch_quota_entries: int = Field(default=20_000, ge=100)
    # Docker executor (executor="docker"): one container per worker, see sandbox/docker_executor.py
    docker_image: str | None = Field(
        default=None, description="worker image; the newest kernelwright-sandbox image built here when unset"
    )
    docker_memory: str = "8g"  # memory limit (swap included) of one worker container
    docker_pids: int = Field(default=512, ge=16, description="tasks (processes + threads) per container")
    docker_cpus: float = Field(default=2.0, gt=0, description="CPUs per container")
    docker_tmpfs_size: str = "1g"  # the size-limited scratch tmpfs at /tmp (HOME, TMPDIR, caches)
    docker_max_lifetime_s: float = 7200.0  # killed from inside after this long, even if the service died
    docker_mount_cuda: bool = True  # mount the host CUDA toolkit (cuda_home) read-only for ptxas/nvcc

    # Service: REST API, storage, keys (issue 7)
    database_url: str | None = Field(
        default=None, description="sqlite:///PATH or postgresql://...; sqlite under home when unset"
    )
    host: str = "127.0.0.1"
    port: int = 8080
    max_request_bytes: int = 2_000_000  # larger bodies get 413
    rate_limit_per_minute: int = 600  # requests per API key per minute (keys may override)
    spend_cap_usd: float = 50.0  # LLM cost a key may spend in total (keys may override)
    job_concurrency: int = 2  # generation jobs (and session rounds) running at once
    kernelbench_source: Path | None = Field(
        default=None, description="dataset (JSONL/parquet) or checkout that KernelBench ids resolve in"
    )
    # batches
    batch_limit_llm: int = Field(default=4, ge=1)  # LLM calls in flight at once per batch
    batch_limit_gpu: int = Field(default=1, ge=1)  # samples verifying at once per batch (GPU leases)
    batch_heartbeat_s: float = 5.0  # a running batch refreshes its runner lease (and sees cancels) this often
    batch_stale_s: float = 30.0  # a runner silent this long (on another host) may be taken over

    # TT-Metal target (issue 8)
    tt_metal_home: Path | None = Field(
        default=None,
        validation_alias=AliasChoices("KERNELWRIGHT_TT_METAL_HOME", "TT_METAL_HOME"),
        description="a built tt-metal checkout: projects are then built (and run where a device is found)",
    )
    ttmetal_headers: Path | None = Field(
        default=None, description="extracted ttnn device headers; home/toolchains/tt-metal/<version> if unset"
    )
    ttmetal_api_version: str | None = Field(
        default=None, description="TT-Metal API version the checks assume; the fetched headers' when unset"
    )
    ttmetal_arch: Literal["wormhole_b0", "blackhole"] = "wormhole_b0"
    ttmetal_run_timeout_s: float = 300.0

    @property
    def toolchains_dir(self) -> Path:
        return self.home / "toolchains"

    # Logging
    log_level: str = "WARNING"
    log_format: Literal["console", "json"] = "console"

    @property
    def checkpoint_db(self) -> Path:
        return self.home / "checkpoints.sqlite"

    @property
    def service_database_url(self) -> str:
        """The service database: `database_url`, or SQLite under home."""
        return self.database_url or f"sqlite:///{self.home / 'service.sqlite'}"

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
    def cache_dir(self) -> Path:
        return self.harness_cache or self.home / "cache"

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
