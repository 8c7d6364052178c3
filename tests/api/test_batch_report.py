"""Exports and the report page, from sample rows (no database needed)."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime

from api.batch.report import SPEEDUP_BINS, outcome_counts, render_report, speedup_histogram
from api.batch.results import SAMPLE_COLUMNS, batch_metrics, export_csv, export_json
from api.db.batch_tables import BatchRow, BatchSampleRow


def _row(
    index: int, level: int, status: str, outcome: str | None, speedup: float | None = None
) -> BatchSampleRow:
    return BatchSampleRow(
        sample_key=f"k{index}",
        batch_id="b",
        problem_key=f"L{level}/{index}",
        level=level,
        sample_index=0,
        model="m",
        position=index,
        status=status,
        run_id=f"r{index}",
        starts=1,
        outcome=outcome,
        compiled=outcome not in (None, "compile_error"),
        correct=outcome == "correct",
        speedup_vs_eager=speedup,
        tokens=10,
        cost_usd=0.5,
        finished_at=datetime(2026, 1, 1, tzinfo=UTC),
    )


ROWS = [
    _row(1, 1, "done", "correct", 1.7),
    _row(2, 1, "done", "correct", 0.6),
    _row(3, 1, "done", "mismatch"),
    _row(4, 2, "done", "compile_error"),
    _row(5, 2, "error", None),
    _row(6, 2, "pending", None),
]
BATCH = BatchRow(
    id="b", name="<demo>", status="running", target="triton", provider="scripted", models=["m"],
    samples_per_problem=1, suite={}, options={}, limit_llm=1, limit_gpu=1, cancel_requested=False,
    created_at=datetime(2026, 1, 1, tzinfo=UTC),
)  # fmt: skip


def test_histogram_bins() -> None:
    counts = speedup_histogram([0.1, 0.5, 0.99, 1.0, 1.7, 2.0, 4.9, 5.0, 100.0])
    assert dict(zip([b[2] for b in SPEEDUP_BINS], counts, strict=True)) == {
        "<0.5x": 1, "0.5-0.8x": 1, "0.8-1x": 1, "1-1.5x": 1, "1.5-2x": 1, "2-3x": 1, "3-5x": 1, ">=5x": 2,
    }  # fmt: skip


def test_metrics_count_finished_samples_only() -> None:
    metrics = batch_metrics(ROWS)
    assert metrics.overall.samples == 5  # the pending one is left out; the errored one counts as failed
    assert metrics.overall.correct == 2 and metrics.overall.fast_p_eager["fast_1"] == 1 / 5
    assert metrics.per_level["L2"].compile_rate == 0.0
    assert outcome_counts(ROWS) == {
        "L1": {"correct": 2, "mismatch": 1},
        "L2": {"compile_error": 1, "error": 1},
    }


def test_exports() -> None:
    data = json.loads(export_json(BATCH, ROWS))
    assert data["batch"]["id"] == "b" and len(data["samples"]) == 6
    assert data["metrics"]["overall"]["correct"] == 2
    rows = list(csv.DictReader(io.StringIO(export_csv(ROWS))))
    assert list(rows[0]) == list(SAMPLE_COLUMNS) and rows[0]["speedup_vs_eager"] == "1.7"
    assert rows[5]["outcome"] == "" and rows[0]["finished_at"].startswith("2026-01-01")


def test_report_is_self_contained_and_escaped() -> None:
    page = render_report(BATCH, ROWS)
    assert page.startswith("<!DOCTYPE html>") and "&lt;demo&gt;" in page and "<demo>" not in page
    assert page.count("<svg") == 2  # speedup histogram vs eager, outcomes per level
    assert "No correct sample was timed against torch.compile" in page
    assert "<script" not in page and "http://" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "")
