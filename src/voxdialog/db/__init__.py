"""The store: SQLAlchemy async engine, tables, migrations and repositories."""

from voxdialog.db.engine import Database, create_engine

__all__ = ["Database", "create_engine"]
