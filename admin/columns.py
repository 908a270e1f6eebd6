"""What a model view declares about its columns, read once from its public attributes.

SQLAdmin keeps the same facts in private attributes it builds in
`ModelView.__init__`, which may change in any release. The list page, its export and the templates read them
from here instead: names from `column_list`, `column_searchable_list`,
`column_sortable_list`, `column_default_sort`, `column_labels` and
`column_formatters`, the relationships from SQLAlchemy's mapper.
"""

from __future__ import annotations

import builtins
import inspect
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from markupsafe import escape
from sqladmin import ModelView
from sqlalchemy import inspect as sa_inspect
from starlette.requests import Request

from admin.i18n import gettext

# Where a view keeps its `ViewColumns` (in its own __dict__: a list page asks a few thousand times).
_CACHE_ATTRIBUTE = "custodian_view_columns"


def name_of(column: Any) -> str:
    """A column as SQLAdmin accepts it (a name, or a model attribute) -> its name."""
    return column if isinstance(column, str) else str(column.key)


def related_items(value: Any) -> list[Any]:
    """A relationship's value as a list: to-many as it is, to-one as one item or none."""
    if isinstance(value, list | tuple):
        return list(value)
    return [] if value is None else [value]


@dataclass(frozen=True)
class CellFormatter:
    """A declared `column_formatters` entry; SQLAdmin passes the request when it takes three arguments."""

    function: Callable[..., Any]
    takes_request: bool

    @classmethod
    def of(cls, function: Callable[..., Any]) -> CellFormatter:
        return cls(function, _takes_request(function))

    def __call__(self, obj: Any, name: str, request: Request) -> Any:
        return self.function(obj, name, request) if self.takes_request else self.function(obj, name)


@dataclass(frozen=True)
class ViewColumns:
    """A view's columns by name: what the list and the export show, and how."""

    list: tuple[str, ...]
    export: tuple[str, ...]
    relations: frozenset[str]
    searchable: tuple[str, ...]
    sortable: frozenset[str]
    default_sort: tuple[str, bool]  # (name, descending)
    labels: Mapping[str, str]
    list_formatters: Mapping[str, CellFormatter]
    type_formatters: Mapping[type, Callable[[Any], Any]]
    # The formatter found for each type of value shown so far (None: shown as it is).
    _by_type: dict[type, Callable[[Any], Any] | None] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )
    # The writer of a list cell's HTML chosen for each type of value shown so far (`cell_html`).
    _writers: dict[type, Callable[[Any], str]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    @classmethod
    def of(cls, view: ModelView) -> ViewColumns:
        mapper: Any = sa_inspect(view.model)
        return cls(
            list=tuple(view.get_list_columns()),
            export=tuple(view.get_export_columns()),
            relations=frozenset(str(relation.key) for relation in mapper.relationships),
            searchable=tuple(name_of(column) for column in view.column_searchable_list),
            sortable=frozenset(name_of(column) for column in view.column_sortable_list),
            default_sort=_default_sort(view.column_default_sort, mapper),
            labels={name_of(column): label for column, label in view.column_labels.items()},
            list_formatters=_formatters(view.column_formatters),
            type_formatters=dict(view.column_type_formatters),
        )

    def label(self, name: str) -> str:
        """The column's label in the request's language: the one place labels are translated."""
        return gettext(self.labels.get(name, name))

    def is_relation(self, name: str) -> bool:
        return name in self.relations

    def listed_relations(self) -> builtins.list[str]:
        """The list's columns that are relationships."""
        return [name for name in self.list if name in self.relations]

    def shown_value(self, value: Any) -> Any:
        """A plain value as the list shows it, through the view's `column_type_formatters` (None -> "")."""
        kind = type(value)
        try:
            formatter = self._by_type[kind]
        except KeyError:
            formatter = self._by_type[kind] = self._formatter_of(kind)
        return value if formatter is None else formatter(value)

    def cell_html(self, value: Any) -> str:
        """A plain value's list cell as HTML: an enum's value, then `shown_value`, escaped.

        The same text as `str(escape(shown_value(...)))`, by a writer chosen once per
        type of value (an int with no formatter is its digits: nothing to escape).
        """
        kind = type(value)
        try:
            write = self._writers[kind]
        except KeyError:
            write = self._writers[kind] = self._writer_of(kind)
        return write(value)

    def _writer_of(self, kind: type) -> Callable[[Any], str]:
        if issubclass(kind, Enum):
            return lambda value: self.cell_html(value.value)
        formatter = self._formatter_of(kind)
        if formatter is None:
            if kind is int:
                return str  # digits and a sign: nothing to escape
            return html_text
        return lambda value: html_text(formatter(value))

    def _formatter_of(self, kind: type) -> Callable[[Any], Any] | None:
        """The formatter of `kind`: its own, else its first direct base's that has one."""
        formatters = self.type_formatters
        formatter = formatters.get(kind)
        if formatter is None:
            formatter = next((formatters[base] for base in kind.__bases__ if base in formatters), None)
        return formatter


def html_text(value: Any) -> str:
    """`value` escaped for HTML, as text (markupsafe's escaping: one rule for every cell)."""
    return str(escape(value))


def columns_of(view: ModelView) -> ViewColumns:
    """The view's `ViewColumns`, built on first use (after SQLAdmin and our views set their labels)."""
    found: ViewColumns | None = view.__dict__.get(_CACHE_ATTRIBUTE)
    if found is None:
        found = ViewColumns.of(view)
        setattr(view, _CACHE_ATTRIBUTE, found)
    return found


def _default_sort(declared: Any, mapper: Any) -> tuple[str, bool]:
    """The first of `column_default_sort` (a name, a (name, descending) pair, or a list of pairs)."""
    entries: Iterable[Any] = declared if isinstance(declared, list) else [declared] if declared else []
    for entry in entries:
        if isinstance(entry, tuple):
            return name_of(entry[0]), bool(entry[1])
        return name_of(entry), False
    return str(mapper.get_property_by_column(mapper.primary_key[0]).key), False


def _formatters(declared: Mapping[Any, Callable[..., Any]]) -> dict[str, CellFormatter]:
    return {name_of(column): CellFormatter.of(function) for column, function in declared.items()}


def _takes_request(function: Callable[..., Any]) -> bool:
    """Whether a formatter takes (obj, name, request) rather than (obj, name)."""
    try:
        parameters = inspect.signature(function).parameters.values()
    except (TypeError, ValueError):  # a builtin without a signature
        return False
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    if any(parameter.kind == inspect.Parameter.VAR_POSITIONAL for parameter in parameters):
        return True
    return sum(parameter.kind in positional for parameter in parameters) >= 3
