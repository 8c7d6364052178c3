"""The command line, run in-process with typer's runner (workers are still real subprocesses)."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from api.cli import app
from sandbox.toolchains import detect_gpu_arch

runner = CliRunner()


@pytest.fixture(autouse=True)
def _home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KERNELWRIGHT_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("KERNELWRIGHT_CORRECTNESS_DRAWS", "2")
    monkeypatch.chdir(tmp_path)  # no stray .env


def _json(output: str) -> dict[str, object]:
    start = output.index("{")
    data = json.loads(output[start:])
    assert isinstance(data, dict)
    return data


def test_eval_correct_triton_kernel(examples: Path) -> None:
    result = runner.invoke(
        app,
        [
            "eval",
            str(examples / "problems" / "softmax.py"),
            str(examples / "kernels" / "softmax_triton.py"),
            "--target",
            "triton",
            "--format",
            "json",
        ],
    )
    assert result.exit_code == 0, result.output
    payload = _json(result.stdout)
    assert payload["outcome"] == "correct"
    if detect_gpu_arch() is None:  # the CPU interpreter is not timed
        assert payload["speedup_vs_eager"] is None
    else:  # pragma: no cover - GPU machines
        assert isinstance(payload["speedup_vs_eager"], float) and payload["speedup_vs_eager"] > 0
    assert len(payload["draws"]) == 2  # type: ignore[arg-type]


def test_eval_wrong_kernel_exits_1(examples: Path, tmp_path: Path) -> None:
    source = (examples / "kernels" / "softmax_triton.py").read_text().replace("e / tl.sum", "e * 2 / tl.sum")
    kernel = tmp_path / "wrong.py"
    kernel.write_text(source)
    result = runner.invoke(
        app,
        [
            "eval",
            str(examples / "problems" / "softmax.py"),
            str(kernel),
            "--target",
            "triton",
            "--format",
            "json",
        ],
    )
    assert result.exit_code == 1 and _json(result.stdout)["outcome"] == "mismatch"


def test_eval_usage_errors_exit_2(examples: Path, tmp_path: Path) -> None:
    problem = str(examples / "problems" / "softmax.py")
    assert runner.invoke(app, ["eval", problem, str(tmp_path / "missing.py")]).exit_code == 2
    assert runner.invoke(app, ["eval", problem, problem, "--target", "fortran"]).exit_code == 2
    not_a_problem = tmp_path / "p.py"
    not_a_problem.write_text("x = 1\n")
    result = runner.invoke(app, ["eval", str(not_a_problem), problem])
    assert result.exit_code == 2 and "get_inputs" in result.output


def test_eval_ptx_compiles_and_says_no_gpu(examples: Path) -> None:
    if shutil.which("ptxas") is None and not Path("/usr/local/cuda/bin/ptxas").exists():
        pytest.skip("ptxas is not installed")
    if detect_gpu_arch() is not None:
        pytest.skip("a GPU is visible here")
    result = runner.invoke(
        app,
        [
            "eval",
            str(examples / "problems" / "relu.py"),
            str(examples / "kernels" / "relu_ptx.py"),
            "--target",
            "ptx",
            "--format",
            "json",
        ],
    )
    payload = _json(result.stdout)
    assert result.exit_code == 1 and payload["outcome"] == "no_gpu"
    assert payload["compile"]["ok"] is True  # type: ignore[index]


def test_problems_list(examples: Path) -> None:
    result = runner.invoke(app, ["problems", "list", str(examples / "problems"), "--format", "json"])
    assert result.exit_code == 0
    names = {p["name"] for p in json.loads(result.stdout)}
    assert names == {"relu", "softmax"}


def test_generate_without_key_names_the_variable(examples: Path) -> None:
    result = runner.invoke(
        app, ["generate", str(examples / "problems" / "softmax.py"), "--provider", "openai"]
    )
    assert result.exit_code == 2 and "OPENAI_API_KEY" in result.output


def test_generate_replays_the_shipped_transcript(examples: Path, tmp_path: Path) -> None:
    best = tmp_path / "best.py"
    result = runner.invoke(
        app,
        [
            "generate",
            str(examples / "problems" / "softmax.py"),
            "--target",
            "triton",
            "--transcript",
            str(examples / "transcripts" / "softmax_triton.json"),
            "--output",
            str(best),
            "--format",
            "json",
        ],
    )
    assert result.exit_code == 0, result.output
    summary = _json(result.stdout)
    assert summary["status"] == "succeeded" and summary["replay"] is True and summary["turns"] == 2
    assert "ModelNew" in best.read_text()
    shown = runner.invoke(app, ["trace", "show", str(summary["trace"])])
    assert shown.exit_code == 0 and "replay" in shown.output and "mismatch" in shown.output


def test_generate_verifies_through_the_runner_the_settings_name(
    examples: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`generate` builds the configured runner, as the service does: Ray named but absent fails clearly."""
    monkeypatch.setenv("KERNELWRIGHT_RUNNER", "ray")
    monkeypatch.setitem(sys.modules, "sandbox.ray_runner", None)  # as if Ray were not installed
    result = runner.invoke(
        app,
        [
            "generate",
            str(examples / "problems" / "softmax.py"),
            "--transcript",
            str(examples / "transcripts" / "softmax_triton.json"),
        ],
    )
    said = " ".join(result.output.split())  # the console wraps long lines
    assert result.exit_code == 2  # a configuration error, as a bad option is
    assert "KERNELWRIGHT_RUNNER=ray needs Ray" in said and "KERNELWRIGHT_RUNNER=inprocess" in said


def test_every_command_closes_its_process_to_workers_of_its_user(
    examples: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The CLI (and so `serve`) makes itself undumpable before anything else: its API keys stay out of
    reach of workers running as the same user (`tests/sandbox/test_undumpable.py` shows what that does)."""
    from api import cli

    calls: list[bool] = []

    def record() -> bool:
        calls.append(True)
        return True

    monkeypatch.setattr(cli, "make_undumpable", record)
    monkeypatch.setattr(sys, "argv", ["kernelwright", "problems", "list", str(examples / "problems")])
    with pytest.raises(SystemExit) as done:
        cli.main()
    assert done.value.code == 0 and calls == [True]
