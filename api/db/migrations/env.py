"""Alembic environment for SQLite and Postgres; the URL comes from the caller (`api.services.migrations`).

Migrations run synchronously (sqlite / psycopg drivers), so the async service engine is not involved.
"""

from __future__ import annotations

import contextlib

from alembic import context
from sqlalchemy import create_engine, pool

import api.db.models  # registers the service tables on Base.metadata
from api.db.base import Base

with contextlib.suppress(ImportError):
    import api.db.batch_tables  # noqa: F401  (the batch tables, once that module exists)

target_metadata = Base.metadata


def run_migrations() -> None:
    url = context.config.get_main_option("sqlalchemy.url")
    if not url:
        raise RuntimeError("alembic needs sqlalchemy.url: use api.services.migrations or kernelwright db")
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _run(connection, url)
        return
    engine = create_engine(url, poolclass=pool.NullPool)
    with engine.connect() as conn:
        _run(conn, url)
    engine.dispose()


def _run(connection: object, url: str) -> None:
    context.configure(
        connection=connection,  # type: ignore[arg-type]
        target_metadata=target_metadata,
        render_as_batch=url.startswith("sqlite"),  # SQLite alters tables by copying them
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


run_migrations()
