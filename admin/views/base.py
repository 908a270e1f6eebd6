"""The bases every admin model view inherits from.

The list page, the CSV export and the per-row controls are mixins of their own
(admin/listing.py, admin/export.py, admin/controls.py); this module holds the
reads SQLAdmin makes and the writes that go to the services.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from sqladmin import ModelView
from sqlalchemy import Select, select
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.orm import InstrumentedAttribute
from starlette.requests import Request
from wtforms import Form

from admin.auth import current_actor
from admin.controls import RowControls
from admin.export import CsvExport
from admin.forms import VERSION_FIELD, CustodianFormConverter, missing_version, untouched_fields
from admin.labels import default_labels
from admin.listing import KeysetListing
from admin.params import id_or_404
from admin.relations import masked_ajax_loaders, relation_labels
from backend.db.uow import unit_of_work
from backend.services import masking
from backend.services.base import CrudService

if TYPE_CHECKING:
    from backend.db.session import Database


class CustodianModelView(ModelView):
    """A `ModelView` that answers 404, not 500, for an id that cannot exist.

    Stock SQLAdmin converts the id in the URL with the primary key's Python
    type and lets the `ValueError` escape (`/admin/user/details/abc` -> 500).
    Every column gets a readable label ("Placed at") unless the view names one.
    """

    def __init__(self) -> None:
        # Before SQLAdmin's __init__, which builds the list, details and form labels from `column_labels`.
        mapper: Any = sa_inspect(self.model)
        names = [str(attribute.key) for attribute in mapper.attrs]
        type(self).column_labels = default_labels(names, type(self).column_labels)
        super().__init__()
        # Related records are labelled through the masking rule (admin/relations.py). SQLAdmin builds
        # its ajax loaders itself, with no hook to choose their class: its private dict is replaced.
        self._form_ajax_refs = masked_ajax_loaders(self)

    async def get_list_value(self, obj: Any, prop: str, request: Request | None = None) -> tuple[Any, Any]:
        value, shown = await super().get_list_value(obj, prop, request)
        if prop in self._relation_names and prop not in self._list_formatters:
            shown = relation_labels(request, value)
        return value, shown

    async def get_detail_value(self, obj: Any, prop: str, request: Request | None = None) -> tuple[Any, Any]:
        """SQLAdmin's (value, shown value), a related record shown by the label its actor may see."""
        value, shown = await super().get_detail_value(obj, prop, request)
        if prop in self._relation_names and prop not in self._detail_formatters:
            shown = relation_labels(request, value)
        return value, shown

    def parse_identifier(self, identifier: Any) -> Any:
        """The primary key value for an id from a URL; 404 when it cannot be one.

        Every model here has one BIGINT id (IdMixin), parsed by `backend.values`.
        """
        return id_or_404(str(identifier))

    def details_query(self, request: Request) -> Select[Any]:
        self.parse_identifier(request.path_params["pk"])
        return super().details_query(request)

    def form_edit_query(self, request: Request) -> Select[Any]:
        self.parse_identifier(request.path_params["pk"])
        return super().form_edit_query(request)

    async def get_object_for_delete(self, value: Any) -> Any:
        self.parse_identifier(value)
        return await super().get_object_for_delete(value)


