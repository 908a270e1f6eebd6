"""The command palette: a keyboard launcher for every page, "New …" form and record a user may open.

Ctrl+K (Cmd+K on a Mac) or the top bar's search button opens it
(templates/custodian/_palette.html, static/palette.js); the script asks
`GET /admin/palette?q=` and draws the answer, so the server decides what a
user may see:

- `entries`: the menu's pages as the menu shows them to this user (a model's
  list only when it may be listed), the dashboard, the top bar's account page,
  and "New <model>" where the list would offer that button; filtered by `q`.
- `records`: with two or more characters, the records of each model the user
  may list, found by that list's own search (`KeysetListing.search_query`, the
  list's indexes) and, when `q` is a number (`12` or `#12`), by id; at most
  `RECORDS_PER_MODEL` per model, one statement per model, no count. A model
  whose searchable columns hold a value this user may not see is searched by
  id only. Each record is labelled by the masking rule and links to its
  details page, shown only when that page would open.

Longer `q` than the list's search reads is a 400 with a sentence, never echoed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from sqladmin import BaseView, ModelView, expose
from sqlalchemy import ColumnElement, or_, select
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from admin.auth import current_actor
from admin.controls import admin_of, url_for_rows
from admin.dashboard import may_list
from admin.i18n import gettext, lazy_gettext, translated
from admin.listing import KeysetListing
from admin.requests import request_uow
from backend.auth.actor import Actor
from backend.services import masking
from backend.values import InvalidValue, parse_id

RECORDS_PER_MODEL = 5
MIN_SEARCH_LENGTH = 2  # one character would match most rows of every model
MAX_QUERY_LENGTH = 200  # what the list's search reads (admin/listing.py)
# Pages the top bar links to instead of the menu.
TOP_BAR_PAGES = frozenset({"me"})
DASHBOARD_ICON = "fa-solid fa-gauge"
NEW_ICON = "fa-solid fa-plus"


@dataclass(frozen=True)
class Entry:
    """One line of the palette: what it says, where it goes, and the group it is listed under."""

    label: str
    url: str
    group: str
    icon: str = ""
    hint: str = ""


class CommandPalette(BaseView):
    """The palette's answers, for everyone signed in; each answer holds only what they may open."""

    name = lazy_gettext("Command palette")
    identity = "palette"

    def is_accessible(self, request: Request) -> bool:
        return current_actor(request).user_id is not None

    def is_visible(self, request: Request) -> bool:
        return False  # opened from the top bar or the keyboard, not the menu

    @expose("/palette", methods=["GET"], identity="palette")
    async def palette(self, request: Request) -> Response:
        raw = request.query_params.get("q", "")
        if len(raw) > MAX_QUERY_LENGTH:
            message = translated("Type at most %(count)s characters.", count=MAX_QUERY_LENGTH)
            return JSONResponse({"error": message}, status_code=400)
        query = raw.strip()
        views = admin_of(request).views
        entries = [entry for entry in await navigation(request, views) if _matches(entry, query)]
        searched = len(query) >= MIN_SEARCH_LENGTH
        records = await find_records(request, views, query) if searched else []
        return JSONResponse(
            {
                "entries": [asdict(entry) for entry in entries],
                "records": [asdict(record) for record in records],
                "searched": searched,
            }
        )


async def navigation(request: Request, views: Sequence[BaseView | ModelView]) -> list[Entry]:
    """The pages and "New …" forms this user may open, in menu order."""
    pages, create = gettext("Pages"), gettext("New")
    in_menu = [view for view in views if view.is_visible(request) and view.is_accessible(request)]
    entries: list[Entry] = []
    if in_menu:  # the dashboard's own rule (admin/site.py): a user who may open nothing gets "No access"
        entries.append(
            Entry(gettext("Dashboard"), str(request.url_for("admin:index")), pages, DASHBOARD_ICON)
        )
    for view in views:
        if isinstance(view, ModelView):
            if may_list(request, view):
                url = str(request.url_for("admin:list", identity=view.identity))
                entries.append(Entry(_plural(view), url, pages, view.icon or "", str(view.category or "")))
        elif view in in_menu or (view.identity in TOP_BAR_PAGES and view.is_accessible(request)):
            url = str(request.url_for(f"admin:view-{view.identity}"))
            entries.append(Entry(str(view.name), url, pages, view.icon or "", str(view.category or "")))
    for view in in_menu:
        if isinstance(view, ModelView) and view.can_create and await view.check_can_create(request):
            url = str(request.url_for("admin:create", identity=view.identity))
            label = translated("New %(name)s", name=view.name)
            entries.append(Entry(label, url, create, NEW_ICON, str(view.category or "")))
    return entries


async def find_records(request: Request, views: Sequence[BaseView | ModelView], query: str) -> list[Entry]:
    """Up to `RECORDS_PER_MODEL` records of each model the user may list that match `query`."""
    actor = current_actor(request)
    number = _record_number(query)
    found: list[Entry] = []
    for view in views:
        if not isinstance(view, KeysetListing) or not may_list(request, view):
            continue
        condition = _match_condition(view, actor, query, number)
        if condition is None:
            continue
        rows = await _first_rows(request, view, condition)
        allowed = await view.allowed_rows(request, rows, "details")
        details = url_for_rows(request, "admin:details", identity=view.identity)
        group, icon = _plural(view), view.icon or ""
        found.extend(
            Entry(masking.label_for(actor, row), details(row.id), group, icon)
            for row, shown in zip(rows, allowed, strict=True)
            if shown
        )
    return found


def _match_condition(
    view: KeysetListing, actor: Actor, query: str, number: int | None
) -> ColumnElement[bool] | None:
    """The list's search for `query` (where this user may see every searched column), or the id `number`."""
    conditions: list[ColumnElement[Any]] = []
    if number is not None:
        conditions.append(view.model.id == number)  # type: ignore[attr-defined]  # every model here has IdMixin
    table = masking.table_of(view.model)
    searched = view.columns.searchable
    if searched and all(masking.can_see(actor, table, name) for name in searched):
        # The list page's own search, taken as a condition so that an id can join it.
        search = view.search_query(select(view.model), query).whereclause
        if search is not None:
            conditions.append(search)
    return or_(*conditions) if conditions else None


async def _first_rows(request: Request, view: KeysetListing, condition: ColumnElement[bool]) -> list[Any]:
    """The first matching rows in the list's default order (its index), in the request's unit of work."""
    name, descending = view.columns.default_sort
    column, pk = getattr(view.model, name), view.model.id  # type: ignore[attr-defined]  # IdMixin
    order = (column.desc(), pk.desc()) if descending else (column.asc(), pk.asc())
    stmt = view.list_query(request).where(condition).order_by(*order).limit(RECORDS_PER_MODEL)
    session = (await request_uow(request)).session
    return list((await session.scalars(stmt)).unique().all())


def _record_number(query: str) -> int | None:
    """The id `query` names ("12" or "#12"), through the one parser of ids; None for other text."""
    try:
        return parse_id(query.removeprefix("#"))
    except InvalidValue:
        return None


def _matches(entry: Entry, query: str) -> bool:
    wanted = query.casefold()
    return not wanted or wanted in entry.label.casefold() or wanted in entry.hint.casefold()


def _plural(view: ModelView) -> str:
    return str(getattr(view, "name_plural", "") or view.name)
