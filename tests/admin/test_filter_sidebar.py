"""The filter sidebar's links in Python (admin/filter_sidebar.py): Starlette's URLs, the template's markup."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
from jinja2 import Environment
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.applications import Starlette
from starlette.datastructures import URL
from starlette.requests import Request

from admin import i18n
from admin.app import create_app
from admin.filter_sidebar import FilterUrls
from admin.keyset import POSITION_PARAMS, CappedCount
from tests.admin.conftest import ClientFactory
from tests.databases import make_settings
from tests.factories import make_category, make_product

# lookup_filter.html as it was (commit 103d41a) before its loop moved to Python.
TEMPLATE_BEFORE = (Path(__file__).parent / "lookup_filter_before.html").read_text()

AWKWARD = "a&b<c>\"d'e ü+%#="
LOOKUPS: list[tuple[Any, str]] = [
    ("__all", "All"),
    ("1", "<b>Lamps</b> & co"),
    ("2", "Say \"hi\" & 'bye'"),
    ("3", "Übergrößen ☂"),
    (AWKWARD, "a value needing escapes"),
    (7, "a key that is no string"),
]
FACETS: dict[Any, CappedCount] = {
    "1": CappedCount(3, capped=False),
    "3": CappedCount(12_345, capped=True),
    AWKWARD: CappedCount(99_235, capped=False, estimated=True),
}

QUERIES = [
    "",
    "a=1",
    "category=1",
    "category=1&category=2",
    "x=1&category=1&y=2",
    "category=&flag&empty=",
    "search=a%26b%3Dc&sortBy=price&sort=desc",
    "search=caf%C3%A9+cr%C3%A8me&q=%2B1+2",
    "search=café crème&q=a+b",
    "page=3&after=abc%3D%3D&pageSize=25&category=2",
    "k%C3%BC=%E2%98%82&category=%3Cb%3E",
]


@pytest.mark.parametrize("query", QUERIES)
@pytest.mark.parametrize("base", ["/admin/product/list", "http://testserver:8080/admin/product/list"])
def test_each_link_is_the_url_starlette_would_write(base: str, query: str) -> None:
    url = f"{base}?{query}" if query else base
    for parameter in ("category", "search", "k\u00fc", "absent"):
        urls = FilterUrls(url, parameter)
        assert urls.without == str(URL(url).remove_query_params(parameter))
        for value in ("1", "", AWKWARD, "café", 7, "__all"):
            assert urls.with_value(value) == str(URL(url).include_query_params(**{parameter: value}))


def test_a_fragment_stays_at_the_end() -> None:
    url = "/admin/product/list?category=1&b=2#top"
    assert FilterUrls(url, "category").with_value("5") == str(URL(url).include_query_params(category="5"))
    assert FilterUrls(url, "category").without == str(URL(url).remove_query_params("category"))


@pytest.fixture(scope="module")
def app_without_database() -> Iterator[Starlette]:
    # Rendering the sidebar reads nothing from a database; the engine never connects.
    yield create_app(make_settings("sqlite+aiosqlite:///:memory:"))


class GivenLookups:
    """The product list as the sidebar sees it, with given lookups and facets instead of queried ones."""

    def __init__(self, view: Any, lookups: Sequence[tuple[Any, str]], facets: Mapping[Any, Any]) -> None:
        self.view = view
        self.model = view.model
        self.lookups = list(lookups)
        self.facets = dict(facets)

    def first_page_url(self, request: Request) -> URL:
        url: URL = self.view.first_page_url(request)
        return url

    def filter_lookup_url(self, request: Request) -> URL:
        url: URL = self.view.filter_lookup_url(request)
        return url

    async def filter_lookups(self, request: Request, list_filter: Any) -> list[tuple[Any, str]]:
        return self.lookups

    async def facet_counts(self, request: Request, list_filter: Any) -> dict[Any, Any]:
        return self.facets


def _request(app: Starlette, query: str) -> Request:
    scope = {
        "type": "http",
        "method": "GET",
        "scheme": "http",
        "server": ("testserver", 80),
        "path": "/admin/product/list",
        "root_path": "",
        "query_string": query.encode(),
        "headers": [(b"host", b"testserver")],
        "app": app,
        "router": app.router,
    }
    return Request(scope)


async def _both(env: Environment, **context: Any) -> tuple[str, str]:
    before = await env.from_string(TEMPLATE_BEFORE).render_async(**context)
    after = await env.get_template("sqladmin/filters/lookup_filter.html").render_async(**context)
    return before, after


SIDEBAR_STATES = [
    "",  # nothing chosen
    "category=1&search=x%26y&sortBy=price&sort=desc",  # a plain value chosen, others kept
    "category=" + AWKWARD.replace("%", "%25").replace("&", "%26").replace("#", "%23").replace("+", "%2B"),
    "category=3&page=4&after=abc&pageSize=25",  # position left out of every link
    "status=draft&category=7",  # a key that is no string is never the chosen one
]


@pytest.mark.parametrize("locale", ["en", "de"])
@pytest.mark.parametrize("with_facets", [False, True], ids=["no-facets", "facets"])
@pytest.mark.parametrize("query", SIDEBAR_STATES)
async def test_the_sidebar_is_the_markup_the_template_wrote(
    app_without_database: Starlette, query: str, with_facets: bool, locale: str
) -> None:
    admin = app_without_database.state.admin
    products = next(view for view in admin.views if getattr(view, "identity", None) == "product")
    view = GivenLookups(products, LOOKUPS, FACETS if with_facets else {})
    request = _request(app_without_database, query)
    i18n.switch_to(locale)
    try:
        for list_filter in products.get_filters():
            if list_filter.parameter_name not in ("category", "status"):
                continue
            before, after = await _both(
                admin.templates.env, model_view=view, request=request, filter=list_filter
            )
            assert after == before
            chosen = request.query_params.get(list_filter.parameter_name)
            assert ("fa-times" in after) == (chosen in [key for key, _ in LOOKUPS])
            assert ("filter-facet" in after) == with_facets
    finally:
        i18n.switch_to("en")


CATEGORY_LINK = re.compile(r'<a href="([^"]*(?:\?|&amp;)category=[^"]*)" class="d-block text-decoration-none')
CLEAR_LINK = re.compile(r'<a href="([^"]*)" class="text-decoration-none ms-2" title="Clear filter">')


async def test_the_list_page_links_each_category_as_starlette_would(
    new_client: ClientFactory, session: AsyncSession
) -> None:
    chosen = await make_category(session, name="<b>Lamps</b> & \"co\" 'ü'")
    other = await make_category(session, name="Übergrößen & <i>more</i>")
    await make_product(session, category_id=chosen.id, name="kettle")
    await session.commit()
    client = await new_client(roles=["viewer"])
    state = {
        "search": "ket&tle",
        "sortBy": "price",
        "sort": "desc",
        "pageSize": "25",
        "category": str(chosen.id),
    }

    page = await client.get("/admin/product/list", params=state)

    assert page.status_code == 200, page.text
    first_page = URL(str(page.url)).remove_query_params(list(POSITION_PARAMS))
    links = [html.unescape(href) for href in CATEGORY_LINK.findall(page.text)]
    assert str(first_page.include_query_params(category=str(other.id))) in links
    assert str(first_page.include_query_params(category="__all")) in links
    assert str(first_page.include_query_params(category=str(chosen.id))) not in links
    clear = CLEAR_LINK.search(page.text)
    assert clear is not None and html.unescape(clear.group(1)) == str(
        first_page.remove_query_params("category")
    )
    assert "&lt;b&gt;Lamps&lt;/b&gt; &amp; &#34;co&#34; &#39;ü&#39;" in page.text
    assert "Übergrößen &amp; &lt;i&gt;more&lt;/i&gt;" in page.text
