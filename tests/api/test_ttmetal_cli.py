"""`kernelwright tt-metal check` and `toolchains fetch`: the JSON schema and exit codes of issue 8."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from typer.testing import CliRunner

from api.cli import app

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "ttmetal" / "eltwise_add_single"
runner = CliRunner()


def _invoke(*args: str, home: Path) -> tuple[int, str]:
    result = runner.invoke(app, [*args], env={"KERNELWRIGHT_HOME": str(home), "TT_METAL_HOME": ""})
    return result.exit_code, result.stdout


def test_valid_project_json(tmp_path: Path) -> None:
    code, out = _invoke("tt-metal", "check", str(EXAMPLE), "--format", "json", "--no-build", home=tmp_path)
    data = json.loads(out)
    assert code == 0 and data["valid"] is True
    assert data["level"] in ("static_checked", "syntax_checked") and data["diagnostics"] == []
    assert set(data) == {"valid", "level", "diagnostics"}


def test_invalid_project_json_and_exit_1(tmp_path: Path) -> None:
    project = tmp_path / "p"
    shutil.copytree(EXAMPLE, project)
    reader = project / "kernels/dataflow/read_tiles.cpp"
    reader.write_text(reader.read_text().replace('"api/dataflow/dataflow_api.h"', '"dataflow_api.h"'))
    code, out = _invoke("tt-metal", "check", str(project), "--format", "json", home=tmp_path)
    data = json.loads(out)
    assert code == 1 and data["valid"] is False and data["level"] == "static_checked"
    first = data["diagnostics"][0]
    assert set(first) == {"file", "line", "code", "message", "hint"}
    assert first == {
        "file": "kernels/dataflow/read_tiles.cpp",
        "line": 3,
        "code": "ttm.include.moved",
        "message": first["message"],
        "hint": 'include "api/dataflow/dataflow_api.h" instead',
    }


def test_text_output(tmp_path: Path) -> None:
    code, out = _invoke("tt-metal", "check", str(EXAMPLE), home=tmp_path)
    assert code == 0 and "valid (level" in out and "note: static checks assume TT-Metal" in out


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    assert _invoke("tt-metal", "check", str(tmp_path / "nope"), home=tmp_path)[0] == 2
    assert _invoke("tt-metal", "check", str(tmp_path), home=tmp_path)[0] == 2  # not a project
    assert _invoke("tt-metal", "check", str(EXAMPLE), "--format", "xml", home=tmp_path)[0] == 2
    assert _invoke("tt-metal", "check", str(EXAMPLE), "--api-version", "1999", home=tmp_path)[0] == 2
    assert _invoke("toolchains", "fetch", "cuda", home=tmp_path)[0] == 2
    assert (
        _invoke("toolchains", "fetch", "tt-metal", "--wheel", str(tmp_path / "x.whl"), home=tmp_path)[0] == 2
    )
