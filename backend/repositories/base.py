"""A typed generic repository: the common queries for one model."""

from __future__ import annotations

import builtins
from collections.abc import Mapping, Sequence
from typing import Any, Generic, TypeVar

from sqlalchemy import ColumnElement, Select, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute
from sqlalchemy.orm.interfaces import ORMOption
from sqlalchemy.sql.schema import Table

from backend.db.base import Base
from backend.db.integrity import Violation, describe_violation

ModelT = TypeVar("ModelT", bound=Base)


class IntegrityViolation(Exception):
    """An integrity error with the violated constraint worked out; services word it."""

    def __init__(self, violation: Violation) -> None:
        super().__init__(
            f"{violation.kind} violation ({violation.constraint or ', '.join(violation.columns)})"
        )
        self.violation = violation


class Repository(Generic[ModelT]):
    """Reads and writes one model. Soft-deleted rows are hidden unless asked for.

    Writes flush inside a savepoint, so a failed write leaves the rest of the
    unit of work usable; nothing here commits.
    """

    def __init__(self, session: AsyncSession, model: type[ModelT]) -> None:
        self.session = session
        self.model = model

    @property
    def soft_deletable(self) -> bool:
        return hasattr(self.model, "deleted_at")

    def select(self, *, include_deleted: bool = False) -> Select[ModelT]:
        stmt = select(self.model)
        if self.soft_deletable and not include_deleted:
            stmt = stmt.where(self._column("deleted_at").is_(None))
        return stmt

    async def get(
        self,
        id_: object,
        *,
        include_deleted: bool = False,
        options: Sequence[ORMOption] = (),
        for_update: bool = False,
    ) -> ModelT | None:
        stmt = self.select(include_deleted=include_deleted).where(self._column("id") == id_).options(*options)
        if for_update:
            stmt = stmt.with_for_update()
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def get_by(
        self, *, include_deleted: bool = False, options: Sequence[ORMOption] = (), **filters: object
    ) -> ModelT | None:
        stmt = (
            self.select(include_deleted=include_deleted).where(*self._conditions(filters)).options(*options)
        )
        return (await self.session.execute(stmt.limit(1))).scalar_one_or_none()

    async def list(
        self,
        *,
        filters: Mapping[str, object] | None = None,
        where: Sequence[ColumnElement[bool]] = (),
        order_by: Sequence[Any] = (),
        limit: int | None = None,
        offset: int | None = None,
        include_deleted: bool = False,
        options: Sequence[ORMOption] = (),
    ) -> builtins.list[ModelT]:
        stmt = (
            self.select(include_deleted=include_deleted)
            .where(*self._conditions(filters or {}), *where)
            .options(*options)
        )
        stmt = stmt.order_by(*(order_by or (self._column("id"),))).limit(limit).offset(offset)
        return builtins.list((await self.session.execute(stmt)).scalars().all())

    async def count(
        self,
        *,
        filters: Mapping[str, object] | None = None,
        where: Sequence[ColumnElement[bool]] = (),
        include_deleted: bool = False,
    ) -> int:
        inner = self.select(include_deleted=include_deleted).where(*self._conditions(filters or {}), *where)
        stmt = select(func.count()).select_from(inner.subquery())
        return int((await self.session.execute(stmt)).scalar_one())

    async def exists(self, *, include_deleted: bool = False, **filters: object) -> bool:
        stmt = self.select(include_deleted=include_deleted).where(*self._conditions(filters)).limit(1)
        return (await self.session.execute(stmt)).first() is not None

    async def add(self, obj: ModelT) -> ModelT:
        """Insert `obj`; on a constraint failure it leaves the session again."""
        await self.flush(adding=obj)
        return obj

    async def flush(self, *, adding: object | None = None) -> None:
        """Flush pending changes; raise `IntegrityViolation` on a constraint failure.

        The flush runs in a savepoint: when it fails, the savepoint is rolled
        back and what was added inside it is dropped, so the unit of work stays
        usable and a later flush does not retry the failed insert.
        """
        try:
            async with self.session.begin_nested():
                if adding is not None:
                    self.session.add(adding)
                await self.session.flush()
        except IntegrityError as exc:
            raise IntegrityViolation(describe_violation(exc, self._table())) from exc

    @property
    def table(self) -> Table:
        return self._table()

    def _table(self) -> Table:
        table = self.model.__table__
        if not isinstance(table, Table):
            raise TypeError(f"{self.model.__name__} is not mapped to a table")
        return table

    def _column(self, name: str) -> InstrumentedAttribute[Any]:
        attribute = getattr(self.model, name)
        if not isinstance(attribute, InstrumentedAttribute):
            raise TypeError(f"{self.model.__name__}.{name} is not a mapped attribute")
        return attribute

    def _conditions(self, filters: Mapping[str, object]) -> builtins.list[ColumnElement[bool]]:
        return [self._column(name) == value for name, value in filters.items()]
