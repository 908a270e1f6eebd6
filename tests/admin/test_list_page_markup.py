"""The list page's parts moved out of Jinja (admin/list_header.py, admin/kept_markup.py, admin/urls.py)
write the page the templates wrote before, byte for byte.

tests/admin/list_page_before/ holds our list.html, layout.html and base.html as they were (commit
b6b0122) before the sort links moved to Python and the top bar, stylesheet and script links were kept
per language and host. Every page below is rendered by both, with the same context, for roles,
languages, hosts and list states; the kept parts are compared when rendered and when reused.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jinja2
import pytest
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.applications import Starlette
from starlette.datastructures import URL
from starlette.requests import Request
from starlette.routing import NoMatchFound

from admin.list_header import sort_header_cells
from admin.urls import MAX_ROUTER_PATHS
from tests.admin.conftest import ClientFactory
from tests.factories import make_category, make_product

BEFORE_DIR = Path(__file__).parent / "list_page_before"
LIST_STATES = [
    "",
    "sortBy=price&sort=asc",
    "sortBy=price&sort=desc",
    "sortBy=name&sort=asc&pageSize=25&search=k%26e%3Dt+tle",
    "sort=desc&pageSize=10",  # a direction without a column sorts by the default one, ascending links
    "category={category}&search=%3Cb%3E&sortBy=name&sort=desc",
]


@pytest.fixture
def renders(app: Starlette, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[str, str, str]]]:
    """Each page's (name, before, after): the templates as they were and as they are, same context."""
    templates = app.state.admin.templates
    before_templates = {f"sqladmin/{path.name}": path.read_text() for path in BEFORE_DIR.glob("*.html")}
    before_env = templates.env.overlay(
        loader=jinja2.ChoiceLoader([jinja2.DictLoader(before_templates), templates.env.loader])
    )
    rendered: list[tuple[str, str, str]] = []
    respond = templates.TemplateResponse

    async def both(
        request: Request, name: str, context: dict[str, Any] | None = None, *args: Any, **kwargs: Any
    ) -> Any:
        # Before first: a miss renders the kept parts below, and the response is a reuse of them.
        context = context or {}
        context.setdefault("request", request)
        before = await before_env.get_template(name).render_async(context)
        first = await templates.env.get_template(name).render_async(context)
        response = await respond(request, name, context, *args, **kwargs)
        rendered.append((name, before, first))
        rendered.append((name, before, response.body.decode()))
        return response

    monkeypatch.setattr(templates, "TemplateResponse", both)
    yield rendered


@pytest.mark.parametrize("language", ["en", "de"])
@pytest.mark.parametrize("superuser", [False, True], ids=["viewer", "superuser"])
async def test_list_pages_are_the_markup_the_templates_wrote(
    new_client: ClientFactory,
    session: AsyncSession,
    renders: list[tuple[str, str, str]],
    language: str,
    superuser: bool,
) -> None:
    category = await make_category(session, name='<i>Lamps</i> & "co"')
    for index in range(3):
        await make_product(session, category_id=category.id, name=f"kettle {index}")
    await session.commit()
    client = await new_client(roles=() if superuser else ["viewer"], superuser=superuser)
    client.headers["accept-language"] = language
    pages = [f"/admin/product/list?{state.format(category=category.id)}" for state in LIST_STATES]
    pages += ["/admin/customer/list", "/admin/order/list?sortBy=id&sort=desc", "/admin/"]
    # The Host header is the client's: the kept links of one host never reach another's pages.
    for host in ("testserver", "other.example:8443"):
        for path in pages:
            page = await client.get(path, headers={"host": host})
            assert page.status_code == 200, (path, page.text[:300])

    assert len(renders) >= 2 * 2 * len(pages)  # and the sign-in page
    for name, before, after in renders:
        assert after == before, name
    lists = [after for name, _, after in renders if name.endswith("list.html")]
    assert any("fa-arrow-down" in page for page in lists) and any("fa-arrow-up" in page for page in lists)
    assert any("http://other.example:8443/admin/statics/custodian.css" in page for page in lists)


class Columns:
    def __init__(self) -> None:
        self.list = ["id", "name", "price", "note"]
        self.sortable = ["id", "name", "price"]

    def label(self, name: str) -> str:
        return {"name": "<b>Name</b> & co"}.get(name, name.title())


class View:
    columns = Columns()

    def first_page_url(self, request: Request) -> URL:
        return request.url.remove_query_params(["after", "before", "page"])


def _request(query: str) -> Request:
    scope = {
        "type": "http",
        "scheme": "http",
        "server": ("testserver", 80),
        "path": "/admin/product/list",
        "root_path": "",
        "query_string": query.encode(),
        "headers": [(b"host", b"testserver")],
    }
    return Request(scope)


@pytest.mark.parametrize(
    "query",
    [
        "",
        "sortBy=price&sort=asc",
        "sortBy=price&sort=desc&sortBy=price",
        "sort=asc&x=1&sortBy=name",
        "sortBy=id&sort=sideways",
        "k%C3%BC=%E2%98%82&search=a%2Bb+c&empty=&flag&page=3&after=abc%3D",
    ],
)
def test_each_sort_link_is_the_url_starlette_would_write(query: str) -> None:
    request = _request(query)
    first_page = View().first_page_url(request)
    sorted_by, direction = request.query_params.get("sortBy"), request.query_params.get("sort")
    expected = []
    for name in View.columns.sortable:
        if sorted_by == name and direction in ("asc", "desc"):
            url = first_page.include_query_params(sort="desc" if direction == "asc" else "asc")
        else:
            url = first_page.include_query_params(sortBy=name, sort="asc")
        expected.append(str(url).replace("&", "&amp;"))

    html = sort_header_cells(request, View())

    assert [part.split('"', 1)[0] for part in html.split('<a href="')[1:]] == expected
    assert "&lt;b&gt;Name&lt;/b&gt; &amp; co" in html
    assert "\n          Note\n" in html  # not sortable: the label alone


def test_remembered_route_paths_resolve_as_starlette_and_are_bounded(app: Starlette) -> None:
    router = app.router
    reverse = type(router).url_path_for
    assert router.url_path_for("admin:list", identity="product") == reverse(
        router, "admin:list", identity="product"
    )
    assert router.url_path_for("admin:list", identity="product") is router.url_path_for(
        "admin:list", identity="product"
    )
    assert router.url_path_for("admin:details", identity="product", pk=1) == "/admin/product/details/1"
    assert router.url_path_for("admin:details", identity="product", pk=True) == "/admin/product/details/True"
    with pytest.raises(NoMatchFound):
        router.url_path_for("admin:no-such-route")
    for pk in range(MAX_ROUTER_PATHS + 10):
        assert (
            router.url_path_for("admin:details", identity="product", pk=pk) == f"/admin/product/details/{pk}"
        )
    assert router.url_path_for("admin:details", identity="product", pk=3) == "/admin/product/details/3"
    remembered = next(
        cell.cell_contents
        for cell in router.url_path_for.__closure__ or ()
        if isinstance(cell.cell_contents, OrderedDict)
    )
    assert len(remembered) == MAX_ROUTER_PATHS
