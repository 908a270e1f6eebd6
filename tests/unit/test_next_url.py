"""The sign-in's `next` target (admin/auth.py) without a database: no open redirect, same-site paths kept."""

from __future__ import annotations

import pytest
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Mount, Route, Router

from admin.auth import admin_next_path, next_to_keep, safe_next_url

ADMIN = "/admin/"
INDEX = "http://testserver/admin/"

OPEN_REDIRECTS = [
    "//evil.example",
    "///evil.example",
    "https://evil.example",
    "https://evil.example/admin/",
    "http:/evil.example",
    "HTTPS://evil.example/admin/",
    "/\\evil.example",
    "\\\\evil.example",
    "/\\/evil.example",
    "/admin/\\..\\..\\evil",
    "javascript:alert(1)",
    "JavaScript:alert(1)//admin/",
    "data:text/html,<script>alert(1)</script>",
    "/%2F%2Fevil.example",
    "/%2f%2fevil.example",
    "/%5Cevil.example",
    "/%5cevil.example",
    "/admin/%2F%2Fevil.example",
    "/admin/%5C%5Cevil.example",
    "/admin/%252F%252Fevil.example",
    "/admin/%25252e%25252e/%25252e%25252e/evil",
    "/admin/%2e%2e/%2e%2e/evil",
    "/admin/../../evil",
    "/admin/./../evil",
    "/\t/evil.example",
    "/admin/\n/evil",
    "/admin/%09/evil",
    "/admin/%0d%0aLocation:%20https://evil.example",
    "/admin/%00",
    "/%E2%80%AE/admin/",
    "/admin@evil.example",
    "/admin.evil.example/",
    "/administrator/",
    "/admin/login",
    "/admin/logout",
    "/admin/%6c%6f%67%69%6e",
    "admin/product/list",
    "evil.example",
    "",
    None,
    "/admin/" + "a" * 2000,
]

SAME_SITE = [
    "/admin",
    "/admin/",
    "/admin/product/list",
    "/admin/product/list?search=a%2Fb&pageSize=50",
    "/admin/product/list?search=https://evil.example",  # a query value on our own page is fine
    "/admin/user/details/7#roles",
    "/admin/customer/edit/12",
    "/admin/history/order/5",
    "/admin/%C3%A9t%C3%A9",
]


@pytest.mark.parametrize("candidate", OPEN_REDIRECTS)
def test_targets_off_the_admin_are_refused(candidate: str | None) -> None:
    assert admin_next_path(candidate, admin_path=ADMIN) is None


@pytest.mark.parametrize("candidate", SAME_SITE)
def test_same_site_admin_paths_are_kept_as_they_are(candidate: str) -> None:
    assert admin_next_path(candidate, admin_path=ADMIN) == candidate


def _request() -> Request:
    async def page(_request: Request) -> PlainTextResponse:
        return PlainTextResponse("")

    router = Router(routes=[Mount("/admin", name="admin", routes=[Route("/", page, name="index")])])
    scope = {
        "type": "http",
        "method": "GET",
        "scheme": "http",
        "server": ("testserver", 80),
        "path": "/admin/login",
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"testserver")],
        "router": router,
    }
    return Request(scope)


@pytest.mark.parametrize("candidate", [c for c in OPEN_REDIRECTS if c is not None])
def test_sign_in_goes_to_the_admin_index_instead_and_keeps_nothing(candidate: str) -> None:
    request = _request()
    assert safe_next_url(request, candidate) == INDEX
    assert next_to_keep(request, candidate) == ""


@pytest.mark.parametrize("candidate", SAME_SITE)
def test_sign_in_follows_a_same_site_target(candidate: str) -> None:
    request = _request()
    assert safe_next_url(request, candidate) == candidate
    assert next_to_keep(request, candidate) == candidate