class ServiceModelView(CsvExport, KeysetListing, RowControls, CustodianModelView):
    """A view whose writes go through a `CrudService`, as the signed-in actor.

    Reads (list, details, edit form) are SQLAdmin's own queries, shaped here:
    soft-deleted rows never appear. Creates, edits and deletes call the
    service, so validation, permissions and (soft) delete are the same as in
    the CLI. A delete is refused when the row is not visible to the user.
    The list page comes from `KeysetListing`, its export from `CsvExport`,
    the per-row checks from `RowControls`.
    """

    service: ClassVar[type[CrudService[Any, Any, Any]]]
    # `@action` slug -> the permission action it needs, e.g. {"set-status": "change"}.
    action_permissions: ClassVar[dict[str, str]] = {}
    can_import = False
    export_types: ClassVar[list[str]] = ["csv"]  # the formats `CustodianAdmin.export` writes
    # Fields that show the record's current value (enums, nullable booleans, text).
    form_converter = CustodianFormConverter

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

    async def get_object_for_delete(self, value: Any) -> Any:
        pk = self.parse_identifier(value)
        return (await self.get_objects_for_delete([pk])).get(pk)

    async def get_objects_for_delete(self, pks: Sequence[int]) -> dict[int, Any]:
        """The rows of `pks` the user could see, by id, in one query; an id not found is left out.

        Stock SQLAdmin loads each row to delete on its own, without the view's scoping.
        """
        pk = self.model.id  # type: ignore[attr-defined]  # every model here has IdMixin
        rows = await self._run_query(self._hide_deleted(select(self.model).where(pk.in_(pks))))
        return {row.id: row for row in rows}

    # Writes -------------------------------------------------------------------

    def database(self) -> Database:
        database: Database = self._admin_ref.database  # type: ignore[attr-defined]  # set by CustodianAdmin
        return database

    def create_input(self, data: Mapping[str, Any]) -> dict[str, Any]:
        """Form data -> the service's create input. Override to rename or convert fields."""
        return dict(data)

    def update_input(self, data: Mapping[str, Any]) -> dict[str, Any]:
        """Form data -> the service's update input.

        Text fields the user left as shown are not in `data` (see `edited_values`):
        leave them out of the input too, so they keep their stored values.
        """
        return dict(data)

    async def insert_model(self, request: Request, data: dict[str, Any]) -> Any:
        async with unit_of_work(self.database(), current_actor(request)) as uow:
            obj = await self.service(uow).create(self.create_input(data))
            await uow.commit()
        return obj

    async def edited_values(self, form: Form, obj: Any) -> dict[str, Any]:
        """The edit form's data without the text fields sent back as they were shown for `obj`.

        `update_input` gets only what the user may have changed; a field it
        does not get keeps its stored value.
        """
        shown = type(form)(data=await self.get_form_data_for_edit(obj))
        untouched = untouched_fields(form, shown)
        return {name: value for name, value in form.data.items() if name not in untouched}

    async def update_model(self, request: Request, pk: str, data: dict[str, Any]) -> Any:
        """Save an edit through the service, from the version the form was opened at (`data["_version"]`).

        Raises `Conflict` when that version is missing or is not the record's
        current one; the service's UPDATE matches on it, so of two saves from
        one version only the first is written.
        """
        expected = data.pop(VERSION_FIELD, None)
        if expected is None and hasattr(self.model, "version"):
            raise missing_version(self.name.lower())
        async with unit_of_work(self.database(), current_actor(request)) as uow:
            obj = await self.service(uow).update(
                self.parse_identifier(pk), self.update_input(data), expected_version=expected
            )
            await uow.commit()
        return obj

    async def delete_model(self, request: Request, pk: Any) -> None:
        await self.delete_models(request, [pk])

    async def delete_models(self, request: Request, pks: list[Any]) -> None:
        """Delete all of `pks` in one transaction: all of them, or none."""
        async with unit_of_work(self.database(), current_actor(request)) as uow:
            service = self.service(uow)
            for pk in pks:
                await service.delete(self.parse_identifier(pk))
            await uow.commit()


Formatters = dict[
    str | InstrumentedAttribute[Any], Callable[[Any, Any], Any] | Callable[[Any, Any, Request], Any]
]


def masked_formatters(model: Any) -> Formatters:
    """List or details formatters that show each personal or secret field of `model`
    as the signed-in actor may see it (backend.services.masking)."""
    table = masking.table_of(model)

    def shown(obj: Any, attribute: Any, request: Request) -> Any:
        name = attribute if isinstance(attribute, str) else attribute.key
        return masking.shown(current_actor(request), table, name, getattr(obj, name, None))

    return {field: shown for field in sorted(masking.sensitive_fields(table))}
