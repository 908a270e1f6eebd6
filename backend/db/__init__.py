"""Database layer: declarative base, column types, mixins, engine and unit of work."""

from backend.db.base import Base
from backend.db.session import Database, create_engine
from backend.db.uow import unit_of_work

__all__ = ["Base", "Database", "create_engine", "unit_of_work"]
