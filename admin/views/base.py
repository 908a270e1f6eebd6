"""The bases every admin model view inherits from.

The list page, the CSV export and the per-row controls are mixins of their own
(admin/listing.py, admin/export.py, admin/controls.py); this module holds the
reads SQLAdmin makes and the writes that go to the services.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, ClassVar

from sqladmin import ModelView
from sqladmin.formatters import BASE_FORMATTERS
from sqladmin.forms import WTFORMS_ATTRS
from sqlalchemy import Select, select
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.orm import MANYTOONE, InstrumentedAttribute, joinedload, selectinload
from sqlalchemy.orm.interfaces import LoaderOption
from starlette.requests import Request

from admin.auth import current_actor
from admin.columns import name_of
from admin.controls import RowControls
from admin.export import FileExport
from admin.formatting import moment
from admin.forms import CustodianFormConverter
from admin.imports import FileImport
from admin.labels import default_labels
from admin.listing import KeysetListing
from admin.params import id_or_404
from admin.relations import relation_labels
from admin.requests import request_uow
from admin.writes import ServiceWrites
from backend.schemas.derived import MANAGED_COLUMNS
from backend.services import masking


class CustodianModelView(ModelView):
    """A `ModelView` that answers 404, not 500, for an id that cannot exist.

    Stock SQLAdmin converts the id in the URL with the primary key's Python
    type and lets the `ValueError` escape (`/admin/user/details/abc` -> 500).
    Every column gets a readable label ("Placed at") unless the view names one.
    Related records are labelled through the masking rule (admin/relations.py).
    The details page and the edit form load their row with its related records
    in one statement where a join costs no extra rows (`eager_loads`); stock
    SQLAdmin runs one more statement per relationship.
    """

    def __init__(self) -> None:
        # Before SQLAdmin's __init__, which builds the list, details and form labels from `column_labels`.
        mapper: Any = sa_inspect(self.model)
        names = [str(attribute.key) for attribute in mapper.attrs]
        type(self).column_labels = default_labels(names, type(self).column_labels)
        # The model's personal and secret fields are shown through the masking rule on every view,
        # whatever the view declares: a new model's policy is enough.
        type(self).column_formatters = with_masking(self.model, type(self).column_formatters)
        type(self).column_formatters_detail = with_masking(self.model, type(self).column_formatters_detail)
        super().__init__()
        self.relation_keys = frozenset(str(relation.key) for relation in mapper.relationships)
        self.details_relation_keys = [
            name for name in self.get_details_columns() if name in self.relation_keys
        ]
        # The list page builds its cells itself (admin/listing.py), so only the details page needs this.
        self.detail_formatted = frozenset(name_of(column) for column in self.column_formatters_detail)

    async def get_detail_value(self, obj: Any, prop: str, request: Request | None = None) -> tuple[Any, Any]:
        """SQLAdmin's (value, shown value), a related record shown by the label its actor may see."""
        value, shown = await super().get_detail_value(obj, prop, request)
        if prop in self.relation_keys and prop not in self.detail_formatted:
            shown = relation_labels(request, value)
        return value, shown

    def parse_identifier(self, identifier: Any) -> Any:
        """The primary key value for an id from a URL; 404 when it cannot be one.

        Every model here has one BIGINT id (IdMixin), parsed by `backend.values`.
        """
        return id_or_404(str(identifier))

    def details_query(self, request: Request) -> Select[Any]:
        # Not stock's query: its selectinload per relationship would conflict with the joins.
        return self.row_query(request, self.details_relation_keys)

    def form_edit_query(self, request: Request) -> Select[Any]:
        # Every form relationship is loaded with the row, so the form's values need no query of their own.
        return self.row_query(request, self.form_relation_keys())

    def row_query(self, request: Request, relation_keys: Sequence[str]) -> Select[Any]:
        """The row of the path's id (404 when it cannot be one) with its `relation_keys` relationships."""
        pk = self.parse_identifier(request.path_params["pk"])
        model: Any = self.model  # every model here has IdMixin
        return select(model).where(model.id == pk).options(*eager_loads(model, relation_keys))

    def form_relation_keys(self) -> list[str]:
        """The form's columns that are relationships."""
        relationships: Any = sa_inspect(self.model).relationships
        return [name for name in self.get_form_columns() if name in relationships]


