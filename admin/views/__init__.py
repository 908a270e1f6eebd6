"""Admin views, one module per model (or small group), found by `discover()`.

A module here declares `class ThingAdmin(ServiceModelView, model=Thing)`; nothing
else registers it. The menu lists model views by their `menu_order` (lower
first; a view without one after them, by name), then the other pages in the
order their modules define them.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from types import ModuleType

from sqladmin import BaseView, ModelView


def discover() -> list[type[ModelView] | type[BaseView]]:
    """Every view defined in a module of this package, in menu order."""
    model_views: list[type[ModelView]] = []
    pages: list[type[BaseView]] = []
    for module in _modules():
        # A module's namespace keeps definition order: the pages of a module stay in the order written.
        for member in vars(module).values():
            if not inspect.isclass(member) or member.__module__ != module.__name__:
                continue  # not a class, or imported rather than declared here
            if issubclass(member, ModelView) and getattr(member, "model", None) is not None:
                model_views.append(member)
            elif issubclass(member, BaseView) and not issubclass(member, ModelView):
                pages.append(member)
    model_views.sort(key=_model_view_place)
    return [*model_views, *pages]


def model_views() -> list[type[ModelView]]:
    """The model views `discover()` finds, in menu order."""
    return [view for view in discover() if issubclass(view, ModelView)]


def _model_view_place(view: type[ModelView]) -> tuple[bool, int, str]:
    order = getattr(view, "menu_order", None)
    return (order is None, order if isinstance(order, int) else 0, str(view.name or view.__name__))


def _modules() -> list[ModuleType]:
    return [
        importlib.import_module(f"{__name__}.{info.name}")
        for info in sorted(pkgutil.iter_modules(__path__), key=lambda info: info.name)
        if not info.name.startswith("_")
    ]
