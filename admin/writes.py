"""A model view's writes: SQLAdmin's create, edit and delete hooks, carried out by the model's service.

SQLAdmin's own create and edit routes call `insert_model` and `update_model`
with the validated form's data. Here that data becomes the service's input
(a relationship field becomes `<relation>_id`, or `<target>_ids` for a
collection, when the service's schema takes it), the service writes in the
request's unit of work, and the unit commits. Then comes the message for the
next page and `after_model_change`, whose Response, if it returns one,
`CustodianAdmin` sends instead of SQLAdmin's redirect. A refusal is recorded
for the page (admin/refusals.py) and raised on, for SQLAdmin to show the form
again.

A view's `inlines` (admin/inlines.py) are child rows edited in the same form: their rows are
sent to the service in the same input, as the field named after their relationship.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, ClassVar

from sqladmin import ModelView
from sqlalchemy import DateTime, Select, String
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.orm import RelationshipProperty
from starlette.requests import Request
from starlette.responses import Response

from admin import outcomes, refusals
from admin.forms import VERSION_FIELD, missing_version, parse_version, untouched_fields
from admin.inlines import InlineRows, inline_forms, service_lines, submitted_rows
from admin.params import id_or_404
from admin.requests import ServiceClass, request_service, request_uow, service_class_for
from backend.errors import AppError
from backend.services import masking
from backend.services.base import CrudService
from backend.values import InvalidValue, parse_id


def related_id(value: Any) -> Any:
    """A relationship field's value as an id: ajax fields submit the id itself.

    Anything that is not a whole number is passed on as it is, for the
    service's validation to reject with a message next to the field.
    """
    if value is None or value == "":
        return None
    if hasattr(value, "id"):
        return value.id
    if isinstance(value, str):
        try:
            return parse_id(value)
        except InvalidValue:
            return value
    return value


def related_ids(values: Any) -> list[Any]:
    return [related_id(value) for value in values or [] if value not in (None, "")]


class ServiceWrites(ModelView):
    """`insert_model`, `update_model` and `delete_model` through the model's `CrudService`."""

    # The model's service; by default the one the registry declares or derives for the model.
    service: ClassVar[ServiceClass | None] = None
    # Child rows edited in the create and edit forms (admin/inlines.py).
    inlines: ClassVar[Sequence[InlineRows]] = ()

    async def service_in(self, request: Request) -> CrudService[Any, Any, Any]:
        """This view's service, on the request's unit of work."""
        return await request_service(request, self.model, service=self.service)

    # Form data -> service input ----------------------------------------------

    def service_fields(
        self, schema: type[Any], data: Mapping[str, Any]
    ) -> tuple[dict[str, Any], dict[str, str]]:
        """`data` (form field -> value) as the fields `schema` takes, and input field -> form field.

        A many-to-one field gives its foreign key (`category` -> `category_id`),
        a collection gives ids (`tags` -> `tag_ids`) when the schema takes them;
        an empty value of a column that cannot be NULL becomes "" for text and
        is left out otherwise (the schema's default, or the stored value, holds);
        a time without a zone is UTC. Form fields the schema does not take
        (a password's confirmation) are not passed on.
        """
        accepted = set(getattr(schema, "model_fields", {}))
        mapper: Any = sa_inspect(self.model)
        values: dict[str, Any] = {}
        names: dict[str, str] = {}
        for name, value in data.items():
            key, converted = name, value
            prop = mapper.attrs.get(name) if name in mapper.attrs else None
            if isinstance(prop, RelationshipProperty):
                if prop.uselist:
                    key = f"{prop.mapper.class_.__tablename__}_ids"
                    converted = related_ids(value)
                else:
                    key, converted = str(prop.local_remote_pairs[0][0].key), related_id(value)
                if key not in accepted:
                    key, converted = name, value
            elif prop is not None and hasattr(prop, "columns"):
                column = prop.columns[0]
                if value is None and not column.nullable:
                    if not isinstance(column.type, String):
                        continue
                    converted = ""
                if isinstance(value, datetime) and value.tzinfo is None and isinstance(column.type, DateTime):
                    converted = value.replace(tzinfo=UTC)  # the admin works in UTC
            if key in accepted:
                values[key] = converted
                names[key] = name
        return values, names

    def create_input(self, data: Mapping[str, Any]) -> dict[str, Any]:
        """Form data -> the service's create input. Override to rename or convert fields."""
        return self._input_names(data, creating=True)[0]

    def update_input(self, data: Mapping[str, Any]) -> dict[str, Any]:
        """Form data -> the service's update input.

        Text fields the user left as shown are not in `data`: leave them out
        of the input too, so they keep their stored values.
        """
        return self._input_names(data, creating=False)[0]

    async def lines_input(self, request: Request) -> dict[str, Any]:
        """The inline rows sent with the form, as the service's input: `{"items": [...]}` for each
        inline that sent a line; `ValidationFailed` for a row that does not parse."""
        form = await request.form()
        values: dict[str, Any] = {}
        for inline in self.inlines:
            lines = service_lines(inline, submitted_rows(form, inline))
            if lines:
                values[inline.relation] = lines
        return values

    def _input_names(
        self, data: Mapping[str, Any], *, creating: bool
    ) -> tuple[dict[str, Any], dict[str, str]]:
        service = self.service or service_class_for(self.model)
        schema = service.create_schema if creating else service.update_schema
        return self.service_fields(schema, data)

    # SQLAdmin's hooks ----------------------------------------------------------

    def form_edit_query(self, request: Request) -> Select[Any]:
        # The inline rows with their related records: the edit page renders them without a query.
        stmt = super().form_edit_query(request)
        return stmt.options(*(inline.load_option(self.model) for inline in self.inlines))

    async def create_context(self, request: Request) -> dict[str, Any]:
        context = await super().create_context(request)
        if self.inlines:
            context["inline_forms"] = await inline_forms(self.inlines, request, None)
        return context

    async def edit_context(self, request: Request) -> dict[str, Any]:
        """The version an edit form was sent from, shown back as sent.

        A form refused as stale stays refused until it is reloaded. A form
        without a valid version is refused before its fields are checked,
        so the page says everything at once.
        """
        context = await super().edit_context(request)
        if self.inlines:
            parent = await self.get_object_for_edit(request)
            context["inline_forms"] = await inline_forms(self.inlines, request, parent)
        if request.method in ("GET", "HEAD"):
            return context
        submitted = (await request.form()).get(VERSION_FIELD)
        context["submitted_version"] = submitted if isinstance(submitted, str) else ""
        request.state.custodian_version = parse_version(submitted)
        if request.state.custodian_version is None and hasattr(self.model, "version"):
            refusals.record(request, missing_version(self._noun()))
        return context

    async def insert_model(self, request: Request, data: dict[str, Any]) -> Any:
        names = self._input_names(data, creating=True)[1]
        try:
            service = await self.service_in(request)
            lines = await self.lines_input(request)
            obj = await service.create(service.parse_create({**self.create_input(data), **lines}))
            await self.on_model_change(data, obj, True, request)
            await (await request_uow(request)).commit()
        except Exception as exc:
            refusals.record(request, exc, form_fields=names)
            raise
        outcomes.created(request, self, obj)
        await self._after_change(request, data, obj, created=True)
        return obj

    async def update_model(self, request: Request, pk: str, data: dict[str, Any]) -> Any:
        """Save an edit through the service, from the version the form was opened at.

        Raises `Conflict` when that version is missing or is not the record's
        current one; the service's UPDATE matches on it, so of two saves from
        one version only the first is written. Text fields sent back as they
        were shown keep their stored values.
        """
        names: dict[str, str] = {}
        try:
            known = refusals.recorded(request)
            if known is not None and known.error is not None:
                raise known.error
            obj = await self.get_object_for_edit(request)
            changed = await self._edited(request, obj, data)
            _, names = self._input_names(changed, creating=False)
            expected = getattr(request.state, "custodian_version", None)
            if expected is None and hasattr(self.model, "version"):
                raise missing_version(self._noun())
            service = await self.service_in(request)
            await service.check_version(obj, expected)  # a stale form hears that before any field problem
            lines = await self.lines_input(request)
            payload = service.parse_update({**self.update_input(changed), **lines})
            obj = await service.update(id_or_404(str(pk)), payload, expected_version=expected)
            await self.on_model_change(data, obj, False, request)
            await (await request_uow(request)).commit()
        except Exception as exc:
            if refusals.recorded(request) is None:
                refusals.record(request, exc, form_fields=names)
            if isinstance(exc, AppError):
                await self._reload_shown_row(request)
            raise
        outcomes.saved(request, self, obj)
        await self._after_change(request, data, obj, created=False)
        return obj

    async def delete_model(self, request: Request, pk: Any) -> None:
        await self.delete_models(request, [pk])

    async def delete_models(self, request: Request, pks: Sequence[Any]) -> None:
        """Delete all of `pks` in the request's unit of work: all of them, or none."""
        service = await self.service_in(request)
        for pk in pks:
            await service.delete(id_or_404(str(pk)))
        await (await request_uow(request)).commit()

    def _noun(self) -> str:
        """The model in an English sentence, as its service names it ("order item"); the sentence
        is translated, noun included, where it is shown (admin/locale/service_messages.py)."""
        service = self.service or service_class_for(self.model)
        return service.label or masking.table_of(self.model).replace("_", " ")

    async def _reload_shown_row(self, request: Request) -> None:
        """Read again the row the form is shown for, if the refused write's savepoint expired it.

        The page renders without awaiting, so it cannot load an expired attribute itself.
        """
        row = await self.get_object_for_edit(request)
        if row is not None and sa_inspect(row).expired_attributes:
            await (await request_uow(request)).session.refresh(row)

    async def _edited(self, request: Request, obj: Any, data: dict[str, Any]) -> dict[str, Any]:
        """`data` without the text fields sent back exactly as the edit form showed them for `obj`."""
        form_class = await self.scaffold_form(self.form_rules or self.form_edit_rules)
        sent = form_class(await request.form())
        shown = form_class(data=await self.get_form_data_for_edit(obj))
        untouched = untouched_fields(sent, shown)
        return {name: value for name, value in data.items() if name not in untouched}

    async def _after_change(self, request: Request, data: dict[str, Any], obj: Any, *, created: bool) -> None:
        response = await self.after_model_change(data, obj, created, request)
        if isinstance(response, Response):
            request.state.custodian_after_change = response
