from __future__ import annotations

import json
from pathlib import Path

import pytest

from kernelwright.domain.problem import Problem, find_problem, load_problems
from kernelwright.errors import ProblemError, UnknownNameError

GOOD = """import torch
class Model(torch.nn.Module):
    def forward(self, x):
        return x * 2
def get_inputs():
    return [torch.rand(4)]
def get_init_inputs():
    return []
"""
SHARED_JSONL = Path(__file__).resolve().parents[3] / "shared" / "kernelbench" / "kernelbench.jsonl"


def test_from_file_reads_kernelbench_names(tmp_path: Path) -> None:
    level = tmp_path / "level2"
    level.mkdir()
    path = level / "17_Conv2d_InstanceNorm.py"
    path.write_text(GOOD)
    problem = Problem.from_file(path)
    assert (problem.name, problem.level, problem.problem_id, problem.key) == (
        "Conv2d_InstanceNorm",
        2,
        17,
        "L2/17",
    )


def test_checkout_layout_orders_levels_and_ids(tmp_path: Path) -> None:
    for level, ids in ((1, (10, 2)), (2, (1,))):
        folder = tmp_path / "KernelBench" / f"level{level}"
        folder.mkdir(parents=True)
        for i in ids:
            (folder / f"{i}_P{i}.py").write_text(GOOD)
    assert [p.key for p in load_problems(tmp_path)] == ["L1/2", "L1/10", "L2/1"]


def test_jsonl_rows_in_dataset_schema(tmp_path: Path) -> None:
    path = tmp_path / "suite.jsonl"
    rows = [{"code": GOOD, "level": 1, "name": "19_ReLU.py", "problem_id": 19}]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n\n")
    (problem,) = load_problems(path)
    assert problem.key == "L1/19" and problem.name == "ReLU" and problem.origin == f"{path}#1"


def test_parquet_rows(tmp_path: Path) -> None:
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    path = tmp_path / "suite.parquet"
    pq.write_table(pa.table({"code": [GOOD], "level": [3], "name": ["5_X.py"], "problem_id": [5]}), path)
    assert [p.key for p in load_problems(path)] == ["L3/5"]


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("class Model: pass\n", "get_inputs"),
        ("def broken(:\n", "does not parse"),
        ("Model = 1\ndef get_inputs(): pass\ndef get_init_inputs(): pass\n", "Model"),
    ],
)
def test_malformed_problem_says_what_is_missing(tmp_path: Path, content: str, expected: str) -> None:
    path = tmp_path / "p.py"
    path.write_text(content)
    with pytest.raises(ProblemError, match=expected):
        Problem.from_file(path)


def test_malformed_rows(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"code": "x", "level": 1}\n')
    with pytest.raises(ProblemError, match="missing field"):
        load_problems(path)
    path.write_text("{not json\n")
    with pytest.raises(ProblemError, match=r"bad\.jsonl:1"):
        load_problems(path)


def test_find_problem_by_key_and_name(tmp_path: Path) -> None:
    path = tmp_path / "suite.jsonl"
    rows = [{"code": GOOD, "level": 1, "name": f"{i}_P{i}.py", "problem_id": i} for i in (1, 2)]
    path.write_text("\n".join(json.dumps(r) for r in rows))
    assert find_problem(f"{path}#L1/2").problem_id == 2
    assert find_problem(f"{path}#1/1").problem_id == 1
    assert find_problem(f"{path}#P2").problem_id == 2
    with pytest.raises(UnknownNameError, match="holds 2 problems"):
        find_problem(str(path))
    with pytest.raises(UnknownNameError, match="no problem"):
        find_problem(f"{path}#L9/9")


@pytest.mark.skipif(not SHARED_JSONL.is_file(), reason="../shared/kernelbench is not present")
def test_loads_all_kernelbench_problems() -> None:
    problems = load_problems(SHARED_JSONL)
    assert len(problems) == 270
    assert {p.level for p in problems} == {1, 2, 3, 4}
    assert find_problem(f"{SHARED_JSONL}#L1/19").name == "ReLU"
