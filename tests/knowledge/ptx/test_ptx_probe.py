"""`kernelwright ptx probe`: the tables expanded into modules and judged by ptxas; the overlay it writes."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from api.ptx_cli import ptx_app
from knowledge.ptx.probe import PROBE_LINE, Subject, probe_module, probe_subjects, write_overlay
from knowledge.ptx.tables import Correction, build_tables, load_tables, tables_dir

HAS_PTXAS = shutil.which("ptxas") is not None or Path("/usr/local/cuda/bin/ptxas").exists()


def test_probe_module_puts_the_instruction_on_its_line() -> None:
    source = probe_module("add.f32 %f1, %f2, %f3;", "sm_80", (7, 0))
    assert source.splitlines()[PROBE_LINE - 1] == "add.f32 %f1, %f2, %f3;"
    assert ".version 7.0" in source and ".target sm_80" in source


def test_every_form_and_value_is_a_subject() -> None:
    tables = load_tables(probed=False)
    subjects = probe_subjects(tables)
    assert Subject("add") in subjects
    assert Subject("add", "type", ".bf16x2") in subjects
    assert any(s.sreg == "%cluster_ctarank" for s in subjects)
    only = probe_subjects(tables, ["sm_90"])
    assert only and all(s.sreg or tables.forms_by_id[s.form].family == "sm_90" for s in only)


def _overlay(tmp_path: Path, was: str, now: str) -> Path:
    correction = Correction("add", "type", ".bf16x2", "ptx", was, now, "test", "probed: ptxas 0.0")
    return write_overlay([correction], "0.0.1", tmp_path / "ptxas-0.0.yaml")


def test_overlay_applies_on_top_without_touching_the_families(tmp_path: Path) -> None:
    path = _overlay(tmp_path, "7.8", "7.0")
    tables = build_tables(tables_dir().glob("*.yaml"), [path])
    types = next(s for s in tables.forms_by_id["add"].slots if s.name == "type").index
    assert types[".bf16x2"].ptx == (7, 0) and types[".bf16x2"].sm == 90
    assert [c.describe() for c in tables.corrections] == ["add type=.bf16x2: ptx 7.8 -> 7.0 (test)"]
    plain = build_tables(tables_dir().glob("*.yaml"))
    assert next(s for s in plain.forms_by_id["add"].slots if s.name == "type").index[".bf16x2"].ptx == (7, 8)


def test_stale_overlay_entry_is_ignored(tmp_path: Path) -> None:
    """A hand fix after the probe wins: the entry's `was` no longer matches, so it is not applied."""
    path = _overlay(tmp_path, "6.0", "7.0")
    tables = build_tables(tables_dir().glob("*.yaml"), [path])
    assert tables.corrections == ()


def test_overlay_merges_entries(tmp_path: Path) -> None:
    path = _overlay(tmp_path, "7.8", "7.0")
    other = Correction("fence", "sem", ".acquire", "sm", "sm_90", "", "test", "p")
    write_overlay([other], "0.0.1", path)
    assert path.read_text().count("form:") == 2


@pytest.mark.skipif(not HAS_PTXAS, reason="ptxas is not installed")
def test_probe_sample_agrees_with_ptxas() -> None:
    """CI's fast sample (a couple of seconds): the tables as loaded agree with the installed ptxas."""
    result = CliRunner().invoke(ptx_app, ["probe", "--sample", "40", "--format", "json"])
    report = json.loads(result.stdout)
    assert report["subjects"] == 40 and report["probes"] > 0
    assert report["agreement_pct"] >= 99.0, report["disagreements"]
    assert result.exit_code == (1 if report["disagreements"] else 0)


def test_probe_usage_errors() -> None:
    runner = CliRunner()
    assert runner.invoke(ptx_app, ["probe", "--format", "xml"]).exit_code == 2
    if HAS_PTXAS:
        assert runner.invoke(ptx_app, ["probe", "--family", "sm_999"]).exit_code == 2
