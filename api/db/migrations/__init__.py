"""Alembic migrations of the service tables (run at app start and by `kernelwright db upgrade`)."""
