"""Where a sample's run stands in the LangGraph checkpointer: never started, mid-way, or finished.

The batch engine asks before each (re)start: a finished run is only recorded (never re-run), a run
mid-way is resumed from its checkpoint, and only a run with no checkpoint starts from the beginning.
"""

from __future__ import annotations

from dataclasses import dataclass

from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

from agent.graph import build_graph, checkpoint_serializer
from agent.state import RunState
from kernelwright.settings import Settings

__all__ = ["CheckpointStatus", "checkpoint_status"]


@dataclass(frozen=True)
class CheckpointStatus:
    state: RunState
    finished: bool  # the graph reached its end: nothing is left to run


async def checkpoint_status(settings: Settings, run_id: str) -> CheckpointStatus | None:
    """The last checkpointed state of `run_id`, or None when the run never reached a checkpoint."""
    if not settings.checkpoint_db.exists():
        return None
    async with AsyncSqliteSaver.from_conn_string(str(settings.checkpoint_db)) as saver:
        saver.serde = checkpoint_serializer()
        snapshot = await build_graph(saver).aget_state({"configurable": {"thread_id": run_id}})
    if not snapshot.values or "run_id" not in snapshot.values:
        return None  # no checkpoint, or only the input one written before the state was first stored
    # `next` leaves out tasks whose writes are already saved: a kill between a node's writes and the
    # checkpoint after it leaves `next` empty with that node in `tasks`, and the run is not over.
    finished = not snapshot.next and not snapshot.tasks
    return CheckpointStatus(RunState.model_validate(snapshot.values), finished=finished)
