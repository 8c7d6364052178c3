"""The verdict on a candidate: an outcome class plus the numbers behind it."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from kernelwright.domain.diagnostic import Diagnostic

__all__ = ["VERDICT_SCHEMA", "DrawError", "Outcome", "Timing", "Verdict"]


class Outcome(StrEnum):
    """Every way a candidate can end. Failures are classified, never lumped."""

    CORRECT = "correct"
    COMPILE_ERROR = "compile_error"
    RUNTIME_ERROR = "runtime_error"
    TIMEOUT = "timeout"
    WRONG_SHAPE = "wrong_shape"
    WRONG_DTYPE = "wrong_dtype"
    MISMATCH = "mismatch"
    HACK_SUSPECTED = "hack_suspected"
    QUARANTINED = "quarantined"
    TOOLCHAIN_MISSING = "toolchain_missing"
    NO_GPU = "no_gpu"
    INFRASTRUCTURE = "infrastructure"

    @property
    def candidate_at_fault(self) -> bool:
        """Whether the outcome says something about the candidate (vs. the machine it ran on)."""
        return self not in (Outcome.TOOLCHAIN_MISSING, Outcome.NO_GPU, Outcome.INFRASTRUCTURE)


class DrawError(BaseModel):
    """Error figures of one correctness draw (one fresh set of inputs)."""

    draw: int
    max_abs_error: float | None = None
    mean_abs_error: float | None = None
    max_rel_error: float | None = None
    passed: bool


class Timing(BaseModel):
    """Timings in milliseconds (median and spread over trials)."""

    median_ms: float
    p10_ms: float | None = None
    p90_ms: float | None = None
    trials: int
    method: str  # "cuda_events", "wall_clock"


VERDICT_SCHEMA = "kernelwright.verdict/1"


class Verdict(BaseModel):
    """The verifier's answer. Serialised as JSON it carries `schema` so consumers can check the version."""

    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True)

    schema_: str = Field(default=VERDICT_SCHEMA, alias="schema", serialization_alias="schema")
    outcome: Outcome
    message: str = ""
    device: str | None = None
    draws: list[DrawError] = Field(default_factory=list)
    candidate_timing: Timing | None = None
    eager_timing: Timing | None = None
    compile_timing: Timing | None = None
    speedup_vs_eager: float | None = None
    speedup_vs_compile: float | None = None
    baseline_notes: list[str] = Field(default_factory=list)  # e.g. why torch.compile was not timed
    diagnostics: list[Diagnostic] = Field(default_factory=list)
    duration_s: float = 0.0
    phases_s: dict[str, float] = Field(default_factory=dict)  # seconds per verification phase
    speed_of_light_ms: float | None = None  # the problem's physical lower bound on this GPU
    from_store: bool = False  # served from the content-addressed result store, not re-run
    # tt-metal: how far checking got (static_checked, syntax_checked, built, ran); None for other targets
    level: str | None = None

    @property
    def correct(self) -> bool:
        return self.outcome == Outcome.CORRECT
