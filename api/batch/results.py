"""A batch's results: sample records, metrics overall / per level / per model, and JSON and CSV exports.

Metrics count finished samples: `done` ones with their verdicts, and `error` ones (the run could not
finish) as samples that neither compiled nor passed. Pending, running and cancelled samples are left
out, so metrics of a batch in progress describe what has finished so far.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from api.batch.metrics import Metrics, SampleFigures, summarize
from api.db.batch_tables import BatchRow, BatchSampleRow

__all__ = [
    "SAMPLE_COLUMNS",
    "BatchMetrics",
    "batch_metrics",
    "batch_record",
    "export_csv",
    "export_json",
    "figures",
    "level_name",
    "sample_record",
]

EXPORT_SCHEMA = "kernelwright.batch/1"
SAMPLE_COLUMNS = (
    "sample_key",
    "problem_key",
    "level",
    "sample_index",
    "model",
    "status",
    "run_id",
    "starts",
    "run_status",
    "outcome",
    "compiled",
    "correct",
    "speedup_vs_eager",
    "speedup_vs_compile",
    "turns",
    "tokens",
    "cost_usd",
    "wall_s",
    "device",
    "error",
    "started_at",
    "finished_at",
)
_FINISHED = ("done", "error")


def figures(row: BatchSampleRow) -> SampleFigures:
    return SampleFigures(
        compiled=bool(row.compiled),
        correct=bool(row.correct),
        speedup_vs_eager=row.speedup_vs_eager,
        speedup_vs_compile=row.speedup_vs_compile,
        tokens=row.tokens or 0,
        cost_usd=row.cost_usd or 0.0,
    )


@dataclass(frozen=True)
class BatchMetrics:
    overall: Metrics
    per_level: dict[str, Metrics]
    per_model: dict[str, Metrics]

    def to_dict(self) -> dict[str, Any]:
        return {
            "overall": self.overall.to_dict(),
            "per_level": {k: v.to_dict() for k, v in self.per_level.items()},
            "per_model": {k: v.to_dict() for k, v in self.per_model.items()},
        }


def _grouped(
    rows: Sequence[BatchSampleRow], key: Callable[[BatchSampleRow], str]
) -> dict[str, list[BatchSampleRow]]:
    groups: dict[str, list[BatchSampleRow]] = {}
    for row in rows:
        groups.setdefault(key(row), []).append(row)
    return groups


def level_name(row: BatchSampleRow) -> str:
    return f"L{row.level}" if row.level is not None else "unleveled"


def batch_metrics(rows: Sequence[BatchSampleRow]) -> BatchMetrics:
    finished = [r for r in rows if r.status in _FINISHED]

    def summary(group: Sequence[BatchSampleRow]) -> Metrics:
        return summarize([figures(r) for r in group])

    return BatchMetrics(
        overall=summary(finished),
        per_level={k: summary(v) for k, v in sorted(_grouped(finished, level_name).items())},
        per_model={k: summary(v) for k, v in sorted(_grouped(finished, lambda r: r.model).items())},
    )


def _plain(value: object) -> object:
    return value.isoformat() if isinstance(value, datetime) else value


def sample_record(row: BatchSampleRow) -> dict[str, Any]:
    return {name: _plain(getattr(row, name)) for name in SAMPLE_COLUMNS}


def batch_record(batch: BatchRow) -> dict[str, Any]:
    return {
        "id": batch.id,
        "name": batch.name,
        "status": batch.status,
        "target": batch.target,
        "provider": batch.provider,
        "models": list(batch.models),
        "samples_per_problem": batch.samples_per_problem,
        "suite": batch.suite,
        "options": batch.options,
        "limit_llm": batch.limit_llm,
        "limit_gpu": batch.limit_gpu,
        "cancel_requested": batch.cancel_requested,
        "error": batch.error,
        "created_at": _plain(batch.created_at),
        "finished_at": _plain(batch.finished_at),
    }


def export_json(batch: BatchRow, rows: Sequence[BatchSampleRow]) -> str:
    """The whole batch as one JSON document: the batch, its metrics, every sample."""
    return json.dumps(
        {
            "schema": EXPORT_SCHEMA,
            "batch": batch_record(batch),
            "metrics": batch_metrics(rows).to_dict(),
            "samples": [sample_record(r) for r in rows],
        },
        indent=1,
    )


def export_csv(rows: Sequence[BatchSampleRow]) -> str:
    """One CSV row per sample (empty cells for unknown values)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(SAMPLE_COLUMNS), lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: "" if v is None else v for k, v in sample_record(row).items()})
    return buffer.getvalue()
