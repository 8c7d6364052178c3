"""The full table probe: every entry of the PTX tables judged by ptxas, before and after the overlay.

Pass 1 probes the hand-written tables alone (how right the facts were as written); with `--patch`
the corrections ptxas proved are written to tables/probed/ptxas-X.Y.yaml; pass 2 probes the tables
as `load_tables()` now loads them (hand-written + overlay), which is the agreement the checker
works with. Results go to bench/results/ptx_probe-<date>.json.

    python bench/ptx_probe.py [--patch] [--sample N]
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kernelwright.settings import Settings
from knowledge.ptx.probe import (
    PtxasJudge,
    probe_subjects,
    run_probes,
    sample_subjects,
    summarize,
    write_overlay,
)
from knowledge.ptx.tables import Tables, build_tables, overlay_path, tables_dir
from sandbox.toolchains import find_ptxas

ROOT = Path(__file__).resolve().parents[1]


def _pass(
    tables: Tables, judge: PtxasJudge, sample: int | None, version: str
) -> tuple[dict[str, Any], list[Any]]:
    subjects = sample_subjects(probe_subjects(tables), sample)
    start = time.perf_counter()
    outcomes = run_probes(tables, judge, subjects, provenance=f"probed: ptxas {version}")
    report = summarize(outcomes, version)
    report["seconds"] = round(time.perf_counter() - start, 2)
    return report, [c for o in outcomes for c in o.corrections]


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--patch", action="store_true", help="write the proven corrections to the overlay")
    parser.add_argument("--sample", type=int, default=None, help="probe N entries only")
    parser.add_argument("--out", type=Path, default=None, help="result JSON path")
    args = parser.parse_args()
    tool = find_ptxas(Settings())
    if tool is None:
        print("ptxas not found", file=sys.stderr)
        return 2
    families = sorted(tables_dir().glob("*.yaml"))
    judge = PtxasJudge(tool.path)
    try:
        before, corrections = _pass(build_tables(families), judge, args.sample, tool.version)
        print(
            f"hand-written tables: {before['probes']} probes, {before['agreement_pct']}% agree, "
            f"{len(before['disagreements'])} disagree, {before['unconfirmed']} unconfirmed entries"
        )
        overlay = overlay_path(tool.version)
        if args.patch and corrections:
            write_overlay(corrections, tool.version)
            print(f"overlay: {len(corrections)} corrections -> {overlay.relative_to(ROOT)}")
        overlays = [overlay] if overlay.exists() else []
        after, remaining = _pass(build_tables(families, overlays), judge, args.sample, tool.version)
    finally:
        judge.close()
    print(
        f"with overlay: {after['probes']} probes, {after['agreement_pct']}% agree, "
        f"{len(after['disagreements'])} disagree ({len(remaining)} further corrections proposed)"
    )
    for item in after["disagreements"]:
        print(
            f"  {item['subject']} [{item['kind']}] {item['target']} {item['version']}: {item['instruction']}"
        )
    now = datetime.now(UTC)
    result = {
        "benchmark": "ptx_probe",
        "date": now.isoformat(timespec="seconds"),
        "machine": {"host": platform.node(), "platform": platform.platform(), "cpus": judge.workers // 2},
        "ptxas": tool.version,
        "ptxas_runs": judge.runs,
        "hand_written": before,
        "with_overlay": after,
        "overlay": str(overlay.relative_to(ROOT)) if overlay.exists() else None,
    }
    out = args.out or ROOT / "bench" / "results" / f"ptx_probe-{now:%Y%m%d}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {out.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
