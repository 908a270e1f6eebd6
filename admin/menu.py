"""The sidebar menu, rendered once per state and reused: SQLAdmin renders it on every signed-in page.

Rendering it costs about 1.5 ms a page (a macro per item, `is_visible`/`is_accessible`/`is_active`
per item, and `request.url_for` per link, which walks every route). Its HTML depends only on:

- the request's language: the views' and groups' names are lazy translations (`i18n.localise_names`);
- which items are shown (visible and accessible) and which one is active;
- the base URL the links are made absolute with (`request.base_url`: scheme, host and root path,
  exactly what `request.url_for` builds them from).

So each menu keeps its HTML per distinct state, rendered through the templates' own macros on a
miss (admin/templates/sqladmin/_macros.html: the markup stays SQLAdmin's). The Host header is the
client's to choose, so the kept states are bounded and the least recently used goes first.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Hashable
from typing import Any

from markupsafe import Markup
from starlette.requests import Request

from admin.i18n import active_locale
from admin.kept_markup import KeptMarkup
from admin.urls import url_for

# Per menu (per admin). Languages x roles x active pages x hosts: a few hundred states is plenty for
# real traffic; beyond it, a miss costs one render as it did before.
MAX_STATES_PER_MENU = 512

MenuState = tuple[Hashable, ...]
RenderMenu = Callable[[Any, Request], Awaitable[str] | str]

_menus = KeptMarkup()  # per menu object: per admin


async def sidebar_menu(menu: Any, request: Request, render: RenderMenu) -> Markup:
    """The HTML `render(menu, request)` gives for this request's menu state, rendered once per state."""
    state = menu_state(menu, request)
    return await _menus.get(menu, state, lambda: render(menu, request), limit=MAX_STATES_PER_MENU)


def menu_state(menu: Any, request: Request) -> MenuState:
    """Everything the menu's HTML depends on for this request, and nothing per user beyond it."""
    return (active_locale(), str(request.base_url), tuple(_item_state(item, request) for item in menu.items))


def _item_state(item: Any, request: Request) -> Hashable:
    # As the macros read an item (admin/templates/sqladmin/_macros.html, display_menu): a view is
    # drawn when shown, a group when it is shown and shows a child, each marked when active.
    kind = item.type_
    if kind == "View":
        shown = item.is_visible(request) and item.is_accessible(request)
        return (shown, shown and is_active(item, request))
    if kind == "Category":
        if not (item.is_visible(request) and item.is_accessible(request)):
            return False
        return tuple(_child_state(child, request) for child in item.children)
    return None  # neither macro draws it


def _child_state(child: Any, request: Request) -> tuple[bool, bool]:
    # SQLAdmin marks a group active when a child is active and accessible, shown in the menu or not.
    accessible = child.is_accessible(request)
    return (accessible and child.is_visible(request), accessible and is_active(child, request))


def is_active(item: Any, request: Request) -> bool:
    """SQLAdmin's `ViewMenu.is_active`, without reversing a URL through every route for each item.

    A model view is active on its own pages (the `identity` path parameter); a custom page when the
    request's path is its page's path, trailing slashes aside. A menu item of another kind is asked.
    """
    view = getattr(item, "view", None)
    if view is None:
        return bool(item.is_active(request))
    if view.is_model:
        return bool(view.identity == request.path_params.get("identity"))
    page = url_for(request, f"admin:view-{view.identity}")
    return request.url.path.rstrip("/") == page.path.rstrip("/")
