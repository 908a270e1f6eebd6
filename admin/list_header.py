"""The list table's column headers, their sort links written in Python.

In Jinja each sortable column cost a `first_page_url` and an `include_query_params` (Starlette
parses the whole query again and encodes it again) plus the loop's per-column overhead. Here the
links come from `admin.urls.QueryLinks` (the query parsed once, what every link keeps encoded once)
and the markup is the template's, whitespace included
(tests/admin/test_list_page_markup.py renders both).
"""

from __future__ import annotations

from typing import Any

from markupsafe import Markup, escape
from starlette.requests import Request

from admin.urls import QueryLinks

# One column of the header loop as Jinja wrote it (the list's override of model_list_table).
_CELL = "\n        \n        <th>\n          {inner}\n        </th>\n        "
_SORT_LINK = '\n          \n          \n          <a href="{href}">{arrow}{label}</a>\n          \n          '
# A link on the column the list is sorted by reverses the order; its arrow shows the current one.
_REVERSED = {
    "asc": ("desc", '<i class="fa-solid fa-arrow-up"></i> '),
    "desc": ("asc", '<i class="fa-solid fa-arrow-down"></i> '),
}


def sort_header_cells(request: Request, model_view: Any) -> Markup:
    """A `<th>` per listed column: its label, linking to the list sorted by it when it is sortable.

    The links start from the list's first page (`first_page_url`), keeping its search, filters and
    page size; on the sorted column the link reverses the order, on the others it sorts ascending.
    """
    columns = model_view.columns
    first_page = str(model_view.first_page_url(request))
    sorted_anew = QueryLinks(first_page, ("sortBy", "sort"))
    reversed_in_place = QueryLinks(first_page, ("sort",))  # sortBy stays where it is
    sorted_by = request.query_params.get("sortBy")
    direction = request.query_params.get("sort") or ""
    cells: list[str] = []
    for name in columns.list:
        label = escape(columns.label(name))
        if name not in columns.sortable:
            cells.append(_CELL.format(inner=label))
            continue
        if sorted_by == name and direction in _REVERSED:
            reverse, arrow = _REVERSED[direction]
            href = escape(reversed_in_place.with_values(("sort", reverse)))
        else:
            arrow = ""
            href = escape(sorted_anew.with_values(("sortBy", name), ("sort", "asc")))
        cells.append(_CELL.format(inner=_SORT_LINK.format(href=href, arrow=arrow, label=label)))
    return Markup("".join(cells))  # noqa: S704 - every value above is escaped
