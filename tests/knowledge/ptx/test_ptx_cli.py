"""`kernelwright ptx check`: JSON lines, text output and exit codes 0 / 1 / 2."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from api.ptx_cli import ptx_app

VALID = """.version 8.0
.target sm_90
.address_size 64
.visible .entry k(.param .u64 p)
{
.reg .b64 %rd<2>; .reg .f32 %f<2>;
ld.param.u64 %rd1, [p];
ld.global.f32 %f1, [%rd1];
ret;
}
"""
INVALID = VALID.replace("ld.global.f32 %f1", "ld.global.f32 %f9")


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text)
    return path


def test_json_lines_and_exit_code(tmp_path: Path) -> None:
    good = write(tmp_path, "good.ptx", VALID)
    bad = write(tmp_path, "bad.ptx", INVALID)
    result = CliRunner().invoke(ptx_app, ["check", str(good), str(bad), "--format", "json"])
    assert result.exit_code == 1
    lines = [json.loads(line) for line in result.stdout.splitlines() if line.strip()]
    assert [obj["file"] for obj in lines] == [str(good), str(bad)]
    assert lines[0] == {"file": str(good), "valid": True, "diagnostics": []}
    assert lines[1]["valid"] is False
    diagnostic = lines[1]["diagnostics"][0]
    assert set(diagnostic) == {"line", "column", "code", "message", "hint"}
    assert diagnostic["line"] == 8 and diagnostic["code"] == "ptx.undeclared_register"
    assert isinstance(diagnostic["column"], int)


def test_all_valid_exits_zero(tmp_path: Path) -> None:
    good = write(tmp_path, "good.ptx", VALID)
    result = CliRunner().invoke(ptx_app, ["check", str(good), str(good)])
    assert result.exit_code == 0
    assert "ok" in result.stdout


def test_text_output_renders_diagnostics(tmp_path: Path) -> None:
    bad = write(tmp_path, "bad.ptx", INVALID)
    result = CliRunner().invoke(ptx_app, ["check", str(bad)])
    assert result.exit_code == 1
    assert f"{bad}:8:" in result.stdout and "ptx.undeclared_register" in result.stdout


def test_target_option_gates(tmp_path: Path) -> None:
    source = VALID.replace("ld.global.f32 %f1, [%rd1];", "mov.u32 %r1, %cluster_ctarank;").replace(
        ".reg .f32 %f<2>;", ".reg .b32 %r<2>;"
    )
    path = write(tmp_path, "cluster.ptx", source)
    assert CliRunner().invoke(ptx_app, ["check", str(path)]).exit_code == 0
    result = CliRunner().invoke(ptx_app, ["check", str(path), "--target", "sm_80", "--format", "json"])
    assert result.exit_code == 1
    assert "ptx.needs_target" in result.stdout


def test_usage_errors_exit_two(tmp_path: Path) -> None:
    good = write(tmp_path, "good.ptx", VALID)
    runner = CliRunner()
    assert runner.invoke(ptx_app, ["check", str(tmp_path / "missing.ptx")]).exit_code == 2
    assert runner.invoke(ptx_app, ["check", str(good), "--format", "xml"]).exit_code == 2
    assert runner.invoke(ptx_app, ["check", str(good), "--target", "volta"]).exit_code == 2
    assert runner.invoke(ptx_app, ["check"]).exit_code == 2
