"""Reversing route names to URLs, remembered: a list page asks for a few hundred of them.

Starlette's `request.url_for` walks every route of the app on each call (`url_path_for`), and the
layout, the menu and each row of a list reverse the same few names with the same arguments. The
path of a name and its arguments never changes once the app is built, so it is kept per router;
only the absolute URL (the request's scheme and host) is made on each call. A name that does not
resolve is not remembered: it raises as Starlette does.
"""

from __future__ import annotations

from typing import Any

import jinja2
from starlette.datastructures import URL, URLPath
from starlette.requests import Request

# Where a router keeps the paths reversed so far (on itself: it lives as long as its app).
_PATHS_ATTRIBUTE = "custodian_url_paths"


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
