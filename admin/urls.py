"""Reversing route names to URLs, remembered: a list page asks for a few hundred of them.

Starlette's `request.url_for` walks every route of the app on each call (`url_path_for`), and the
layout, the menu and each row of a list reverse the same few names with the same arguments. The
path of a name and its arguments never changes once the app is built, so the app's router keeps
it (`remember_route_paths`, bounded), for SQLAdmin's own `request.url_for` calls too; only the
absolute URL (the request's scheme and host) is made on each call. A name that does not resolve is
not remembered: it raises as Starlette does. `QueryLinks` writes many links that differ in a few
query parameters, parsing the query once.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from typing import Any
from urllib.parse import parse_qsl, quote_plus, urlencode, urlsplit, urlunsplit

import jinja2
from starlette.datastructures import URL, URLPath
from starlette.requests import Request
from starlette.routing import Router

# Paths `remember_route_paths` keeps per router: the names a page reverses, and per-record links (a
# details page per row id) that come and go, least recently used first.
MAX_ROUTER_PATHS = 4096


def url_for(request: Request, name: str, /, **path_params: Any) -> URL:
    """`request.url_for(name, **path_params)`: its path comes from what the router remembers
    (`remember_route_paths`, installed by the admin on its app's router)."""
    return request.url_for(name, **path_params)


@jinja2.pass_context
def template_url_for(context: Any, name: str, /, **path_params: Any) -> URL:
    """The templates' `url_for` (the signature of SQLAdmin's own), through `url_for`."""
    return url_for(context["request"], name, **path_params)


def remember_route_paths(router: Router) -> None:
    """`router.url_path_for`, remembered: `request.url_for` asks it, in SQLAdmin's own code too.

    SQLAdmin's templates and views reverse names with `request.url_for` (a custom action's URL,
    the logout link, an export's), which walks every route of the app each time (about 30 µs);
    the list page asked it a dozen times. A name that does not resolve raises as before.
    """
    reverse = router.url_path_for
    paths: OrderedDict[tuple[str, tuple[tuple[str, type, Any], ...]], URLPath] = OrderedDict()

    def url_path_for(name: str, /, **path_params: Any) -> URLPath:
        try:
            # With each value's type: 1 and True are equal keys but write different paths.
            key = (name, tuple(sorted((k, type(v), v) for k, v in path_params.items())))
            path = paths.get(key)
        except TypeError:  # an unhashable argument: nothing to remember it by
            return reverse(name, **path_params)
        if path is None:
            path = paths[key] = reverse(name, **path_params)
            if len(paths) > MAX_ROUTER_PATHS:
                paths.popitem(last=False)
        else:
            paths.move_to_end(key)
        return path

    setattr(router, "url_path_for", url_path_for)  # noqa: B010 - an instance's method, replaced


class QueryLinks:
    """Links to `url` with the `replaced` parameters set anew: the URLs Starlette's
    `include_query_params` writes (the set parameters after all the others, each encoded as
    `urlencode` does), with the query parsed and the kept part encoded once for many links (a
    filter's choices, a list's sort headers), not once per link."""

    def __init__(self, url: str, replaced: Iterable[str]) -> None:
        parts = urlsplit(url)
        dropped = set(replaced)
        self._start = urlunsplit(parts._replace(query="", fragment=""))
        self._end = f"#{parts.fragment}" if parts.fragment else ""
        kept = urlencode(
            [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in dropped]
        )
        self._kept_and = f"{kept}&" if kept else ""
        # `remove_query_params` of the replaced parameters.
        self.without = self._with_query(kept)

    def with_values(self, *pairs: tuple[str, object]) -> str:
        """The link with `pairs` set, in this order."""
        added = "&".join(f"{quote_plus(name)}={quote_plus(str(value))}" for name, value in pairs)
        return self._with_query(self._kept_and + added)

    def _with_query(self, query: str) -> str:
        return f"{self._start}?{query}{self._end}" if query else self._start + self._end
