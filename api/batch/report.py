"""The report page of a batch: one self-contained HTML file with inline SVG plots (no script, no CDN).

Plots: the distribution of speedups of correct samples (against eager and against torch.compile, in
fixed bins around 1x) and the outcomes per level as stacked bars; tables: metrics per level and per
model, and progress per problem. Everything is escaped; the page works offline and in mail attachments.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape

from api.batch.metrics import Metrics
from api.batch.results import batch_metrics, level_name
from api.db.batch_tables import BatchRow, BatchSampleRow

__all__ = ["SPEEDUP_BINS", "outcome_counts", "render_report", "speedup_histogram"]

SPEEDUP_BINS: tuple[tuple[float, float, str], ...] = (
    (0.0, 0.5, "<0.5x"),
    (0.5, 0.8, "0.5-0.8x"),
    (0.8, 1.0, "0.8-1x"),
    (1.0, 1.5, "1-1.5x"),
    (1.5, 2.0, "1.5-2x"),
    (2.0, 3.0, "2-3x"),
    (3.0, 5.0, "3-5x"),
    (5.0, float("inf"), ">=5x"),
)
_COLORS = {
    "correct": "#2e7d32",
    "compile_error": "#f9a825",
    "runtime_error": "#e65100",
    "timeout": "#6d4c41",
    "wrong_shape": "#ad1457",
    "wrong_dtype": "#c2185b",
    "mismatch": "#c62828",
    "hack_suspected": "#4a148c",
    "quarantined": "#7b1fa2",
    "toolchain_missing": "#455a64",
    "no_gpu": "#0277bd",
    "infrastructure": "#37474f",
    "no_attempt": "#9e9e9e",
    "error": "#000000",
}
_CSS = (
    "body{font-family:system-ui,sans-serif;margin:2em;color:#222}table{border-collapse:collapse;margin:1em 0}"
    "td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}th{background:#f3f3f3}"
    "td:first-child,th:first-child{text-align:left}.note{color:#666}svg{margin:0.5em 1em 0.5em 0}"
)


def speedup_histogram(speedups: Sequence[float]) -> list[int]:
    """Counts per `SPEEDUP_BINS` bin (lower edge inclusive)."""
    counts = [0] * len(SPEEDUP_BINS)
    for value in speedups:
        for index, (low, high, _) in enumerate(SPEEDUP_BINS):
            if low <= value < high:
                counts[index] += 1
                break
    return counts


def _outcome(row: BatchSampleRow) -> str:
    if row.status == "error":
        return "error"
    return row.outcome or "no_attempt"


def outcome_counts(rows: Sequence[BatchSampleRow]) -> dict[str, dict[str, int]]:
    """Level -> outcome -> count, over finished samples."""
    table: dict[str, dict[str, int]] = {}
    for row in rows:
        if row.status not in ("done", "error"):
            continue
        per = table.setdefault(level_name(row), {})
        per[_outcome(row)] = per.get(_outcome(row), 0) + 1
    return dict(sorted(table.items()))


def _bar_chart(title: str, labels: Sequence[str], counts: Sequence[int]) -> str:
    width, height, left, bottom = 520, 220, 36, 40
    plot_w, plot_h = width - left - 10, height - bottom - 24
    top = max(counts, default=0) or 1
    slot = plot_w / max(len(counts), 1)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
        f'aria-label="{escape(title)}"><text x="{left}" y="14" font-size="13">{escape(title)}</text>',
        f'<line x1="{left}" y1="{24 + plot_h}" x2="{left + plot_w}" y2="{24 + plot_h}" stroke="#888"/>',
        f'<text x="{left - 4}" y="28" font-size="10" text-anchor="end">{top}</text>',
    ]
    for index, (label, count) in enumerate(zip(labels, counts, strict=True)):
        bar_h = plot_h * count / top
        x = left + index * slot + 3
        parts.append(
            f'<rect x="{x:.1f}" y="{24 + plot_h - bar_h:.1f}" width="{slot - 6:.1f}" height="{bar_h:.1f}" '
            f'fill="#1565c0"><title>{escape(label)}: {count}</title></rect>'
        )
        if count:
            parts.append(
                f'<text x="{x + (slot - 6) / 2:.1f}" y="{20 + plot_h - bar_h:.1f}" font-size="10" '
                f'text-anchor="middle">{count}</text>'
            )
        parts.append(
            f'<text x="{x + (slot - 6) / 2:.1f}" y="{38 + plot_h:.1f}" font-size="10" '
            f'text-anchor="middle">{escape(label)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _stacked_chart(table: dict[str, dict[str, int]]) -> str:
    outcomes = sorted({o for per in table.values() for o in per}, key=lambda o: list(_COLORS).index(o))
    width, row_h, left = 620, 26, 90
    plot_w = width - left - 20
    height = 40 + row_h * len(table) + 22 * ((len(outcomes) + 3) // 4)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
        'aria-label="outcomes per level"><text x="0" y="14" font-size="13">Outcomes per level</text>'
    ]
    for index, (level, per) in enumerate(table.items()):
        y, total, x = 26 + index * row_h, sum(per.values()) or 1, float(left)
        parts.append(
            f'<text x="{left - 6}" y="{y + 15}" font-size="12" text-anchor="end">{escape(level)}</text>'
        )
        for outcome in outcomes:
            count = per.get(outcome, 0)
            if not count:
                continue
            w = plot_w * count / total
            parts.append(
                f'<rect x="{x:.1f}" y="{y}" width="{w:.1f}" height="{row_h - 6}" fill="{_COLORS[outcome]}">'
                f"<title>{escape(level)} {escape(outcome)}: {count}</title></rect>"
            )
            x += w
        parts.append(f'<text x="{width - 16}" y="{y + 15}" font-size="10">{sum(per.values())}</text>')
    legend_y = 34 + row_h * len(table)
    for index, outcome in enumerate(outcomes):
        lx, ly = left + (index % 4) * 130, legend_y + (index // 4) * 22
        parts.append(
            f'<rect x="{lx}" y="{ly}" width="12" height="12" fill="{_COLORS[outcome]}"/>'
            f'<text x="{lx + 16}" y="{ly + 11}" font-size="11">{escape(outcome)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}%"


def _num(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def _metrics_table(groups: dict[str, Metrics]) -> str:
    head = (
        "<tr><th></th><th>samples</th><th>compiled</th><th>correct</th>"
        + "".join(f"<th>{escape(k)} eager</th>" for k in next(iter(groups.values())).fast_p_eager)
        + "".join(f"<th>{escape(k)} compile</th>" for k in next(iter(groups.values())).fast_p_compile)
        + "<th>geomean vs eager</th><th>geomean vs compile</th><th>tokens</th><th>cost $</th></tr>"
    )
    body = "".join(
        f"<tr><td>{escape(name)}</td><td>{m.samples}</td><td>{_pct(m.compile_rate)}</td>"
        f"<td>{_pct(m.correctness_rate)}</td>"
        + "".join(f"<td>{_pct(v)}</td>" for v in m.fast_p_eager.values())
        + "".join(f"<td>{_pct(v)}</td>" for v in m.fast_p_compile.values())
        + f"<td>{_num(m.geomean_speedup_eager)}</td><td>{_num(m.geomean_speedup_compile)}</td>"
        f"<td>{m.tokens}</td><td>{m.cost_usd:.4f}</td></tr>"
        for name, m in groups.items()
    )
    return f"<table>{head}{body}</table>"


def _best_speedup(group: Sequence[BatchSampleRow]) -> float | None:
    return max((r.speedup_vs_eager for r in group if r.correct and r.speedup_vs_eager), default=None)


def _problems_table(rows: Sequence[BatchSampleRow]) -> str:
    per: dict[str, list[BatchSampleRow]] = {}
    for row in rows:
        per.setdefault(row.problem_key, []).append(row)
    body = "".join(
        f"<tr><td>{escape(key)}</td><td>{len(group)}</td>"
        f"<td>{sum(r.status in ('done', 'error') for r in group)}</td>"
        f"<td>{sum(bool(r.correct) for r in group)}</td>"
        f"<td>{_num(_best_speedup(group))}</td></tr>"
        for key, group in per.items()
    )
    return (
        "<table><tr><th>problem</th><th>samples</th><th>finished</th><th>correct</th>"
        f"<th>best speedup vs eager</th></tr>{body}</table>"
    )


def render_report(batch: BatchRow, rows: Sequence[BatchSampleRow]) -> str:
    """The report page of `batch` as a complete HTML document."""
    metrics = batch_metrics(rows)
    labels = [label for _, _, label in SPEEDUP_BINS]
    plots = []
    for baseline, attr in (("eager PyTorch", "speedup_vs_eager"), ("torch.compile", "speedup_vs_compile")):
        values = [v for r in rows if r.correct and (v := getattr(r, attr)) is not None]
        if values:
            plots.append(
                _bar_chart(
                    f"Speedup vs {baseline} ({len(values)} correct samples)",
                    labels,
                    speedup_histogram(values),
                )
            )
        else:
            plots.append(f'<p class="note">No correct sample was timed against {escape(baseline)}.</p>')
    outcomes = outcome_counts(rows)
    finished = sum(r.status in ("done", "error") for r in rows)
    groups = {
        "all": metrics.overall,
        **metrics.per_level,
        **{f"model {k}": v for k, v in metrics.per_model.items()},
    }
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>kernelwright batch {escape(batch.id)}</title><style>{_CSS}</style></head><body>"
        f"<h1>Batch {escape(batch.name or batch.id)}</h1>"
        f"<p>{escape(batch.status)}: {finished} of {len(rows)} samples finished; target "
        f"{escape(batch.target)}, provider {escape(batch.provider)}, models "
        f"{escape(', '.join(batch.models))}, {batch.samples_per_problem} sample(s) per problem.</p>"
        "<h2>Metrics</h2>"
        f"{_metrics_table(groups)}"
        '<p class="note">fast_p: share of finished samples that are correct and more than p times faster '
        "than the baseline (KernelBench). n/a: not measured (e.g. no GPU).</p>"
        f"<h2>Plots</h2>{''.join(plots)}"
        + (_stacked_chart(outcomes) if outcomes else '<p class="note">No finished samples yet.</p>')
        + f"<h2>Problems</h2>{_problems_table(rows)}</body></html>"
    )
