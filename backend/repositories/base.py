"""A typed generic repository: the common queries for one model."""

from __future__ import annotations

import builtins
from collections.abc import AsyncIterator, Collection, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar, Generic, TypeVar

from sqlalchemy import ARRAY, ColumnElement, Select, any_, bindparam, func, inspect, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import MANYTOONE, InstrumentedAttribute
from sqlalchemy.orm.interfaces import ORMOption
from sqlalchemy.sql.schema import Table

from backend.db.base import Base
from backend.db.integrity import Violation, describe_violation
from backend.db.statistics import analyze, btree_lookups
from backend.repositories.bulk import bulk_insert, insert_built, insert_values

ModelT = TypeVar("ModelT", bound=Base)
ValueT = TypeVar("ValueT")


class IntegrityViolation(Exception):
    """An integrity error with the violated constraint worked out; services word it."""

    def __init__(self, violation: Violation) -> None:
        super().__init__(
            f"{violation.kind} violation ({violation.constraint or ', '.join(violation.columns)})"
        )
        self.violation = violation


@asynccontextmanager
async def savepoint(session: AsyncSession, table: Table) -> AsyncIterator[None]:
    """The body's changes and their flush, all or nothing; constraint failures become `IntegrityViolation`.

    The savepoint is rolled back when the body or the flush fails, and what was
    added inside it is dropped, so the unit of work stays usable and a later
    flush does not retry the failed write. `table` names the constraints.
    """
    try:
        async with session.begin_nested():
            yield
            await session.flush()
    except IntegrityError as exc:
        raise IntegrityViolation(describe_violation(exc, table)) from exc


@dataclass
class Held:
    """A record as plain values (`Repository.held_values`): columns, and collection key -> related ids."""

    values: dict[str, Any]
    related: dict[str, builtins.list[Any]] = field(default_factory=dict)


