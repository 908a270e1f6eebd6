"""Route names reversed with their paths remembered (admin/urls.py): the same URLs as Starlette's."""

from __future__ import annotations

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Mount, NoMatchFound, Route

from admin.urls import url_for


def _ok(request: Request) -> PlainTextResponse:
    return PlainTextResponse("ok")


def _request(app: Starlette, host: str) -> Request:
    scope = {
        "type": "http",
        "method": "GET",
        "scheme": "https",
        "server": (host, 443),
        "path": "/",
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", host.encode())],
        "router": app.router,
        "app": app,
    }
    return Request(scope)


def test_the_same_urls_as_starlette_for_every_host_and_argument() -> None:
    inner = [Route("/things/{pk}", _ok, name="thing"), Route("/list", _ok, name="list")]
    app = Starlette(routes=[Mount("/admin", routes=inner, name="admin")])
    for host in ("one.example", "two.example"):
        request = _request(app, host)
        for name, params in (("admin:thing", {"pk": 7}), ("admin:thing", {"pk": "8"}), ("admin:list", {})):
            assert url_for(request, name, **params) == request.url_for(name, **params)
    assert (
        str(url_for(_request(app, "two.example"), "admin:thing", pk=7))
        == "https://two.example/admin/things/7"
    )
    with pytest.raises(NoMatchFound):
        url_for(_request(app, "one.example"), "admin:nothing")
