"""Database layer: declarative base, column types, mixins, engine and unit of work.

The unit of work (`backend.db.uow`) is imported from its module: it hands out
repositories and installs the audit trail, which need the models, and the
models import this package.
"""

from backend.db.base import Base
from backend.db.session import Database, create_engine

__all__ = ["Base", "Database", "create_engine"]
