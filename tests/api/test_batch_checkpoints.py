"""Where a batch sample's run stands after a kill: the checkpointer's view, including a step cut in half."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

from agent.context import Budgets
from agent.providers import ScriptedProvider
from agent.run import GenerationRequest, run_generation
from agent.state import RunStatus
from agent.trace import read_trace
from api.batch.checkpoints import checkpoint_status
from kernelwright.domain import Problem, Target, TraceKind
from kernelwright.settings import Settings


def _garbage_run(settings: Settings, examples: Path, run_id: str) -> None:
    request = GenerationRequest(
        problem=Problem.from_file(examples / "problems" / "softmax.py"),
        target=Target.TRITON,
        budgets=Budgets(max_turns=1),
    )
    provider = ScriptedProvider(["no code at all, sorry"])
    asyncio.run(run_generation(request, settings=settings, provider=provider, run_id=run_id))


def _cut(db: Path, run_id: str, *, checkpoints: int, pending_writes: bool) -> None:
    """Leave the checkpoints as a SIGKILL can: drop the `checkpoints` newest ones and their writes; the
    newest left keeps the writes of the node that ran from it (`pending_writes`: the node finished and
    its writes were saved, the checkpoint after it not) or loses them (the kill came before they were)."""
    with sqlite3.connect(db) as conn:
        ids = [
            row[0]
            for row in conn.execute(
                "SELECT checkpoint_id FROM checkpoints WHERE thread_id = ? ORDER BY checkpoint_id DESC",
                (run_id,),
            )
        ]
        assert len(ids) >= 4, ids
        for checkpoint_id in ids[:checkpoints]:
            for table in ("checkpoints", "writes"):
                conn.execute(
                    f"DELETE FROM {table} WHERE thread_id = ? AND checkpoint_id = ?", (run_id, checkpoint_id)
                )
        newest = ids[checkpoints]
        if not pending_writes:
            conn.execute("DELETE FROM writes WHERE thread_id = ? AND checkpoint_id = ?", (run_id, newest))
        pending = conn.execute(
            "SELECT count(*) FROM writes WHERE thread_id = ? AND checkpoint_id = ?", (run_id, newest)
        ).fetchone()[0]
        assert (pending > 0) == pending_writes


def test_a_finished_run_reads_as_finished(settings: Settings, examples: Path) -> None:
    _garbage_run(settings, examples, "run-whole")
    status = asyncio.run(checkpoint_status(settings, "run-whole"))
    assert status is not None and status.finished
    assert status.state.status != RunStatus.RUNNING


def test_a_run_cut_between_a_node_and_its_checkpoint_is_not_finished(
    settings: Settings, examples: Path
) -> None:
    """The kill that CI caught: `next` is empty there only because the last node's writes are saved."""
    _garbage_run(settings, examples, "run-cut")
    trace = settings.traces_dir / "run-cut.jsonl"
    kept = [line for line in trace.read_text().splitlines() if '"run_finished"' not in line]
    trace.write_text("\n".join(kept) + "\n")  # `record` never ran in the killed process
    # the two newest checkpoints gone: the one `record` started from, and the final one
    _cut(settings.checkpoint_db, "run-cut", checkpoints=2, pending_writes=True)

    status = asyncio.run(checkpoint_status(settings, "run-cut"))
    assert status is not None and not status.finished  # was taken for finished, and never recorded

    resumed = asyncio.run(
        run_generation(None, settings=settings, provider=ScriptedProvider(), run_id="run-cut")
    )
    assert resumed.state.status != RunStatus.RUNNING
    kinds = [e.kind for e in read_trace(trace)]
    assert kinds.count(TraceKind.RUN_FINISHED) == 1 and kinds[-1] == TraceKind.RUN_FINISHED
    after = asyncio.run(checkpoint_status(settings, "run-cut"))
    assert after is not None and after.finished


def test_a_run_killed_after_its_last_event_but_before_record_s_checkpoint_finishes_once(
    settings: Settings, examples: Path
) -> None:
    """`record` wrote RUN_FINISHED, then the kill: its writes and the final checkpoint are lost, so the
    resumed run runs `record` again, which must not finish the trace a second time."""
    _garbage_run(settings, examples, "run-late")
    _cut(settings.checkpoint_db, "run-late", checkpoints=1, pending_writes=False)
    status = asyncio.run(checkpoint_status(settings, "run-late"))
    assert status is not None and not status.finished

    asyncio.run(run_generation(None, settings=settings, provider=ScriptedProvider(), run_id="run-late"))
    kinds = [e.kind for e in read_trace(settings.traces_dir / "run-late.jsonl")]
    assert kinds.count(TraceKind.RUN_FINISHED) == 1
    assert kinds[-1] == TraceKind.RUN_STARTED  # the resume's own start, after the one end
