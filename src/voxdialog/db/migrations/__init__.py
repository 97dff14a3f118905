"""Alembic migrations of the VoxDialog database."""
