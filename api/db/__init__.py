"""Service storage: SQLAlchemy models (SQLite by default, Postgres by URL) and Alembic migrations."""
