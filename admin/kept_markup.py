"""Template parts that are the same on every page for a language and a host, rendered once and reused.

A page's stylesheet and script links (an absolute URL per file, `url_for('admin:statics', ...)`)
and the top bar (the environment, the command palette, the account link, the theme toggle) cost
about 0.4 ms of Jinja on every page, and their HTML changes only with what the call names: the
request's language (their words are translations), its base URL (scheme, host and root path, what
`url_for` makes the links absolute with) and the key the template adds (the signed-in username).

A template wraps such a part in a call block; the block's body is rendered on a miss only, so the
markup stays the template's own and every block around it stays overridable:

    {% call kept_markup(request, "head_css") %}{{ super() }}...{% endcall %}

With `templates_auto_reload` on (development), nothing is kept: an edited template shows at once.
The Host header is the client's to choose, so the kept parts are bounded, least recently used first.
"""

from __future__ import annotations

import inspect
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any
from weakref import WeakKeyDictionary

import jinja2
from markupsafe import Markup, escape
from starlette.requests import Request

from admin.i18n import active_locale

# Per environment (per admin). Parts x languages x hosts, and x users for the top bar: a miss costs
# one render of the part, as every page did before.
MAX_KEPT_PER_ENVIRONMENT = 2048


class KeptMarkup:
    """Markup rendered once per owner and key, then reused; beyond `limit` keys per owner, the least
    recently used goes first.

    Keyed by the owner itself (an admin's menu, a Jinja environment), weakly: an app built and
    dropped (the tests build hundreds) takes its markup with it, and a new owner never finds another
    app's markup under a reused id.
    """

    def __init__(self) -> None:
        self._by_owner: WeakKeyDictionary[Any, OrderedDict[Hashable, Markup]] = WeakKeyDictionary()

    async def get(self, owner: Any, key: Hashable, render: Callable[[], Any], *, limit: int) -> Markup:
        """The markup kept for `key`, or what `render()` gives (awaited if need be), then kept."""
        kept = self._by_owner.get(owner)
        if kept is None:
            kept = self._by_owner[owner] = OrderedDict()
        html = kept.get(key)
        if html is not None:
            kept.move_to_end(key)
            return html
        html = kept[key] = await _rendered(render)
        if len(kept) > limit:
            kept.popitem(last=False)
        return html


_parts = KeptMarkup()


@jinja2.pass_context
async def kept_markup(
    context: jinja2.runtime.Context, request: Request, part: str, *key: Hashable, caller: Callable[[], Any]
) -> Markup:
    """The call block's body as rendered for this part, language, base URL and `key`; rendered once."""
    environment = context.environment
    if environment.auto_reload:
        return await _rendered(caller)
    state = (part, active_locale(), str(request.base_url), *key)
    return await _parts.get(environment, state, caller, limit=MAX_KEPT_PER_ENVIRONMENT)


async def _rendered(render: Callable[[], Any]) -> Markup:
    body = render()  # a coroutine in an async environment
    # Autoescaped markup comes as Markup, which `escape` passes through; plain text is escaped.
    return escape(await body if inspect.isawaitable(body) else body)
