"""Reversing route names to URLs, remembered: a list page asks for a few hundred of them.

Starlette's `request.url_for` walks every route of the app on each call (`url_path_for`), and the
layout, the menu and each row of a list reverse the same few names with the same arguments. The
path of a name and its arguments never changes once the app is built, so it is kept per router;
only the absolute URL (the request's scheme and host) is made on each call. A name that does not
resolve is not remembered: it raises as Starlette does.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import jinja2
from starlette.datastructures import URL, URLPath
from starlette.requests import Request
from starlette.routing import Router

# Where a router keeps the paths reversed so far (on itself: it lives as long as its app).
_PATHS_ATTRIBUTE = "custodian_url_paths"
# Paths `remember_route_paths` keeps per router: the names a page reverses, and per-record links (a
# details page per row id) that come and go, least recently used first.
MAX_ROUTER_PATHS = 4096


def url_for(request: Request, name: str, /, **path_params: Any) -> URL:
    """`request.url_for(name, **path_params)`, with the path remembered per router."""
    router = request.scope.get("router") or request.scope.get("app")
    if router is None:
        return request.url_for(name, **path_params)  # raises Starlette's own error
    try:
        key = (name, tuple(sorted(path_params.items())))
        hash(key)
    except TypeError:  # an unhashable argument: nothing to remember it by
        return request.url_for(name, **path_params)
    paths: dict[tuple[str, tuple[tuple[str, Any], ...]], URLPath] = router.__dict__.setdefault(
        _PATHS_ATTRIBUTE, {}
    )
    path = paths.get(key)
    if path is None:
        path = paths[key] = router.url_path_for(name, **path_params)
    return path.make_absolute_url(base_url=request.base_url)


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
