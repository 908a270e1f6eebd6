"""An in-memory unit of work, for testing a service's rule without a database.

Only for rules: what a service decides from the rows it reads. Queries,
constraints, savepoints, versions and the audit trail are the database's
business and are tested on real databases (tests/backend). So the fake keeps
rows in a dict per model, answers the generic repository reads by attribute
equality, and refuses SQL conditions rather than guess what they mean.
"""

from __future__ import annotations

import builtins
from collections.abc import AsyncIterator, Collection, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any, Generic, TypeVar, cast

from sqlalchemy import inspect

from backend.auth.actor import Actor
from backend.config import Settings
from backend.db.base import Base
from backend.db.uow import UnitOfWork
from backend.repositories.base import Repository
from tests.databases import make_settings

ModelT = TypeVar("ModelT", bound=Base)


class FakeRepository(Generic[ModelT]):
    """The rows of one model, by id; soft-deleted rows hidden unless asked for, as in `Repository`."""

    def __init__(self, model: type[ModelT], unit: FakeUnitOfWork | None = None) -> None:
        self.model = model
        self.rows: dict[int, ModelT] = {}
        self.unit = unit

    @property
    def soft_deletable(self) -> bool:
        return hasattr(self.model, "deleted_at")

    async def get(self, id_: object, *, include_deleted: bool = False, **_options: object) -> ModelT | None:
        row = self.rows.get(cast(int, id_))
        return row if row is not None and self._shown(row, include_deleted) else None

    async def get_many(
        self, ids: Collection[object], *, include_deleted: bool = False, **_options: object
    ) -> builtins.list[ModelT]:
        return [row for row in self._matching({}, include_deleted) if row.id in ids]

    async def get_by(self, *, include_deleted: bool = False, **filters: object) -> ModelT | None:
        return next(iter(self._matching(filters, include_deleted)), None)

    async def list(
        self,
        *,
        filters: Mapping[str, object] | None = None,
        where: Sequence[object] = (),
        include_deleted: bool = False,
        **_options: object,
    ) -> builtins.list[ModelT]:
        if where:
            raise TypeError("A SQL condition needs a real database: test this on one, or use filters.")
        return self._matching(filters or {}, include_deleted)

    async def count(
        self,
        *,
        filters: Mapping[str, object] | None = None,
        where: Sequence[object] = (),
        include_deleted: bool = False,
    ) -> int:
        return len(await self.list(filters=filters, where=where, include_deleted=include_deleted))

    async def exists(self, *, include_deleted: bool = False, **filters: object) -> bool:
        return bool(self._matching(filters, include_deleted))

    async def refresh(self, obj: ModelT, *attributes: str) -> None:
        """Nothing to load: in memory every collection is already there."""

    async def load(self, obj: ModelT, *attributes: str) -> None:
        """The one-to-many collections `attributes` of `obj`, from the rows this unit holds, deleted ones
        included, as `Repository.load` reads them."""
        for name in attributes:
            relationship = inspect(self.model).relationships[name]
            ((local, remote),) = relationship.local_remote_pairs
            if self.unit is None:
                raise TypeError("a repository made outside a FakeUnitOfWork cannot load related rows")
            children = self.unit.repo(relationship.mapper.class_).rows.values()
            key = getattr(obj, str(local.key))
            setattr(obj, name, [row for row in children if getattr(row, str(remote.key)) == key])

    def stage(self, obj: ModelT) -> ModelT:
        if getattr(obj, "id", None) is None:
            obj.id = max(self.rows, default=0) + 1
        self.rows[obj.id] = obj
        return obj

    async def delete(self, obj: ModelT) -> None:
        self.rows.pop(obj.id)

    @asynccontextmanager
    async def savepoint(self) -> AsyncIterator[None]:
        """No transaction to undo: a refusal is checked by what it raises, before anything changes."""
        yield

    def _shown(self, row: ModelT, include_deleted: bool) -> bool:
        return include_deleted or not self.soft_deletable or getattr(row, "deleted_at", None) is None

    def _matching(self, filters: Mapping[str, object], include_deleted: bool) -> builtins.list[ModelT]:
        return [
            row
            for _, row in sorted(self.rows.items())
            if self._shown(row, include_deleted)
            and all(getattr(row, name) == value for name, value in filters.items())
        ]


class FakeUnitOfWork:
    """Stands in for `UnitOfWork`: an actor, settings and one `FakeRepository` per model."""

    def __init__(self, actor: Actor, *, settings: Settings | None = None) -> None:
        self.actor = actor
        self.settings = settings or make_settings("sqlite+aiosqlite:///:memory:")
        self.repositories: dict[type[Any], FakeRepository[Any]] = {}
        self.restoring = False

    def repo(self, kind: type[Any]) -> FakeRepository[Any]:
        model = kind.model if issubclass(kind, Repository) else kind
        return self.repositories.setdefault(model, FakeRepository(model, self))

    def add(self, *rows: Base) -> None:
        """Test setup: put rows in their model's repository."""
        for row in rows:
            self.repo(type(row)).stage(row)

    def as_uow(self) -> UnitOfWork:
        """This fake, typed as what services take (they only use `actor`, `settings` and `repo`)."""
        return cast(UnitOfWork, self)
