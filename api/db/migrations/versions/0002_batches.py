"""KernelBench batch tables: batches, their problems, and samples with idempotent keys.

Revision ID: 0002_batches
Revises: 0001_service
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_batches"
down_revision: str | None = "0001_service"
branch_labels = None
depends_on = None

_TS = sa.DateTime(timezone=True)


def _batch_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["batch_id"], ["batches.id"], name=op.f(f"fk_{table}_batch_id_batches"), ondelete="CASCADE"
    )


def upgrade() -> None:
    op.create_table(
        "batches",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("target", sa.String(16), nullable=False),
        sa.Column("provider", sa.String(64), nullable=False),
        sa.Column("models", sa.JSON(), nullable=False),
        sa.Column("samples_per_problem", sa.Integer(), nullable=False),
        sa.Column("suite", sa.JSON(), nullable=False),
        sa.Column("options", sa.JSON(), nullable=False),
        sa.Column("limit_llm", sa.Integer(), nullable=False),
        sa.Column("limit_gpu", sa.Integer(), nullable=False),
        sa.Column("cancel_requested", sa.Boolean(), nullable=False),
        sa.Column("owner", sa.String(64), nullable=True),
        sa.Column("runner", sa.String(200), nullable=True),
        sa.Column("heartbeat_at", _TS, nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
        sa.Column("finished_at", _TS, nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_batches")),
    )
    op.create_index(op.f("ix_batches_status"), "batches", ["status"])
    op.create_table(
        "batch_problems",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("batch_id", sa.String(64), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("problem_key", sa.String(200), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("level", sa.Integer(), nullable=True),
        sa.Column("problem_id", sa.Integer(), nullable=True),
        sa.Column("origin", sa.Text(), nullable=True),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("transforms", sa.JSON(), nullable=False),
        _batch_fk("batch_problems"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_batch_problems")),
        sa.UniqueConstraint("batch_id", "problem_key", name=op.f("uq_batch_problems_batch_id")),
    )
    op.create_index(op.f("ix_batch_problems_batch_id"), "batch_problems", ["batch_id"])
    op.create_table(
        "batch_samples",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("sample_key", sa.String(64), nullable=False),
        sa.Column("batch_id", sa.String(64), nullable=False),
        sa.Column("problem_key", sa.String(200), nullable=False),
        sa.Column("level", sa.Integer(), nullable=True),
        sa.Column("sample_index", sa.Integer(), nullable=False),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("run_id", sa.String(120), nullable=False),
        sa.Column("starts", sa.Integer(), nullable=False),
        sa.Column("run_status", sa.String(32), nullable=True),
        sa.Column("outcome", sa.String(32), nullable=True),
        sa.Column("compiled", sa.Boolean(), nullable=True),
        sa.Column("correct", sa.Boolean(), nullable=True),
        sa.Column("speedup_vs_eager", sa.Float(), nullable=True),
        sa.Column("speedup_vs_compile", sa.Float(), nullable=True),
        sa.Column("turns", sa.Integer(), nullable=False),
        sa.Column("tokens", sa.Integer(), nullable=False),
        sa.Column("cost_usd", sa.Float(), nullable=False),
        sa.Column("wall_s", sa.Float(), nullable=True),
        sa.Column("device", sa.String(200), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("started_at", _TS, nullable=True),
        sa.Column("finished_at", _TS, nullable=True),
        _batch_fk("batch_samples"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_batch_samples")),
        sa.UniqueConstraint("sample_key", name=op.f("uq_batch_samples_sample_key")),
    )
    op.create_index(op.f("ix_batch_samples_batch_id"), "batch_samples", ["batch_id"])
    op.create_index(op.f("ix_batch_samples_status"), "batch_samples", ["status"])


def downgrade() -> None:
    op.drop_table("batch_samples")
    op.drop_table("batch_problems")
    op.drop_table("batches")