class Repository(Generic[ModelT]):
    """Reads and writes one model. Soft-deleted rows are hidden unless asked for.

    A model that needs its own queries gets a subclass that sets `model`
    (in `backend/repositories/<thing>.py`); `UnitOfWork.repo(Model)` then
    returns that subclass. Nothing here commits.
    """

    model: type[ModelT]
    _by_model: ClassVar[dict[type[Any], type[Repository[Any]]]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        model = cls.__dict__.get("model")
        if model is not None:
            if model in Repository._by_model:
                raise TypeError(f"{model.__name__} already has {Repository._by_model[model].__name__}")
            Repository._by_model[model] = cls

    @staticmethod
    def class_for(model: type[Any]) -> type[Repository[Any]]:
        """The repository class declared for `model`, else the generic one."""
        return Repository._by_model.get(model, Repository)

    def __init__(self, session: AsyncSession, model: type[ModelT] | None = None) -> None:
        self.session = session
        if model is not None:
            self.model = model

    @property
    def soft_deletable(self) -> bool:
        return hasattr(self.model, "deleted_at")

    def select(self, *, include_deleted: bool = False) -> Select[ModelT]:
        stmt = select(self.model)
        if self.soft_deletable and not include_deleted:
            stmt = stmt.where(self._column("deleted_at").is_(None))
        return stmt

    # Reads ------------------------------------------------------------------

    async def get(
        self,
        id_: object,
        *,
        include_deleted: bool = False,
        options: Sequence[ORMOption] = (),
        for_update: bool = False,
    ) -> ModelT | None:
        """The row `id_`, or None; a soft-deleted row only with `include_deleted`.

        A row this session already holds is returned without a query (the
        admin loads the row a request is about, then the service asks again).
        """
        if not options and not for_update:
            obj = await self.session.get(self.model, id_)
            hidden = obj is not None and self.soft_deletable and not include_deleted
            return None if hidden and getattr(obj, "deleted_at", None) is not None else obj
        stmt = self.select(include_deleted=include_deleted).where(self._column("id") == id_).options(*options)
        if for_update:
            stmt = stmt.with_for_update()
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def get_many(
        self, ids: Collection[object], *, include_deleted: bool = False, options: Sequence[ORMOption] = ()
    ) -> builtins.list[ModelT]:
        """The rows among `ids` (in id order); missing ones are simply absent.

        When this session already holds every one of them (an import loads a
        batch's related records first), they are returned without a query.
        """
        if not ids:
            return []
        if not options:
            held = self._held(ids, include_deleted=include_deleted)
            if held is not None:
                return held
        where = [self.one_of(self._column("id"), ids)]
        return await self.list(where=where, include_deleted=include_deleted, options=options)

    def _held(self, ids: Collection[object], *, include_deleted: bool) -> builtins.list[ModelT] | None:
        """The rows `ids` from the identity map, fully loaded, or None when any one is not there."""
        identity_map = self.session.sync_session.identity_map
        rows = []
        for id_ in sorted(set(ids), key=str):
            obj = identity_map.get(self.session.sync_session.identity_key(self.model, id_))
            if obj is None or inspect(obj).expired_attributes:
                return None
            if not include_deleted and self.soft_deletable and getattr(obj, "deleted_at", None) is not None:
                continue
            rows.append(obj)
        return sorted(rows, key=lambda row: row.id)

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

    async def by_keys(
        self,
        name: str,
        keys: Collection[object],
        *,
        include_deleted: bool = False,
        options: Sequence[ORMOption] = (),
        refresh: bool = False,
    ) -> builtins.list[ModelT]:
        """The rows whose column `name` (a unique key: id, SKU, slug) is among `keys`, found through its
        btree index (see `btree_lookups`); for a batch of keys at a time, not thousands in one call.
        `refresh` reloads rows the session holds already (after a rolled-back savepoint expired them)."""
        if not keys:
            return []
        stmt = (
            self.select(include_deleted=include_deleted)
            .where(self.one_of(self._column(name), keys))
            .options(*options)
            .execution_options(populate_existing=refresh)
        )
        async with btree_lookups(self.session):
            return builtins.list((await self.session.execute(stmt)).scalars())

    async def ids_and_keys(
        self, name: str, keys: Collection[object], *, key: str, include_deleted: bool = False
    ) -> builtins.list[tuple[Any, Any]]:
        """(id, column `key`) of the rows whose column `name` (a unique key) is among `keys`, found through
        its btree index (see `by_keys`), as plain values: what an import's cells naming related records
        resolve to, with no object built per record."""
        if not keys:
            return []
        stmt = select(self._column("id"), self._column(key)).where(self.one_of(self._column(name), keys))
        if self.soft_deletable and not include_deleted:
            stmt = stmt.where(self._column("deleted_at").is_(None))
        async with btree_lookups(self.session):
            return [(id_, value) for id_, value in await self.session.execute(stmt)]

    async def taken(self, name: str, keys: Collection[object], *, include_deleted: bool = False) -> set[Any]:
        """Which of `keys` a row holds in column `name` (a unique key), found through its btree index (see
        `by_keys`): a batch of an import's values checked against a million rows at once."""
        if not keys:
            return set()
        column = self._column(name)
        stmt = select(column).where(self.one_of(column, keys))
        if self.soft_deletable and not include_deleted:
            stmt = stmt.where(self._column("deleted_at").is_(None))
        async with btree_lookups(self.session):
            return set((await self.session.execute(stmt)).scalars())

    async def held_values(
        self, name: str, keys: Collection[object], *, collections: Sequence[str] = ()
    ) -> builtins.list[Held]:
        """The live rows whose column `name` is among `keys`, as plain values: their columns, and the ids
        each many-to-many collection in `collections` holds (in the trash or not, as the relationship
        loads them). For comparing thousands of a file's rows with the records, an object for none."""
        if not keys:
            return []
        stmt = select(*self.table.c).where(self.one_of(self._column(name), keys))
        if self.soft_deletable:
            stmt = stmt.where(self._column("deleted_at").is_(None))
        async with btree_lookups(self.session):
            result = await self.session.execute(stmt)
            names = builtins.list(result.keys())
            rows = [Held(dict(zip(names, row, strict=True))) for row in result]
        by_id = {row.values["id"]: row for row in rows}
        mapper = inspect(self.model)
        for key in collections:
            relationship = mapper.relationships[key]
            secondary = relationship.secondary
            ((_own, owner_link),) = relationship.synchronize_pairs
            ((_other, target_link),) = relationship.secondary_synchronize_pairs or ()
            for row in rows:
                row.related[key] = []
            links = select(owner_link, target_link).where(self.one_of(owner_link, by_id))
            if secondary is not None and by_id:
                for owner_id, target_id in await self.session.execute(links):
                    by_id[owner_id].related[key].append(target_id)
        return rows

    async def values(
        self,
        attribute: InstrumentedAttribute[ValueT],
        *,
        filters: Mapping[str, object] | None = None,
        where: Sequence[ColumnElement[bool]] = (),
        include_deleted: bool = False,
    ) -> builtins.list[ValueT]:
        """One column of the matching rows (ids, slugs), in id order, without loading the rows."""
        stmt = select(attribute).where(*self._conditions(filters or {}), *where)
        if self.soft_deletable and not include_deleted:
            stmt = stmt.where(self._column("deleted_at").is_(None))
        return builtins.list((await self.session.execute(stmt.order_by(self._column("id")))).scalars())

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

    async def load(self, obj: ModelT, *attributes: str) -> None:
        """Load the `attributes` of `obj` this session has not loaded yet (nothing lazy-loads).

        A collection about to be replaced must be loaded first; one the caller
        already loaded in this unit of work (the admin's row) is not read again.
        """
        unloaded = inspect(obj).unloaded
        missing = [name for name in attributes if name in unloaded]
        if missing:
            await self.session.refresh(obj, attribute_names=missing)

    async def in_trash(
        self, *, deleted_by: str | None = None, since: datetime | None = None, limit: int | None = None
    ) -> builtins.list[tuple[ModelT, str | None]]:
        """Deleted rows, newest deletion first, each with who deleted it (None: the system)."""
        deleted_at, deleted_by_id = self._column("deleted_at"), self._column("deleted_by_id")
        # The users table, found from the foreign key and aliased: a user's own trash joins it twice.
        users = next(iter(self.table.c.deleted_by_id.foreign_keys)).column.table.alias("deleter")
        stmt = (
            select(self.model, users.c.username)
            .outerjoin(users, users.c.id == deleted_by_id)
            .where(deleted_at.is_not(None))
            .order_by(deleted_at.desc(), self._column("id").desc())
            .limit(limit)
        )
        if deleted_by:
            stmt = stmt.where(users.c.username == deleted_by)
        if since:
            stmt = stmt.where(deleted_at >= since)
        return [(row[0], row[1]) for row in (await self.session.execute(stmt)).all()]

    async def deleted_parents(self, obj: ModelT) -> builtins.list[tuple[str, str]]:
        """(table, id) of each soft-deleted record that `obj` refers to by a many-to-one relationship.

        Reads the foreign key values already on `obj` and asks one query per
        relationship, so nothing is lazy-loaded (relationships here are `lazy="raise"`).
        """
        mapper = inspect(type(obj))
        found: builtins.list[tuple[str, str]] = []
        for relationship in mapper.relationships:
            parent = relationship.mapper
            parent_deleted_at = getattr(parent.class_, "deleted_at", None)
            if relationship.direction is not MANYTOONE or parent_deleted_at is None:
                continue
            pairs = relationship.local_remote_pairs or []
            values = [getattr(obj, mapper.get_property_by_column(local).key) for local, _ in pairs]
            if not pairs or any(value is None for value in values):
                continue
            stmt = (
                select(*parent.primary_key)
                .where(*(remote == value for (_, remote), value in zip(pairs, values, strict=True)))
                .where(parent_deleted_at.is_not(None))
                .limit(1)
            )
            row = (await self.session.execute(stmt)).first()
            if row is not None:
                found.append((str(parent.class_.__tablename__), ",".join(str(part) for part in row)))
        return found

    # Writes -----------------------------------------------------------------

    def stage(self, obj: ModelT) -> ModelT:
        """Add `obj` to the unit of work; it is inserted at the next flush."""
        self.session.add(obj)
        return obj

    async def delete(self, obj: ModelT) -> None:
        """Mark `obj` for a hard delete at the next flush (soft delete is a change of `deleted_at`)."""
        await self.session.delete(obj)

    async def insert_built(self, objects: Sequence[ModelT]) -> builtins.list[ModelT]:
        """Insert many new objects set-based, audited (see `bulk.insert_built`); returns those it left for
        the session to add. Inside `savepoint()`, so a constraint failure becomes `IntegrityViolation`."""
        return await insert_built(self.session, objects)

    async def insert_values(
        self, rows: Sequence[dict[str, Any]], related: Sequence[dict[str, builtins.list[Any]]]
    ) -> builtins.list[dict[str, Any]]:
        """Insert new rows from their values, audited, building no object (see `bulk.insert_values`);
        returns them as inserted. Inside `savepoint()`, a constraint failure becomes `IntegrityViolation`."""
        return await insert_values(self.session, self.model, rows, related)

    async def add(self, obj: ModelT) -> ModelT:
        """Insert `obj` now; on a constraint failure it leaves the session again."""
        await self.flush(adding=obj)
        return obj

    async def flush(self, *, adding: ModelT | None = None) -> None:
        """Flush pending changes in a savepoint (see `savepoint`); raises `IntegrityViolation`."""
        async with self.savepoint():
            if adding is not None:
                self.session.add(adding)

    def savepoint(self) -> AbstractAsyncContextManager[None]:
        """`async with repo.savepoint():` the module's `savepoint`, naming this model's constraints."""
        return savepoint(self.session, self.table)

    async def set_columns(self, id_: object, **values: object) -> int:
        """UPDATE the row's columns without the ORM: no version bump, no audit entry; returns rows hit.

        For bookkeeping that is not an edit (a sign-in stamp), so it never
        collides with a concurrent edit of the same row.
        """
        stmt = update(self.model).where(self._column("id") == id_).values(**values)
        result = await self.session.execute(stmt.execution_options(synchronize_session=False))
        return int(getattr(result, "rowcount", 0) or 0)

    async def bulk_insert(self, columns: Sequence[str], rows: Sequence[tuple[Any, ...]]) -> None:
        """Insert generated rows without ORM objects (COPY on PostgreSQL): no events, no audit."""
        await bulk_insert(self.session, self.table, columns, rows)

    async def analyze(self) -> None:
        """Refresh the planner statistics of the table, after a bulk write (see backend.db.statistics)."""
        await analyze(self.session, [self.table])

    # Helpers ----------------------------------------------------------------

    @property
    def table(self) -> Table:
        table = self.model.__table__
        if not isinstance(table, Table):
            raise TypeError(f"{self.model.__name__} is not mapped to a table")
        return table

    def one_of(self, column: Any, keys: Collection[object]) -> ColumnElement[bool]:
        """`column IN (keys)`; on PostgreSQL `column = ANY(:keys)`, one array parameter: SQLAlchemy renders
        each value of an IN list (with its cast) on every execution, which for a batch of 2,000 SKUs
        cost more than the lookup itself. Both use the column's btree index."""
        condition: ColumnElement[bool]
        if self.session.get_bind().dialect.name == "postgresql":
            condition = column == any_(bindparam(None, [*keys], type_=ARRAY(column.type)))
        else:
            condition = column.in_([*keys])
        return condition

    def _column(self, name: str) -> InstrumentedAttribute[Any]:
        attribute = getattr(self.model, name)
        if not isinstance(attribute, InstrumentedAttribute):
            raise TypeError(f"{self.model.__name__}.{name} is not a mapped attribute")
        return attribute

    def _conditions(self, filters: Mapping[str, object]) -> builtins.list[ColumnElement[bool]]:
        return [self._column(name) == value for name, value in filters.items()]
