"""Which service manages which model, found rather than listed.

The declared services are the `CrudService` subclasses that set `model` in
the modules of this package, which are all imported on first use: a new
`backend/services/supplier.py` is picked up without editing anything. A model
the admin shows (`policy.admin`) with an `id` and no declared service gets a
generated one: create, update, soft delete, restore and purge, with input
schemas derived from its columns. Used wherever a model or a table name
arrives at run time (admin views, trash, history, purge).
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from collections.abc import Iterable
from functools import cache
from types import ModuleType
from typing import Any

import backend.services
from backend.auth.permissions import admin_models
from backend.errors import NotFound
from backend.services.base import CrudService

AnyService = type[CrudService[Any, Any, Any]]


class DuplicateService(TypeError):
    """Two service classes claim the same model: which one the admin and the CLI use would be a guess."""


def service_for(model_or_table: type | str) -> AnyService:
    """The service of a model class or table name: the declared one, else a generated one.

    `NotFound` for a name (often from a URL, so the message does not repeat it)
    or a class that is no model the admin shows.
    """
    model = _models_by_table().get(model_or_table) if isinstance(model_or_table, str) else model_or_table
    declared = declared_services()
    if model in declared:
        return declared[model]
    if model is None or model not in _models_by_table().values():
        raise NotFound("No such kind of record.")
    return generated_service(model)


@cache
def generated_service(model: type[Any]) -> AnyService:
    """A plain `CrudService` for `model`: permission checks, derived schemas, audit, no extra rules."""
    namespace = {
        "__module__": __name__,
        "__doc__": f"{model.__name__} records (needs `{model.__tablename__}.*`), with no rules of their own.",
        "model": model,
    }
    service: AnyService = type(f"{model.__name__}Service", (CrudService,), namespace)
    return service


def soft_deletable_tables() -> list[str]:
    """Tables of the models with a service whose deleted rows stay in the trash, in name order."""
    return sorted(table for table, model in _models_by_table().items() if hasattr(model, "deleted_at"))


@cache
def declared_services() -> dict[type[Any], AnyService]:
    """Model -> its service class, from every module of `backend.services` (imported here)."""
    modules = [
        importlib.import_module(info.name)
        for info in pkgutil.walk_packages(backend.services.__path__, prefix="backend.services.")
    ]
    return collect_services(modules)


def collect_services(modules: Iterable[ModuleType]) -> dict[type[Any], AnyService]:
    """Model -> the `CrudService` subclass defined in one of `modules` that sets it as its `model`.

    Raises `DuplicateService` when two classes set the same `model`.
    """
    found: dict[type[Any], AnyService] = {}
    for module in modules:
        for _name, cls in inspect.getmembers(module, inspect.isclass):
            if cls.__module__ != module.__name__ or not issubclass(cls, CrudService):
                continue  # imported from elsewhere, or not a service
            model = cls.__dict__.get("model")
            if model is None:
                continue  # a base for other services
            if model in found:
                raise DuplicateService(
                    f"{found[model].__module__}.{found[model].__qualname__} and "
                    f"{cls.__module__}.{cls.__qualname__} both serve {model.__name__}: keep one."
                )
            found[model] = cls
    return found


def _models_by_table() -> dict[str, type[Any]]:
    """The models with a service: those the admin shows that have an `id`."""
    return {str(model.__tablename__): model for model in admin_models() if hasattr(model, "id")}
