"""Related records shown by their labels, as the signed-in actor may see them.

A record's label is its `str()`, which a model may make from personal data;
`backend.services.masking.label_for` decides what an actor sees instead.
SQLAdmin prints labels with `str()` in places that are not given the request:
a details page's related records (`ModelView.get_detail_value`), the choices
and current value of a form's relationship fields, and the ajax lookup's
results (`QueryAjaxModelLoader.format`). This module labels all of them
through the masking rule.
"""

from __future__ import annotations

import copy
import weakref
from dataclasses import dataclass
from typing import Any

from sqladmin import ModelView
from sqladmin.ajax import QueryAjaxModelLoader
from sqladmin.fields import (
    AjaxSelectField,
    AjaxSelectMultipleField,
    QuerySelectField,
    QuerySelectMultipleField,
)
from sqladmin.helpers import get_object_identifier
from sqlalchemy import inspect as sa_inspect
from starlette.requests import Request
from wtforms import Form

from admin.auth import ANONYMOUS, current_actor
from backend.auth.actor import Actor
from backend.services import masking


def actor_of(request: Request | None) -> Actor:
    """The request's actor; with no request, one who may see nothing personal."""
    return current_actor(request) if request is not None else ANONYMOUS


def relation_label(request: Request | None, obj: Any) -> str:
    """The label of one related record as this request's actor may see it (a template global)."""
    return masking.label_for(actor_of(request), obj)


def relation_labels(request: Request | None, value: Any) -> Any:
    """A relationship's value (one record, a collection, or None) as labels the actor may see."""
    if value is None:
        return None
    if isinstance(value, list | tuple | set | frozenset):
        return [relation_label(request, item) for item in value]
    return relation_label(request, value)


@dataclass(frozen=True)
class LabelledMatch:
    """An ajax lookup match with its label already chosen for the requesting actor."""

    id: str
    text: str


class MaskedAjaxLoader(QueryAjaxModelLoader):
    """SQLAdmin's ajax loader, labelling records through the masking rule.

    SQLAdmin calls `format(record)` without the request. So the lookup's
    matches are labelled in `get_list`, which is given it, and each form gets
    copies of the loaders bound to its actor (`bind_form_labels`). A loader
    bound to no one labels as for an actor without any permission: a label
    that could show personal data becomes "customer 12".
    """

    actor: Actor = ANONYMOUS

    def for_actor(self, actor: Actor) -> MaskedAjaxLoader:
        bound = copy.copy(self)
        bound.actor = actor
        return bound

    def format(self, model: Any) -> dict[str, Any]:
        if isinstance(model, LabelledMatch):
            return {"id": model.id, "text": model.text}
        if not model:
            return {}
        return {"id": str(get_object_identifier(model)), "text": masking.label_for(self.actor, model)}

    async def format_by_pk(self, pk: Any) -> dict[str, Any]:
        found = await super().format_by_pk(pk)
        if found:
            table = masking.table_of(self.model)
            found["text"] = masking.shown_label(self.actor, table, found["text"], found["id"])
        return found

    async def get_list(self, request: Request, term: str) -> list[Any]:
        """The matches for `term`, as `LabelledMatch`es labelled for the request's actor."""
        actor = current_actor(request)
        return [
            LabelledMatch(id=str(get_object_identifier(match)), text=masking.label_for(actor, match))
            for match in await super().get_list(request, term)
        ]


_LOADERS: weakref.WeakKeyDictionary[ModelView, dict[str, MaskedAjaxLoader]] = weakref.WeakKeyDictionary()


def masked_ajax_loaders(view: ModelView) -> dict[str, MaskedAjaxLoader]:
    """The view's `form_ajax_refs` as `MaskedAjaxLoader`s, built as SQLAdmin builds its own, once per view."""
    loaders = _LOADERS.get(view)
    if loaders is None:
        mapper: Any = sa_inspect(view.model)
        relationships = mapper.relationships
        loaders = _LOADERS[view] = {
            name: MaskedAjaxLoader(name, relationships[name].mapper.class_, view, **options)
            for name, options in view.form_ajax_refs.items()
        }
    return loaders


def bind_form_labels(form: Form, request: Request) -> Form:
    """Label the choices and current values of `form`'s relationship fields for the request's actor.

    Ajax fields get their loader bound to the actor; SQLAdmin's plain select
    fields get a `get_label` that masks. Returns `form`.
    """
    actor = current_actor(request)
    for field in form:
        if isinstance(field, AjaxSelectField | AjaxSelectMultipleField):
            # SQLAdmin's form carries its own loader: the masked one of the same name replaces it.
            loader = field.loader
            masked = masked_ajax_loaders(loader.model_admin).get(loader.name)
            if masked is not None:
                field.loader = masked.for_actor(actor)
        elif isinstance(field, QuerySelectField | QuerySelectMultipleField):
            field.get_label = _label_as(actor)
    return form


def _label_as(actor: Actor) -> Any:
    def label(obj: Any) -> str:
        return masking.label_for(actor, obj)

    return label
