"""The list table's column headers, their sort links written in Python.

In Jinja each sortable column cost a `first_page_url` and an `include_query_params` (Starlette
parses the whole query again and encodes it again) plus the loop's per-column overhead. Here the
list's query is parsed once, the parameters every link keeps are encoded once, and each link
encodes only its column's name. The URLs are the ones `include_query_params` gives (same parameter
order, same encoding) and the markup is the template's, whitespace included
(tests/admin/test_list_page_markup.py renders both).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, quote_plus, urlencode

from markupsafe import Markup, escape
from starlette.requests import Request

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
    first_page = model_view.first_page_url(request).components
    pairs = parse_qsl(first_page.query, keep_blank_values=True)
    # `include_query_params` moves the parameters it sets behind all the others, in the order given.
    unsorted = urlencode([(name, value) for name, value in pairs if name not in ("sortBy", "sort")])
    unsorted_and = f"{unsorted}&" if unsorted else ""
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
            kept = urlencode([(key, value) for key, value in pairs if key != "sort"])
            query = f"{kept}&sort={reverse}" if kept else f"sort={reverse}"
        else:
            arrow = ""
            query = f"{unsorted_and}sortBy={quote_plus(name)}&sort=asc"
        href = escape(first_page._replace(query=query).geturl())
        cells.append(_CELL.format(inner=_SORT_LINK.format(href=href, arrow=arrow, label=label)))
    return Markup("".join(cells))  # noqa: S704 - every value above is escaped
