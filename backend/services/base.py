"""CrudService: permission check, validation, write, and readable errors, for any model."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from datetime import UTC, datetime
from functools import cache
from typing import Any, ClassVar, Generic, TypeVar

from pydantic import BaseModel, TypeAdapter, ValidationError
from sqlalchemy import inspect
from sqlalchemy.orm.exc import StaleDataError

from backend.auth.actor import Actor
from backend.db.base import Base
from backend.db.uow import UnitOfWork
from backend.errors import Conflict, NotFound, ValidationFailed
from backend.repositories.audit import AuditEntryRepository
from backend.repositories.base import IntegrityViolation, Repository
from backend.schemas.derived import DerivedSchema, create_schema_for, update_schema_for
from backend.services import masking
from backend.services.references import collections, missing_many_message, references
from backend.values import InvalidValue, as_id, is_id

ModelT = TypeVar("ModelT", bound=Base)
CreateT = TypeVar("CreateT", bound=BaseModel)
UpdateT = TypeVar("UpdateT", bound=BaseModel)
SchemaT = TypeVar("SchemaT", bound=BaseModel)
RowT = TypeVar("RowT", bound=Base)


def validate(schema: type[SchemaT], data: SchemaT | Mapping[str, Any]) -> SchemaT:
    """Parse `data` with `schema`; raise `ValidationFailed` with one entry per field."""
    if isinstance(data, schema):
        return data
    try:
        return schema.model_validate(data)
    except ValidationError as exc:
        errors: dict[str, list[str]] = {}
        for error in exc.errors():
            field = str(error["loc"][0]) if error["loc"] else "__all__"
            message = str(error["msg"]).removeprefix("Value error, ")
            if error["type"] == "string_pattern_mismatch":
                message = "Use only letters, digits and the characters shown in the help text."
            elif error["type"] == "extra_forbidden":
                message = "This field is not accepted."
            errors.setdefault(field, []).append(message)
        raise ValidationFailed(errors) from exc


@cache  # a schema does not change while the process runs
def _list_adapter(schema: type[BaseModel]) -> TypeAdapter[list[Any]]:
    """Validates a list of `schema` inputs in one call, each item exactly as `schema.model_validate`."""
    return TypeAdapter(list[schema])  # type: ignore[valid-type]  # a schema known only at run time


@dataclass
class _Write:
    """The record a write is about, and its values before the flush, for error messages.

    A failed flush rolls its savepoint back and expires the record, so the
    values that clashed are read from this copy, not from the record.
    """

    obj: Any = None
    values: dict[str, Any] = dataclass_field(default_factory=dict)

    def remember_values(self) -> None:
        if self.obj is not None:
            self.values = dict(inspect(self.obj).dict)


class CrudService(Generic[ModelT, CreateT, UpdateT]):
    """Create, read, update and (soft) delete one model, for one actor.

    Subclasses set `model`, optionally `create_schema` and `update_schema`
    (derived from the model's columns when not set: backend/schemas/derived.py),
    and put their rules in `build`, `apply` and `before_delete`. Every method checks the
    actor's `<table>.<action>` permission first and raises `PermissionDenied`,
    `NotFound`, `ValidationFailed` or `Conflict` with a message for a person.
    """

    model: ClassVar[type[Any]]
    # Descriptors until a subclass sets its own: they read as the schemas derived from `model`.
    create_schema: ClassVar[type[BaseModel]] = DerivedSchema(create_schema_for)  # type: ignore[assignment]
    update_schema: ClassVar[type[BaseModel]] = DerivedSchema(update_schema_for)  # type: ignore[assignment]
    label: ClassVar[str] = ""
    # column -> message for a unique clash; "{value}" is the clashing value
    unique_messages: ClassVar[dict[str, str]] = {}
    # CHECK constraint name -> (field, message), for when the database catches a rule first
    check_messages: ClassVar[dict[str, tuple[str, str]]] = {}

    def __init__(self, uow: UnitOfWork) -> None:
        self.uow = uow
        self.repo: Repository[ModelT] = uow.repo(self.model)

    @property
    def actor(self) -> Actor:
        return self.uow.actor

    @property
    def table(self) -> str:
        return str(self.model.__tablename__)

    @property
    def noun(self) -> str:
        return self.label or self.table.replace("_", " ")

    def require(self, action: str) -> None:
        self.actor.require(f"{self.table}.{action}")

    async def get(self, id_: object) -> ModelT:
        """The live record `id_` (needs `.view`); `NotFound` if absent or deleted."""
        self.require("view")
        return await self._get_live(id_)

    async def create(self, data: CreateT | Mapping[str, Any]) -> ModelT:
        """Validate and insert a record (needs `.add`)."""
        self.require("add")
        payload = self.parse_create(data)
        async with self.writing() as write:
            obj = write.obj = await self.build(payload)
            self.repo.stage(obj)
        return obj

    async def update(
        self, id_: object, data: UpdateT | Mapping[str, Any], *, expected_version: int | None = None
    ) -> ModelT:
        """Validate and apply the given fields (needs `.change`).

        With `expected_version` (the version the caller's form was opened at)
        the record must still be at that version, and its UPDATE matches on it
        (`WHERE version = expected_version`, see `VersionMixin`): of concurrent
        saves from one version exactly one is written, the others raise
        `Conflict`, as does a save from an older version. A save that changes
        nothing writes nothing (no UPDATE, no new version, no audit entry).
        """
        self.require("change")
        obj = await self._get_live(id_)
        await self.check_version(obj, expected_version)
        payload = self.parse_update(data)
        async with self.writing(obj):
            await self.apply(obj, payload)
        return obj

    def parse_create(self, data: CreateT | Mapping[str, Any]) -> CreateT:
        """`data` as the typed create input; `ValidationFailed` with one entry per field."""
        return validate(self._create_schema(), data)

    def parse_create_many(self, items: Sequence[Mapping[str, Any]]) -> list[CreateT | ValidationFailed]:
        """Each of `items` as `parse_create` gives it: the typed create input, or the `ValidationFailed` it
        raises. A service that parses with the derived or declared schema alone has the batch validated
        in one call (an import's thousands of rows); one that parses its own way, one item at a time."""
        if type(self).parse_create is not CrudService.parse_create or not items:
            return [self._parse_or_failure(item) for item in items]
        try:
            parsed: list[CreateT] = _list_adapter(self._create_schema()).validate_python(list(items))
        except ValidationError:
            return [self._parse_or_failure(item) for item in items]  # each with its own messages
        return list(parsed)

    def _parse_or_failure(self, item: Mapping[str, Any]) -> CreateT | ValidationFailed:
        try:
            return self.parse_create(item)
        except ValidationFailed as exc:
            return exc

    def parse_update(self, data: UpdateT | Mapping[str, Any]) -> UpdateT:
        """`data` as the typed update input; `ValidationFailed` with one entry per field."""
        return validate(self._update_schema(), data)

    async def check_version(self, obj: ModelT, expected_version: int | None) -> None:
        """`Conflict` naming who changed `obj` when it is no longer at `expected_version` (None: no check).

        A caller that parses its input itself asks this first, as `update` does:
        a form opened at an old version hears that before any field problem.
        """
        if expected_version is not None and getattr(obj, "version", expected_version) != expected_version:
            raise await self._stale(obj)

    async def delete(self, id_: object) -> ModelT:
        """Soft-delete the record (needs `.delete`): the row stays, marked deleted."""
        self.require("delete")
        obj = await self._get_live(id_)
        if not hasattr(obj, "deleted_at"):
            raise Conflict(f"A {self.noun} cannot be deleted.")
        deleted_at = datetime.now(UTC)
        async with self.writing(obj):
            await self.before_delete(obj)
            obj.deleted_at = deleted_at
            obj.deleted_by_id = self.actor.user_id  # type: ignore[attr-defined]  # SoftDeleteMixin
            await self.after_soft_delete(obj, deleted_at)
        return obj

    async def restore(self, id_: object) -> ModelT:
        """Bring a soft-deleted record back as it was (needs `.restore`).

        Raises `Conflict` when a live record now holds one of its unique values,
        or when a record it refers to (its order, its category) is in the trash:
        that one is restored first.
        """
        self.require("restore")
        obj = await self._get_deleted(id_)
        parents = await self.repo.deleted_parents(obj)
        if parents:
            names = " and ".join(f"{table.replace('_', ' ')} {pk}" for table, pk in parents)
            them = "it, and it is" if len(parents) == 1 else "them, and they are"
            raise Conflict(f"Restore {names} first: this {self.noun} refers to {them} in the trash.")
        deleted_at = obj.deleted_at  # type: ignore[attr-defined]  # SoftDeleteMixin
        try:
            async with self.writing(obj):
                obj.deleted_at = None  # type: ignore[attr-defined]  # SoftDeleteMixin
                obj.deleted_by_id = None  # type: ignore[attr-defined]  # SoftDeleteMixin
                await self.after_restore(obj, deleted_at)
        except Conflict as exc:
            raise Conflict(f"Cannot restore this {self.noun}: {exc.message}", field=exc.field) from exc
        return obj

    async def purge(self, id_: object) -> None:
        """Delete a soft-deleted record for good (needs `.purge`).

        The audit entry keeps the record's last values. Raises `Conflict`
        when other records still refer to it.
        """
        self.require("purge")
        obj = await self._get_deleted(id_)
        try:
            async with self.writing(obj):
                await self.before_purge(obj)
                await self.repo.delete(obj)
        except Conflict as exc:
            raise Conflict(f"This {self.noun} cannot be purged: other records still refer to it.") from exc

    @asynccontextmanager
    async def writing(self, obj: ModelT | None = None) -> AsyncIterator[_Write]:
        """One write, all or nothing: its changes and their flush share a savepoint.

        If the body or the flush fails, the savepoint is rolled back and the
        unit of work stays usable. Constraint failures and stale versions
        become `Conflict`; the body sets `write.obj` when it creates the record.
        """
        write = _Write(obj)
        try:
            async with self.repo.savepoint():
                yield write
                write.remember_values()
        except IntegrityViolation as exc:
            raise self._conflict(exc, write.values) from exc
        except StaleDataError as exc:
            raise await self._stale(write.obj) from exc

    # Hooks for subclasses -------------------------------------------------

    async def build(self, payload: CreateT) -> ModelT:
        """Make the new model instance from validated input; every record it refers to must be live.

        A service that keeps this generic build lets an import check and insert a batch of new rows at
        once (`builds_generically`): `references.check_new` is this rule for many inputs.
        """
        values = payload.model_dump()
        await self.check_references({name: values[name] for name in payload.model_fields_set})
        related = {
            relation.key: await self.live_collection(name, values.pop(name, None) or ())
            for name, relation in collections(self.model).items()
        }
        return self.model(**values, **related)  # type: ignore[no-any-return]  # model is a ClassVar

    @classmethod
    def builds_generically(cls) -> bool:
        """Whether new records are made by the generic `build` (no rule of the service's own)."""
        return cls.build is CrudService.build

    async def apply(self, obj: ModelT, payload: UpdateT) -> None:
        """Copy the fields the caller set onto `obj`; every record it newly refers to must be live.

        A reference the record already holds may stay as it is (saving it unchanged).
        """
        changed = {name: getattr(payload, name) for name in payload.model_fields_set}
        await self.check_references(
            {name: value for name, value in changed.items() if value != getattr(obj, name, None)}
        )
        for field in payload.model_fields_set:
            setattr(obj, field, getattr(payload, field))

    async def check_references(self, values: Mapping[str, Any]) -> None:
        """Raise `ValidationFailed` on a foreign key that names a missing record or one in the trash.

        The database would refuse a missing one only at the flush, with a less
        precise message, and would accept one in the trash.
        """
        for field, target in references(self.model).items():
            if values.get(field) is not None:
                label = target.__tablename__.replace("_", " ").capitalize()
                await self.live(target, values[field], field=field, label=label)

    async def live_collection(self, field: str, ids: Sequence[int], *, held: Sequence[Any] = ()) -> list[Any]:
        """The records a collection field (`tag_ids`) names: live ones, or ones in `held` (already on the
        record, even if since deleted). `ValidationFailed` on `field` naming the others."""
        target = collections(self.model)[field].mapper.class_
        wanted = sorted(set(ids))
        kept = [item for item in held if item.id in wanted]
        new = sorted(set(wanted) - {item.id for item in kept})
        if not new:
            return kept
        found: list[Any] = kept + await self.uow.repo(target).get_many(new)
        missing = sorted(set(wanted) - {item.id for item in found})
        if missing:
            raise ValidationFailed({field: [missing_many_message(target, missing)]})
        return found

    async def before_delete(self, obj: ModelT) -> None:
        """Refuse a delete by raising an `AppError`; does nothing by default."""

    async def after_soft_delete(self, obj: ModelT, deleted_at: datetime) -> None:
        """Soft-delete what goes with `obj` (stamped with the same `deleted_at`)."""

    async def after_restore(self, obj: ModelT, deleted_at: datetime | None) -> None:
        """Restore what was deleted together with `obj` (same `deleted_at`)."""

    async def before_purge(self, obj: ModelT) -> None:
        """Purge what goes with `obj`, or refuse with an `AppError`."""

    # Helpers ----------------------------------------------------------------

    def _create_schema(self) -> type[CreateT]:
        return self.create_schema  # type: ignore[return-value]  # ClassVars cannot use the class's type variables

    def _update_schema(self) -> type[UpdateT]:
        return self.update_schema  # type: ignore[return-value]  # ClassVars cannot use the class's type variables

    async def live(self, model: type[RowT], id_: object, *, field: str, label: str) -> RowT:
        """A live (not deleted) row of another model that the input refers to.

        Raises `ValidationFailed` on `field` when it is missing or deleted, so a
        form shows the problem next to the field.
        """
        if not is_id(id_):  # text no row could have as its id is not repeated back
            raise ValidationFailed({field: [f"Choose an existing {label.lower()}."]})
        row = await self.uow.repo(model).get(id_)
        if row is None:
            raise ValidationFailed({field: [f"{label} {id_} does not exist."]})
        return row

    def _id(self, id_: object) -> int:
        """An id as the database can take it; anything that cannot be one is simply not found."""
        try:
            return as_id(id_)
        except InvalidValue as exc:
            # Text that cannot be an id is not repeated: it may come from a URL.
            raise NotFound(f"No such {self.noun} exists.") from exc

    async def _get_deleted(self, id_: object) -> ModelT:
        if not self.repo.soft_deletable:
            raise NotFound(f"{self.noun.capitalize()} records are not kept in the trash.")
        record_id = self._id(id_)
        obj = await self.repo.get(record_id, include_deleted=True)
        if obj is None or getattr(obj, "deleted_at", None) is None:
            raise NotFound(f"There is no deleted {self.noun} {record_id}.")
        return obj

    async def _stale(self, obj: Any) -> Conflict:
        """The "changed since you opened it" refusal, naming who changed it and when."""
        last = await self.uow.repo(AuditEntryRepository).last_change(self.table, _identity(obj))
        who = f" by {last[0]} at {last[1]:%Y-%m-%d %H:%M:%S} UTC" if last else ""
        return Conflict(
            f"This {self.noun} was changed{who} since you opened it. "
            "Nothing was saved; reload it to see the new version, then make your change again."
        )

    async def _get_live(self, id_: object, **kwargs: Any) -> ModelT:
        record_id = self._id(id_)
        obj = await self.repo.get(record_id, **kwargs)
        if obj is None:
            raise NotFound(f"{self.noun.capitalize()} {record_id} does not exist.")
        return obj

    async def save(self, obj: ModelT, *, adding: bool = False) -> None:
        """Flush (inserting `obj` when `adding`); constraint failures and stale versions become `Conflict`."""
        async with self.writing(obj):
            if adding:
                self.repo.stage(obj)

    def unique_message(self, column: str, value: Any) -> str:
        """What to say when `value` of a unique `column` is held by another record."""
        generic = "A {noun} with this {field} already exists."
        template = self.unique_messages.get(column, generic)
        if not masking.can_see(self.actor, self.table, column):
            template = generic  # never repeat a value this actor may not see
        return template.format(noun=self.noun, field=column.replace("_", " "), value=value)

    def _conflict(self, exc: IntegrityViolation, values: dict[str, Any]) -> Conflict:
        violation = exc.violation
        if violation.kind == "unique" and violation.columns:
            column = violation.columns[-1]
            return Conflict(self.unique_message(column, values.get(column, "")), field=column)
        if violation.kind == "foreign_key":
            field = violation.columns[0] if violation.columns else None
            return Conflict(f"The {self.noun} refers to a record that does not exist.", field=field)
        if violation.kind == "check":
            known = self.check_messages.get(violation.constraint or "")
            if known:
                return Conflict(known[1], field=known[0])
            return Conflict(f"The {self.noun} breaks a rule ({violation.constraint}).")
        if violation.kind == "not_null" and violation.columns:
            column = violation.columns[0]
            return Conflict(f"{column.replace('_', ' ').capitalize()} is required.", field=column)
        return Conflict(f"The {self.noun} could not be saved: it conflicts with existing data.")


def _identity(obj: Any) -> str:
    """The primary key as the audit trail stores it, read without loading anything."""
    identity = inspect(obj).identity
    return ",".join(str(part) for part in identity) if identity else ""
