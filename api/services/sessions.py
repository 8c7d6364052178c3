"""Chat sessions: each user message resumes the session's graph thread for one more round.

A round is a task under the run slots. Which way a round enters the graph is read from the checkpoint,
so the same code serves the normal path and recovery after a restart: no checkpoint yet → the opening
round; waiting at `await_user` with a pending message → resume with it; stopped mid-round → continue.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import structlog
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from agent.run import GenerationRequest
from agent.session import fork_session, read_session, run_session_round
from api.db.models import SessionRow, SessionTurn
from api.services.events import EventRecorder, Statement
from api.services.keys import KeyRecord
from api.services.providers import ProviderSpec
from api.services.requests import StoredRequest
from api.services.run_manager import RunManager, now
from api.services.summary import summarize
from kernelwright.domain import TraceEvent
from kernelwright.errors import KernelwrightError, UserError
from kernelwright.logs import get_logger

__all__ = ["SessionBusyError", "SessionManager"]

CANCELLED = "cancelled by the client"

log = get_logger(__name__)


class SessionBusyError(UserError):
    """The session is running a round; a new message must wait until it is waiting again."""


class SessionManager(RunManager):
    async def create(self, key: KeyRecord, request: GenerationRequest, provider: ProviderSpec) -> str:
        session_id = f"ses-{uuid.uuid4().hex[:16]}"
        async with self.db.session() as s:
            s.add(self._row(session_id, key.id, request, provider))
            await s.flush()
            s.add(
                SessionTurn(session_id=session_id, index=0, message=None, status="running", created_at=now())
            )
        self._start(session_id)
        return session_id

    async def get(self, key: KeyRecord, session_id: str) -> tuple[SessionRow, list[SessionTurn]] | None:
        async with self.db.session() as s:
            row = await s.get(SessionRow, session_id)
            if row is None or row.key_id != key.id:
                return None
            turns = await s.scalars(
                select(SessionTurn).where(SessionTurn.session_id == session_id).order_by(SessionTurn.index)
            )
            return row, list(turns)

    async def page(self, key: KeyRecord, *, skip: int, limit: int) -> tuple[list[str], int]:
        async with self.db.session() as s:
            count = await s.scalar(
                select(func.count()).select_from(SessionRow).where(SessionRow.key_id == key.id)
            )
            ids = await s.scalars(
                select(SessionRow.id)
                .where(SessionRow.key_id == key.id)
                .order_by(SessionRow.created_at.desc())
                .offset(skip)
                .limit(limit)
            )
            return list(ids), int(count or 0)

    async def post_message(self, session_id: str, content: str, replies: list[str]) -> int:
        """Queue the user's next message; returns its turn index. The session must be waiting."""
        try:
            index = await self._store_message(session_id, content, replies)
        except IntegrityError as exc:  # another message won the race for this turn
            raise SessionBusyError(f"session {session_id} is already taking a message; wait for it") from exc
        self._start(session_id)
        return index

    async def _store_message(self, session_id: str, content: str, replies: list[str]) -> int:
        async with self.db.session() as s:
            row = await s.get(SessionRow, session_id, with_for_update=True)
            assert row is not None
            if row.status in ("cancelled", "failed"):
                raise SessionBusyError(
                    f"session {session_id} is {row.status} and takes no more messages: fork it from a "
                    "finished turn (POST /sessions/{id}/fork) to go on"
                )
            if row.status != "waiting":
                raise SessionBusyError(
                    f"session {session_id} is {row.status}: send the next message once its round is done "
                    "(status 'waiting'); follow GET /sessions/{id}/events to know when"
                )
            spec = ProviderSpec.from_json(row.request["provider"])
            if replies and spec.name != "scripted":
                raise UserError("replies are only for sessions on the 'scripted' provider")
            if spec.name == "scripted" and not replies:
                raise UserError("this session replays a script: send the round's replies with the message")
            last = await s.scalar(
                select(func.max(SessionTurn.index)).where(SessionTurn.session_id == session_id)
            )
            index = int(last or 0) + 1
            stored = dict(row.request)
            stored["provider"] = ProviderSpec(spec.name, spec.model, (*spec.replies, *replies)).to_json()
            row.request = stored
            row.status = "running"
            row.updated_at = now()
            s.add(
                SessionTurn(
                    session_id=session_id, index=index, message=content, status="running", created_at=now()
                )
            )
        return index

    async def fork(self, key: KeyRecord, session_id: str, turn: int) -> str:
        """A new session continuing from `session_id` after turn `turn`, waiting for a message."""
        found = await self.get(key, session_id)
        assert found is not None
        source, turns = found
        chosen = next((t for t in turns if t.index == turn), None)
        if chosen is None or chosen.status != "done" or chosen.checkpoint_id is None:
            done = [t.index for t in turns if t.status == "done"]
            raise UserError(f"session {session_id} has no finished turn {turn}; finished turns: {done}")
        new_id = f"ses-{uuid.uuid4().hex[:16]}"
        state = await fork_session(session_id, chosen.checkpoint_id, new_id, settings=self.settings)
        request, spec = StoredRequest.load(source.request)
        forked_spec = ProviderSpec(spec.name, spec.model, spec.replies[: state.turn])
        async with self.db.session() as s:
            row = self._row(new_id, key.id, request, forked_spec)
            row.status, row.forked_from, row.forked_at_turn = "waiting", session_id, turn
            row.tokens_used, row.cost_usd = state.tokens_used, state.cost_usd
            s.add(row)
            await s.flush()
            for t in turns[: turn + 1]:
                s.add(
                    SessionTurn(
                        session_id=new_id,
                        index=t.index,
                        message=t.message,
                        status=t.status,
                        checkpoint_id=None,  # the fork's own thread has different checkpoints
                        summary=t.summary,
                        created_at=t.created_at,
                        finished_at=t.finished_at,
                    )
                )
        return new_id

    async def recover(self) -> int:
        async with self.db.session() as s:
            ids = list(await s.scalars(select(SessionRow.id).where(SessionRow.status == "running")))
        for session_id in ids:
            self._start(session_id)
        return len(ids)

    async def status_counts(self) -> dict[str, int]:
        async with self.db.session() as s:
            rows = await s.execute(select(SessionRow.status, func.count()).group_by(SessionRow.status))
            return {status: int(n) for status, n in rows.all()}

    @staticmethod
    def _row(session_id: str, key_id: str, request: GenerationRequest, provider: ProviderSpec) -> SessionRow:
        return SessionRow(
            id=session_id,
            key_id=key_id,
            status="running",
            problem_key=request.problem.key,
            target=request.target.value,
            provider=provider.name,
            model=provider.model,
            request=StoredRequest.dump(request, provider),
            tokens_used=0,
            cost_usd=0.0,
            created_at=now(),
            updated_at=now(),
        )

    def _start(self, session_id: str) -> None:
        task = asyncio.create_task(self._round(session_id), name=session_id)
        self._tasks[session_id] = task
        task.add_done_callback(lambda _t: self._tasks.pop(session_id, None))

    @staticmethod
    def _finish(
        session_id: str,
        turn_id: int,
        turn_status: str,
        checkpoint_id: str | None,
        summary: dict[str, Any] | None,
        error: str | None,
        session_status: str | None = None,
    ) -> Statement:
        """Close a round: its turn row and the session's status, in the transaction of its last event."""

        async def run(s: AsyncSession) -> None:
            await s.execute(
                update(SessionTurn)
                .where(SessionTurn.id == turn_id)
                .values(status=turn_status, checkpoint_id=checkpoint_id, summary=summary, finished_at=now())
            )
            await s.execute(
                update(SessionRow)
                .where(SessionRow.id == session_id)
                .values(
                    status=session_status or ("waiting" if error is None else "failed"),
                    error=error,
                    updated_at=now(),
                )
            )

        return run

    async def _add_usage(
        self, s: AsyncSession, run_id: str, tokens: int, cost: float, event: TraceEvent
    ) -> None:
        await s.execute(
            update(SessionRow)
            .where(SessionRow.id == run_id)
            .values(tokens_used=SessionRow.tokens_used + tokens, cost_usd=SessionRow.cost_usd + cost)
        )

    async def _round(self, session_id: str) -> None:
        structlog.contextvars.bind_contextvars(session_id=session_id)
        async with self.db.session() as s:
            row = await s.get(SessionRow, session_id)
            turn = await s.scalar(
                select(SessionTurn)
                .where(SessionTurn.session_id == session_id, SessionTurn.status == "running")
                .order_by(SessionTurn.index.desc())
            )
        if row is None or turn is None:
            return
        request, spec = StoredRequest.load(row.request)
        recorder = await EventRecorder.open(
            self.db, self.hub, self.metrics, session_id, hook=self._spend_hook(session_id, row.key_id)
        )
        try:
            async with self.slots.hold():
                await recorder.add("status", {"status": "running", "turn": turn.index})
                where = await read_session(session_id, settings=self.settings)
                consumed = where.state.turn if where is not None else 0
                result = await run_session_round(
                    session_id,
                    settings=self.settings,
                    provider=self.providers(spec, consumed),
                    executor=self.executor,
                    runner=self.runner,
                    budgets=request.budgets,
                    request=request if where is None else None,
                    message=turn.message if where is not None and where.waiting else None,
                    retriever=self.retriever,
                    verify_options=self.verify_options,
                    listeners=(recorder,),
                )
                summary = summarize(result.state).model_dump(mode="json")
                await recorder.add(
                    "status",
                    {"status": "waiting", "turn": turn.index, "result": summary},
                    also=self._finish(session_id, turn.id, "done", result.checkpoint_id, summary, None),
                )
        except asyncio.CancelledError:
            if not self._closing:  # the client cancelled (a server shutdown leaves the round to resume)
                await recorder.add(
                    "status",
                    {"status": "cancelled", "turn": turn.index},
                    also=self._finish(session_id, turn.id, "cancelled", None, None, CANCELLED, "cancelled"),
                )
            raise
        except KernelwrightError as exc:
            log.warning("session round failed", error=str(exc))
            await recorder.add(
                "status",
                {"status": "failed", "turn": turn.index, "error": str(exc)},
                also=self._finish(session_id, turn.id, "failed", None, None, str(exc)),
            )
        finally:
            await recorder.close()

    async def cancel(self, session_id: str) -> None:
        """End the session: a running round is stopped (its turn `cancelled`), a waiting one is closed.

        A cancelled session takes no more messages; its finished turns can still be forked.
        """
        task = self._tasks.get(session_id)
        if task is not None:
            task.cancel()
            await asyncio.wait([task])
        async with self.db.session() as s:  # waiting (no task), or a round cancelled before it began
            await s.execute(
                update(SessionRow)
                .where(SessionRow.id == session_id, SessionRow.status.in_(("waiting", "running")))
                .values(status="cancelled", error=CANCELLED, updated_at=now())
            )
            await s.execute(
                update(SessionTurn)
                .where(SessionTurn.session_id == session_id, SessionTurn.status == "running")
                .values(status="cancelled", finished_at=now())
            )
