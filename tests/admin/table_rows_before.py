"""The list's `<tbody>` as `KeysetListing.table_rows` wrote it before it was made cheaper (commit f7d79a0).

Kept verbatim (as functions of the view) so tests/admin/test_table_rows.py can
show the faster code writes the same bytes for the same rows and request.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from enum import Enum
from typing import Any

from markupsafe import Markup, escape
from starlette.requests import Request

from admin.auth import current_actor
from admin.columns import related_items
from admin.i18n import gettext
from backend.services import masking

_PK_SLOT = "__pk__"
_ICON_VIEW = '<span class="me-1"><i class="fa-solid fa-eye"></i></span>'
_ICON_EDIT = '<span class="me-1"><i class="fa-solid fa-pen-to-square"></i></span>'
_ICON_DELETE = '<span class="me-1"><i class="fa-solid fa-trash"></i></span>'


def url_for_rows(request: Request, name: str, **params: Any) -> Callable[[object], str]:
    head, _, tail = str(request.url_for(name, pk=_PK_SLOT, **params)).partition(_PK_SLOT)
    return lambda pk: f"{head}{pk}{tail}"


async def table_rows_before(view: Any, rows: Sequence[Any], request: Request) -> Markup:
    details_url = url_for_rows(request, "admin:details", identity=view.identity)
    edit_url = url_for_rows(request, "admin:edit", identity=view.identity)
    delete_url = str(request.url_for("admin:delete", identity=view.identity))
    query = f"?{request.url.query}" if request.url.query else ""
    can_view = await view.allowed_rows(request, rows, "details")
    can_edit = await view.allowed_rows(request, rows, "edit")
    can_delete = await view.allowed_rows(request, rows, "delete")
    links = await _related_links(view, request, rows)
    name = escape(view.name)
    select, view_word, edit, delete = (
        escape(gettext(word)) for word in ("Select item", "View", "Edit", "Delete")
    )
    cells = _cell_writers(view, request, links)
    parts: list[str] = []
    for index, row in enumerate(rows):
        pk = escape(str(row.id))
        parts.append(
            f'<tr><td><input type="hidden" value="{pk}"><input class="form-check-input m-0 align-middle '
            f'select-box" type="checkbox" aria-label="{select}"></td><td class="text-end">'
        )
        if can_view[index]:
            url = escape(details_url(pk))
            parts.append(f'<a href="{url}" aria-label="{view_word}" title="{view_word}">{_ICON_VIEW}</a>')
        if can_edit[index]:
            url = escape(edit_url(pk) + query)
            parts.append(f'<a href="{url}" aria-label="{edit}" title="{edit}">{_ICON_EDIT}</a>')
        if can_delete[index]:
            url = escape(f"{delete_url}?pks={pk}")
            parts.append(
                f'<a href="#" data-name="{name}" data-pk="{pk}" data-url="{url}" '
                'data-bs-toggle="modal" data-bs-target="#modal-delete" '
                f'aria-label="{delete}"><span title="{delete}">{_ICON_DELETE}</span></a>'
            )
        parts.append("</td>")
        for cell in cells:
            parts.append(f"<td>{cell(row)}</td>")
        parts.append("</tr>")
    return Markup("".join(parts))  # noqa: S704 - every value above is escaped


async def _related_links(view: Any, request: Request, rows: Sequence[Any]) -> dict[tuple[type, Any], str]:
    related: list[Any] = []
    linked = [column for column in view.columns.listed_relations() if view.links_related(column)]
    for row in rows:
        for column in linked:
            related.extend(related_items(getattr(row, column, None)))
    links: dict[tuple[type, Any], str] = await view.detail_links(request, related)
    return links


def _cell_writers(
    view: Any, request: Request, links: Mapping[tuple[type, Any], str]
) -> list[Callable[[Any], str]]:
    columns = view.columns
    actor = current_actor(request)

    def formatted(column: str, formatter: Any) -> Callable[[Any], str]:
        return lambda row: str(escape(formatter(row, column, request)))

    def related(column: str, linked: bool) -> Callable[[Any], str]:
        def cell(row: Any) -> str:
            shown = []
            for item in related_items(getattr(row, column, None)):
                url = links.get((type(item), item.id)) if linked else None
                text = escape(masking.label_for(actor, item))
                shown.append(f'<a href="{escape(url)}">{text}</a>' if url else str(text))
            return "<br>".join(shown)

        return cell

    def plain(column: str) -> Callable[[Any], str]:
        def cell(row: Any) -> str:
            value = getattr(row, column, None)
            return str(escape(columns.shown_value(value.value if isinstance(value, Enum) else value)))

        return cell

    writers: list[Callable[[Any], str]] = []
    for column in columns.list:
        formatter = columns.list_formatters.get(column)
        if formatter is not None:
            writers.append(formatted(column, formatter))
        elif columns.is_relation(column):
            writers.append(related(column, view.links_related(column)))
        else:
            writers.append(plain(column))
    return writers
