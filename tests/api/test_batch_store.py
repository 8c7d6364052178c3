"""Batch storage and suites: idempotent sample keys, the migration matching the tables, suite selection."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine
from test_batch_run import make_suite

import api.db.batch_tables  # noqa: F401 (registers the tables)
from api.batch.store import BatchSpec, create_batch, list_samples, progress, run_id_for, sample_key
from api.batch.suite import BUILTIN_CURATED, SuiteSelection, load_curated, load_suite, select_problems
from api.db.base import Base
from api.db.engine import Database
from api.services.migrations import current_revision, upgrade
from kernelwright.domain import Problem, Target
from kernelwright.domain.problem import load_problems
from kernelwright.errors import UnknownNameError, UserError

SHARED_JSONL = Path(__file__).resolve().parents[3] / "shared" / "kernelbench" / "kernelbench.jsonl"


def test_sample_keys_are_stable_and_distinct() -> None:
    key = sample_key("b1", "L1/19", 0, "gpt")
    assert key == sample_key("b1", "L1/19", 0, "gpt") and len(key) == 64
    others = {sample_key("b2", "L1/19", 0, "gpt"), sample_key("b1", "L1/1", 0, "gpt")}
    others |= {sample_key("b1", "L1/19", 1, "gpt"), sample_key("b1", "L1/19", 0, "other")}
    assert key not in others and len(others) == 4
    assert run_id_for("b1", key).startswith("batch-b1-")


def test_migration_creates_exactly_the_batch_tables(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    upgrade(url)
    assert "0002_batches" in current_revision(url)
    engine = create_engine(url)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), Base.metadata)
    engine.dispose()
    assert [d for d in diff if "batch" in repr(d)] == []


def test_created_batch_has_every_sample_once(tmp_path: Path) -> None:
    suite, _ = make_suite(tmp_path, 3, kernel_every=1)
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    upgrade(url)

    async def go() -> None:
        db = Database(url)
        entries = load_suite(SuiteSelection(str(suite)))
        spec = BatchSpec(Target.TRITON, "scripted", ("a", "b"), samples=2)
        batch_id = await create_batch(db, spec, entries, "fixed-id")
        await create_batch(db, spec, entries, "fixed-id")  # again: nothing added
        rows = await list_samples(db, batch_id)
        assert len(rows) == 3 * 2 * 2 and len({r.sample_key for r in rows}) == 12
        assert [r.position for r in rows] == list(range(12))
        assert [(r.problem_key, r.sample_index) for r in rows[:3:2]] == [("L1/1", 0), ("L1/2", 0)]
        assert (await progress(db, batch_id)).by_status == {"pending": 12}
        with pytest.raises(UserError, match="at least 1"):
            await create_batch(db, BatchSpec(Target.TRITON, "scripted", ("a",), samples=0), entries)
        with pytest.raises(UserError, match="model"):
            await create_batch(db, BatchSpec(Target.TRITON, "scripted", ()), entries)
        await db.dispose()

    asyncio.run(go())


def test_select_problems_by_level_and_id(tmp_path: Path) -> None:
    suite, _ = make_suite(tmp_path, 5, kernel_every=1)
    problems = load_problems(suite)
    assert [p.key for p in select_problems(problems, ids=["L1/2", "1/3", "4", "Op5"])] == [
        "L1/2",
        "L1/3",
        "L1/4",
        "L1/5",
    ]
    assert select_problems(problems, levels=[2]) == []
    with pytest.raises(UnknownNameError, match="L1/9"):
        select_problems(problems, ids=["L1/9"])
    with pytest.raises(UserError, match="no problems left"):
        load_suite(SuiteSelection(str(suite), levels=(3,)))
    assert [e.problem.key for e in load_suite(SuiteSelection(str(suite), limit=2))] == ["L1/1", "L1/2"]


def test_curated_suite_drops_and_fixes() -> None:
    curated = load_curated(BUILTIN_CURATED)
    assert "L1/32" in curated.exclude
    with pytest.raises(UserError, match="does not exist"):
        load_curated("/no/such/suite.json")


@pytest.mark.skipif(not SHARED_JSONL.is_file(), reason="needs ../shared/kernelbench/kernelbench.jsonl")
def test_kernelbench_jsonl_suite_with_curation() -> None:
    plain = load_suite(SuiteSelection(str(SHARED_JSONL), levels=(1,)))
    curated = load_suite(SuiteSelection(str(SHARED_JSONL), levels=(1,), curated=BUILTIN_CURATED))
    keys = {e.problem.key for e in curated}
    assert "L1/32" not in keys and "L1/19" in keys and len(curated) < len(plain)
    fixed = [e for e in curated if e.transforms]
    assert all(e.transforms == ("signed_inputs",) for e in fixed)
    assert isinstance(plain[0].problem, Problem)
