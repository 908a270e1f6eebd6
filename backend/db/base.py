"""The declarative base every model inherits from."""

from __future__ import annotations

import re
from typing import Any, ClassVar

from sqlalchemy import MetaData
from sqlalchemy.orm import DeclarativeBase, declared_attr

from backend.db.policy import Policy

# Predictable constraint names: migrations can refer to them, and the
# repositories turn integrity errors into messages by constraint name.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

_CAMEL_BOUNDARY = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")


def snake_case(name: str) -> str:
    """`OrderItem` -> `order_item`."""
    return _CAMEL_BOUNDARY.sub("_", name).lower()


class Base(DeclarativeBase):
    """Declarative base: snake_case singular table names, named constraints, a default policy."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    # A model overrides it with its own `policy = Policy(...)` (see backend/db/policy.py).
    policy: ClassVar[Policy] = Policy()

    @declared_attr.directive
    def __tablename__(cls) -> str:  # noqa: N805 - declarative directive
        return snake_case(cls.__name__)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        table = cls.__dict__.get("__table__")
        if table is not None:
            # The directive above would run its regex again at every read of `__tablename__`
            # (permission names, masking, labels: several times per row of a list page).
            cls.__tablename__ = table.name  # type: ignore[method-assign]  # the directive, read once
