"""Where lessons live: one SQLite file under `home` (`settings.lessons_db`), one JSON row per lesson.

Lessons are few (a handful per run) and read whole, so a row of the lesson's JSON plus the columns
that listing and pruning filter on is all the schema needed; re-storing a lesson (same id) replaces
it, which makes recording a run idempotent under LangGraph's replays and resumes.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

from kernelwright.domain import Diagnostic, Hit, Target
from kernelwright.settings import Settings
from knowledge.lessons import Lesson, LessonKind, rank_lessons

__all__ = ["LessonStore", "relevant_lessons"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS lessons (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    target TEXT NOT NULL,
    created_at TEXT NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS lessons_by_target ON lessons (target, kind);
"""


class LessonStore:
    """Lessons in SQLite. A connection per operation: safe across threads and processes."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @classmethod
    def from_settings(cls, settings: Settings) -> LessonStore:
        return cls(settings.lessons_db)

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        connection = sqlite3.connect(self.path, timeout=30.0)
        try:
            connection.executescript(_SCHEMA)
            with connection:
                yield connection
        finally:
            connection.close()

    def add(self, lessons: Sequence[Lesson]) -> int:
        """Store (or replace, by id) lessons; returns how many were given."""
        with self._connect() as db:
            db.executemany(
                "INSERT OR REPLACE INTO lessons (id, kind, target, created_at, body) VALUES (?, ?, ?, ?, ?)",
                [
                    (lesson.id, lesson.kind, lesson.target, _utc(lesson.created_at), lesson.model_dump_json())
                    for lesson in lessons
                ],
            )
        return len(lessons)

    def lessons(self, *, kind: LessonKind | None = None, target: str | None = None) -> list[Lesson]:
        """Lessons, newest first, optionally of one kind and target."""
        if not self.path.is_file():
            return []
        query = "SELECT body FROM lessons WHERE (? IS NULL OR kind = ?) AND (? IS NULL OR target = ?)"
        with self._connect() as db:
            rows = db.execute(
                query + " ORDER BY created_at DESC, id", (kind, kind, target, target)
            ).fetchall()
        return [Lesson.model_validate_json(row[0]) for row in rows]

    def get(self, lesson_id: str) -> Lesson | None:
        """A lesson by id, or by a unique id prefix (as `list` shows them)."""
        if not self.path.is_file():
            return None
        with self._connect() as db:
            rows = db.execute(
                "SELECT body FROM lessons WHERE id = ? OR id LIKE ? LIMIT 2", (lesson_id, lesson_id + "%")
            ).fetchall()
        return Lesson.model_validate_json(rows[0][0]) if len(rows) == 1 else None

    def prune(
        self, *, older_than_days: float | None = None, ids: Sequence[str] = (), now: datetime | None = None
    ) -> int:
        """Delete lessons older than a number of days and/or with the given ids; returns the count."""
        if not self.path.is_file() or (older_than_days is None and not ids):
            return 0
        deleted = 0
        with self._connect() as db:
            if older_than_days is not None:
                cutoff = (now or datetime.now(UTC)) - timedelta(days=older_than_days)
                deleted += db.execute("DELETE FROM lessons WHERE created_at < ?", (_utc(cutoff),)).rowcount
            for lesson_id in ids:
                deleted += db.execute("DELETE FROM lessons WHERE id = ?", (lesson_id,)).rowcount
        return deleted


def _utc(moment: datetime) -> str:
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    return aware.astimezone(UTC).isoformat(timespec="seconds")


def relevant_lessons(
    target: Target | str,
    diagnostics: Sequence[Diagnostic] = (),
    problem_class: str | None = None,
    k: int = 3,
    *,
    settings: Settings,
    arch: str | None = None,
) -> list[Hit]:
    """The `k` stored lessons most relevant to this situation (see `rank_lessons`), as hits of
    collection "lessons" ready to be cited in a prompt; empty when nothing was learned yet."""
    store = LessonStore.from_settings(settings)
    name = target.value if isinstance(target, Target) else target
    return rank_lessons(
        store.lessons(target=name),
        target=target,
        diagnostics=diagnostics,
        problem_class=problem_class,
        arch=arch,
        k=k,
    )
