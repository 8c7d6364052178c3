"""Service tables: API keys, jobs and their events, sessions and their turns.

Revision ID: 0001_service
Revises: (none)
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0001_service"
down_revision: str | None = None
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("secret_sha256", sa.String(64), nullable=False),
        sa.Column("prefix", sa.String(40), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("revoked_at", _TS, nullable=True),
        sa.Column("rate_limit_per_minute", sa.Integer(), nullable=True),
        sa.Column("spend_cap_usd", sa.Float(), nullable=True),
        sa.Column("spent_usd", sa.Float(), nullable=False),
        sa.Column("tokens_used", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_keys")),
    )
    op.create_table(
        "job_events",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("stream_id", sa.String(40), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_job_events")),
    )
    op.create_index("ix_job_events_stream_seq", "job_events", ["stream_id", "seq"], unique=True)
    for table in ("jobs", "sessions"):
        extra: list[sa.Column[Any]] = (
            [
                sa.Column("result", sa.JSON(), nullable=True),
                sa.Column("turns", sa.Integer(), nullable=False),
                sa.Column("started_at", _TS, nullable=True),
                sa.Column("finished_at", _TS, nullable=True),
            ]
            if table == "jobs"
            else [
                sa.Column("forked_from", sa.String(40), nullable=True),
                sa.Column("forked_at_turn", sa.Integer(), nullable=True),
                sa.Column("updated_at", _TS, nullable=False),
            ]
        )
        op.create_table(
            table,
            sa.Column("id", sa.String(40), nullable=False),
            sa.Column("key_id", sa.String(32), nullable=False),
            sa.Column("status", sa.String(24), nullable=False),
            sa.Column("problem_key", sa.String(200), nullable=False),
            sa.Column("target", sa.String(16), nullable=False),
            sa.Column("provider", sa.String(40), nullable=False),
            sa.Column("model", sa.String(200), nullable=False),
            sa.Column("request", sa.JSON(), nullable=False),
            sa.Column("error", sa.Text(), nullable=True),
            sa.Column("tokens_used", sa.Integer(), nullable=False),
            sa.Column("cost_usd", sa.Float(), nullable=False),
            sa.Column("created_at", _TS, nullable=False),
            *extra,
            sa.ForeignKeyConstraint(["key_id"], ["api_keys.id"], name=op.f(f"fk_{table}_key_id_api_keys")),
            sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{table}")),
        )
        op.create_index(op.f(f"ix_{table}_key_id"), table, ["key_id"])
        op.create_index(op.f(f"ix_{table}_status"), table, ["status"])
    op.create_table(
        "session_turns",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("session_id", sa.String(40), nullable=False),
        sa.Column("index", sa.Integer(), nullable=False),
        sa.Column("message", sa.Text(), nullable=True),
        sa.Column("status", sa.String(24), nullable=False),
        sa.Column("checkpoint_id", sa.String(64), nullable=True),
        sa.Column("summary", sa.JSON(), nullable=True),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("finished_at", _TS, nullable=True),
        sa.ForeignKeyConstraint(
            ["session_id"], ["sessions.id"], name=op.f("fk_session_turns_session_id_sessions")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_session_turns")),
    )
    op.create_index("ix_session_turns_session_index", "session_turns", ["session_id", "index"], unique=True)


def downgrade() -> None:
    op.drop_table("session_turns")
    op.drop_table("sessions")
    op.drop_table("jobs")
    op.drop_table("job_events")
    op.drop_table("api_keys")
