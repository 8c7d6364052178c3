"""Run the Alembic migrations programmatically (app start, `kernelwright db upgrade`) and report the revision.

The migration scripts ship inside the package (`api/db/migrations`), so an installed kernelwright can
create and upgrade its database without an alembic.ini.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, pool
from sqlalchemy.engine import make_url

from kernelwright.errors import UserError

__all__ = ["alembic_config", "current_revision", "head_revision", "sync_url", "upgrade"]

MIGRATIONS = Path(__file__).resolve().parent.parent / "db" / "migrations"


def sync_url(url: str) -> str:
    """`url` with the synchronous driver Alembic uses (sqlite / psycopg)."""
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return str(parsed.set(drivername="sqlite"))
    if backend == "postgresql":
        return parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
    raise UserError(f"unsupported database URL {parsed.drivername!r}: use sqlite:///PATH or postgresql://...")


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    # configparser interpolation: a literal % in a password must be doubled
    config.set_main_option("sqlalchemy.url", sync_url(url).replace("%", "%%"))
    return config


def _ensure_sqlite_dir(url: str) -> None:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)


def upgrade(url: str, revision: str = "heads") -> None:
    """Bring the database at `url` to `revision` (all heads by default). Idempotent."""
    _ensure_sqlite_dir(url)
    command.upgrade(alembic_config(url), revision)


def head_revision(url: str) -> set[str]:
    return set(ScriptDirectory.from_config(alembic_config(url)).get_heads())


def current_revision(url: str) -> set[str]:
    """The revisions the database is at (empty for a fresh database)."""
    engine = create_engine(sync_url(url), poolclass=pool.NullPool)
    try:
        with engine.connect() as conn:
            return set(MigrationContext.configure(conn).get_current_heads())
    finally:
        engine.dispose()
