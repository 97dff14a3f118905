"""Alembic revision scripts, applied in order by ``voxdialog.db.migrate``."""