class ServiceModelView(FileExport, KeysetListing, RowControls, ServiceWrites, FileImport, CustodianModelView):
    """A view whose writes go through a `CrudService`, as the signed-in actor.

    Reads (the list's from SQLAdmin's query, the details page's and the edit
    form's from `row_query`) are shaped here and run in the request's unit of
    work (admin/requests.py): soft-deleted rows never appear, and the row a
    page shows is loaded once. Creates, edits
    and deletes call the service (admin/writes.py), so validation, permissions
    and (soft) delete are the same as in the CLI. The list page comes from
    `KeysetListing`, its export from `FileExport`, the per-row checks from
    `RowControls`, the file import from `FileImport` (admin/imports.py).
    """

    # Moments as every page writes them (admin/formatting.py), in lists and on details pages.
    column_type_formatters: ClassVar[dict[Any, Callable[[Any], Any]]] = {**BASE_FORMATTERS, datetime: moment}
    column_type_formatters_detail: ClassVar[dict[Any, Callable[[Any], Any]]] = column_type_formatters

    # `@action` slug -> the permission action it needs, e.g. {"set-status": "change"}.
    action_permissions: ClassVar[dict[str, str]] = {}
    can_import = False
    # Fields that show the record's current value (enums, nullable booleans, text).
    form_converter = CustodianFormConverter
    # Place in the menu: lower first; views without one follow, by name.
    menu_order: ClassVar[int | None] = None

    # Reads -------------------------------------------------------------------

    def _hide_deleted(self, stmt: Select[Any]) -> Select[Any]:
        deleted_at = getattr(self.model, "deleted_at", None)
        return stmt if deleted_at is None else stmt.where(deleted_at.is_(None))

    def list_query(self, request: Request) -> Select[Any]:
        return self._hide_deleted(super().list_query(request))

    def details_query(self, request: Request) -> Select[Any]:
        return self._hide_deleted(super().details_query(request))

    def form_edit_query(self, request: Request) -> Select[Any]:
        return self._hide_deleted(super().form_edit_query(request))

    async def get_object_for_details(self, request: Request) -> Any:
        return await self.request_row(request)

    async def get_object_for_edit(self, request: Request) -> Any:
        return await self.request_row(request)

    async def request_row(self, request: Request) -> Any:
        """The row of the path's id, loaded once per request in its unit of work; None if not visible.

        SQLAdmin asks for it up to three times (the route's check, the page,
        the form): the edit routes load it with the form's relationships, the
        others with the details page's.
        """
        pk = self.parse_identifier(request.path_params["pk"])
        rows: dict[tuple[str, int], Any] | None = getattr(request.state, "custodian_rows", None)
        if rows is None:
            rows = request.state.custodian_rows = {}
        key = (self.identity, pk)
        if key not in rows:
            editing = _endpoint_name(request) == "edit"
            stmt = self.form_edit_query(request) if editing else self.details_query(request)
            session = (await request_uow(request)).session
            rows[key] = (await session.execute(stmt)).scalars().unique().first()
        return rows[key]

    async def get_form_data_for_edit(self, obj: Any) -> dict[str, Any]:
        """The edit form's values from `obj`, whose form relationships `form_edit_query` loaded."""
        return {WTFORMS_ATTRS.get(name, name): getattr(obj, name, None) for name in self.get_form_columns()}

    async def get_object_for_delete(self, value: Any) -> Any:
        pk = self.parse_identifier(value)
        return (await self.get_objects_for_delete([pk])).get(pk)

    async def get_objects_for_delete(self, pks: Sequence[int]) -> dict[int, Any]:
        """The rows of `pks` the user could see, by id, in one query; an id not found is left out."""
        pk = self.model.id  # type: ignore[attr-defined]  # every model here has IdMixin
        async with self.session_maker() as session:
            found = await session.execute(self._hide_deleted(select(self.model).where(pk.in_(pks))))
            return {row.id: row for row in found.scalars()}

    def get_form_columns(self) -> list[str]:
        """The form's fields: the view's `form_columns` (SQLAdmin's default: every attribute), less
        what no user sets or sees: the columns the framework keeps (timestamps, soft delete, version),
        relations through them, and the policy's secrets. The services' schemas leave them out too.
        """
        mapper: Any = sa_inspect(self.model)
        never = MANAGED_COLUMNS | masking.secret_fields(self.model)
        through_kept = {
            str(relation.key)
            for relation in mapper.relationships
            if relation.direction is MANYTOONE and {str(c.key) for c in relation.local_columns} <= never
        }
        return [name for name in super().get_form_columns() if name not in never | through_kept]


def eager_loads(model: Any, relation_keys: Sequence[str]) -> list[LoaderOption]:
    """Loader options for `model`'s `relation_keys`: a join for each related record and for the first
    collection, so one statement brings the row and them all; any further collection in a query of its
    own (selectinload), since joining a second would multiply the rows by the first's.

    How many statements a page runs never depends on what its collections hold. A view that loads
    one of these relationships its own way too (`.options(selectinload(...))`) gets SQLAlchemy's
    "conflicting loader strategy" error on its first page: choose one, here.
    """
    relationships: Any = sa_inspect(model).relationships
    options: list[LoaderOption] = []
    joined_collection = False
    for key in relation_keys:
        attribute = getattr(model, key)
        if not relationships[key].uselist:
            options.append(joinedload(attribute))
        elif not joined_collection:
            options.append(joinedload(attribute))
            joined_collection = True
        else:
            options.append(selectinload(attribute))
    return options


def _endpoint_name(request: Request) -> str:
    return str(getattr(request.scope.get("endpoint"), "__name__", ""))


Formatters = dict[
    str | InstrumentedAttribute[Any], Callable[[Any, Any], Any] | Callable[[Any, Any, Request], Any]
]


def with_masking(model: Any, declared: Formatters) -> Formatters:
    """`declared` formatters, with the masking rule's in place of any for a personal or secret field."""
    masked = masked_formatters(model)
    kept = {key: formatter for key, formatter in declared.items() if name_of(key) not in masked}
    return {**kept, **masked}


def masked_formatters(model: Any) -> Formatters:
    """List or details formatters that show each personal or secret field of `model`
    as the signed-in actor may see it (backend.services.masking)."""
    table = masking.table_of(model)

    def shown(obj: Any, attribute: Any, request: Request) -> Any:
        name = attribute if isinstance(attribute, str) else attribute.key
        return masking.shown(current_actor(request), table, name, getattr(obj, name, None))

    return {field: shown for field in sorted(masking.sensitive_fields(table))}
