"""The sidebar menu is rendered once per state and reused (admin/menu.py).

Every page's menu is compared with what the macros draw for the same request: our override's
uncached macro, and SQLAdmin's own `display_menu` where no menu group is left empty (the only
place ours differs from it). Reused HTML never carries another role's, language's or host's menu.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from markupsafe import Markup
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.applications import Starlette
from starlette.requests import Request

from admin import menu as menu_module
from backend.auth.permissions import BUILTIN_ROLES
from tests.admin.conftest import ClientFactory
from tests.factories import make_product, make_role

ROLES = [*sorted(BUILTIN_ROLES), "superuser"]
LANGUAGES = ["en", "de"]
# Model views (lists, details, forms), the custom pages in the menu (dashboard, audit log, trash,
# jobs), the top bar's account page, and the refusal and "no such page" pages, which keep the menu.
PAGES = [
    "/admin/",
    "/admin/product/list",
    "/admin/product/details/{product}",
    "/admin/product/create",
    "/admin/customer/list",
    "/admin/order/list",
    "/admin/user/list",
    "/admin/role/list",
    "/admin/audit-log",
    "/admin/trash",
    "/admin/jobs",
    "/admin/me",
    "/admin/no/such/page",
]
_MENU = re.compile(r'<div class="navbar-nav">.*?\n</div>', re.DOTALL)
_HREF = re.compile(r'href="([^"#]+)"')
_ACTIVE = re.compile(r'class="nav-link[^"]*\bactive\b')


@dataclass(frozen=True)
class MenuRender:
    """One menu a page drew: the HTML it showed, and what the macros draw for the same request."""

    role: str
    path: str
    language: str
    shown: Markup
    uncached: Markup
    sqladmin: Markup
    reused: bool


Recorder = list[MenuRender]


@pytest.fixture
def menus(app: Starlette) -> Recorder:
    """Each menu the app draws, recorded beside the macros' own rendering of it."""
    env = app.state.admin.templates.env
    cached_menu: Callable[..., Awaitable[Markup]] = env.globals["sidebar_menu"]
    recorded: Recorder = []

    async def recording(menu: Any, request: Request, render: Callable[..., Awaitable[Markup]]) -> Markup:
        misses: list[None] = []

        async def counted(menu: Any, request: Request) -> Markup:
            misses.append(None)
            return await render(menu, request)

        shown = await cached_menu(menu, request, counted)
        sqladmin_macros = await env.get_template("sqladmin_original/_macros.html").make_module_async()
        recorded.append(
            MenuRender(
                role=request.headers.get("x-test-role", ""),
                path=request.url.path,
                language=request.headers.get("accept-language", ""),
                shown=shown,
                uncached=await render(menu, request),
                sqladmin=await sqladmin_macros.display_menu(menu, request),
                reused=not misses,
            )
        )
        return shown

    env.globals["sidebar_menu"] = recording
    return recorded


async def client_as(new_client: ClientFactory, role: str) -> httpx.AsyncClient:
    client = await new_client(superuser=True) if role == "superuser" else await new_client(roles=[role])
    client.headers["x-test-role"] = role
    return client


def menu_of(page: str) -> str:
    found = _MENU.search(page)
    assert found, "no menu on the page"
    return found.group(0)


def squeezed(html: str) -> str:
    """`html` with each run of blank space as one space: our group macro leaves blank lines of its own."""
    return " ".join(html.split())


def links(menu: str) -> set[str]:
    return set(_HREF.findall(menu))


async def test_every_menu_equals_what_the_macros_draw(
    menus: Recorder, new_client: ClientFactory, session: AsyncSession
) -> None:
    product = await make_product(session)
    await session.commit()
    # Two users per role: the second one's menus are the first one's, reused.
    clients = {role: [await client_as(new_client, role) for _ in range(2)] for role in ROLES}
    for client in (client for pair in clients.values() for client in pair):
        for language in LANGUAGES:
            client.headers["accept-language"] = language
            for page in PAGES:
                response = await client.get(page.format(product=product.id))
                assert response.status_code in {200, 403, 404}, (page, response.status_code)
                assert menus[-1].path == page.format(product=product.id)
                assert menus[-1].shown in response.text

    assert len(menus) == 2 * len(ROLES) * len(LANGUAGES) * len(PAGES)
    for render in menus:
        where = (render.role, render.path, render.language, "reused" if render.reused else "rendered")
        assert render.shown == render.uncached, where
        if render.role == "superuser":  # every group has something to open: SQLAdmin's own menu, exactly
            assert squeezed(render.shown) == squeezed(render.sqladmin), where
    reused = [render for render in menus if render.reused]
    assert len(reused) >= len(menus) // 2  # every second user's menus at least
    # The menus differ where they must, so the comparisons above compared something.
    assert len({render.shown for render in menus if render.path == "/admin/product/list"}) >= len(ROLES)
    german = next(r for r in menus if r.role == "superuser" and r.language == "de" and r.path == "/admin/")
    english = next(r for r in menus if r.role == "superuser" and r.language == "en" and r.path == "/admin/")
    assert german.shown != english.shown
    actives = {
        render.path: len(_ACTIVE.findall(render.shown)) for render in menus if render.role == "superuser"
    }
    assert actives["/admin/product/list"] == 2  # the link and its group
    assert actives["/admin/audit-log"] == 2 and actives["/admin/trash"] == 2
    assert actives["/admin/jobs"] == 1  # not in a group
    assert actives["/admin/"] == actives["/admin/me"] == actives["/admin/no/such/page"] == 0


@pytest.mark.parametrize("role", ["viewer", "customers-only"])
async def test_a_menu_reused_never_shows_what_the_user_cannot_open(
    role: str, new_client: ClientFactory, session: AsyncSession
) -> None:
    await make_role(session, name="customers-only", permissions=["customer.view"])
    await session.commit()
    root = await client_as(new_client, "superuser")
    user = await client_as(new_client, role)
    for page in ["/admin/customer/list", "/admin/", "/admin/no/such/page"]:
        everything = links(menu_of((await root.get(page)).text))
        theirs = links(menu_of((await user.get(page)).text))
        assert theirs < everything, page
        for link in theirs:
            opened = await user.get(link)
            assert opened.status_code == 200, (page, link, opened.status_code)
        assert "http://testserver/admin/user/list" in everything - theirs
    assert (await user.get("/admin/user/list")).status_code == 403
    if role == "customers-only":
        assert theirs == {"http://testserver/admin/customer/list"}


async def test_links_are_made_for_the_host_the_request_names(
    menus: Recorder, new_client: ClientFactory
) -> None:
    client = await client_as(new_client, "superuser")
    here = links(menu_of((await client.get("/admin/product/list")).text))
    there = links(
        menu_of((await client.get("/admin/product/list", headers={"host": "other.example:8080"})).text)
    )
    assert here and all(link.startswith("http://testserver/admin/") for link in here)
    assert {link.replace("other.example:8080", "testserver") for link in there} == here
    assert all(render.shown == render.uncached for render in menus)


async def test_the_states_kept_are_bounded(
    menus: Recorder, new_client: ClientFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(menu_module, "MAX_STATES_PER_MENU", 2)
    client = await client_as(new_client, "superuser")
    for host in ["a.example", "b.example", "a.example", "c.example", "b.example", "c.example"]:
        await client.get("/admin/product/list", headers={"host": host})
    # b was used least recently when c came, so it went; c and a stayed.
    assert [render.reused for render in menus] == [False, False, True, False, False, True]
