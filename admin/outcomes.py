"""The sentence every write ends with: what happened, or why not.

Messages reach the next page through SQLAdmin's session flash (`sqladmin.Flash`),
never through the URL: a message in a query string can be forged by anyone who
sends a link (and lands in access logs). templates/sqladmin/flash.html shows
them as toasts.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from sqladmin import Flash, ModelView
from sqladmin.helpers import get_object_identifier
from starlette.datastructures import URL
from starlette.requests import Request

from admin.auth import current_actor
from admin.i18n import gettext, noun, translated, translated_plural
from backend.services.masking import label_for

LABEL_LIMIT = 80
# Session key: message text -> (link text, URL) for the messages flash.html shows with a link.
FLASH_LINKS_KEY = "custodian_flash_links"


def record_label(request: Request, view: ModelView, obj: Any) -> str:
    """A record as its user knows it: 'Product “DEMO-00001 Kettle”', 'Order #5'.

    The label goes through the masking rule: one that would show a value this user may not
    see becomes "customer 12".
    """
    text = label_for(current_actor(request), obj).strip()
    if len(text) > LABEL_LIMIT:
        text = text[: LABEL_LIMIT - 1] + "…"
    if not text:
        return f"{view.name} {get_object_identifier(obj)}"
    if text.lower().startswith(str(view.name).lower() + " "):
        return text[0].upper() + text[1:]  # "Order #5" names itself, as does a masked "customer 12"
    return f"{view.name} “{text}”"


def succeeded(request: Request, message: str) -> None:
    """What a write did, shown on the next page (a fixed English message in the user's language)."""
    Flash.success(request, gettext(message))
    _keep(request)


def succeeded_with_link(request: Request, message: str, link_text: str, url: str) -> None:
    """What a write did, with a link to where it can be seen (a URL the server made, never the client)."""
    kept = request.session.get(FLASH_LINKS_KEY)
    links = dict(kept) if isinstance(kept, dict) else {}
    links[gettext(message)] = [gettext(link_text), url]
    request.session[FLASH_LINKS_KEY] = links
    succeeded(request, message)


def refused(request: Request, reason: str) -> None:
    """A write that did not happen, with the reason (already fit for this user to read).

    A fixed reason from the services (English, shared with the CLI) is shown in the user's
    language when the catalog has it; one with values put in stays as written.
    """
    Flash.error(request, gettext(reason))
    _keep(request)


def _keep(request: Request) -> None:
    # SQLAdmin appends a second message to the list already in the session, which Starlette's
    # Session does not see as a change: without this the cookie keeps only the first message.
    request.session.update()


def created(request: Request, view: ModelView, obj: Any) -> None:
    succeeded(request, translated("%(record)s was created.", record=record_label(request, view, obj)))


def saved(request: Request, view: ModelView, obj: Any) -> None:
    succeeded(request, translated("%(record)s was saved.", record=record_label(request, view, obj)))


def moved_to_trash(request: Request, view: ModelView, objs: Sequence[Any]) -> None:
    if len(objs) == 1:
        record = record_label(request, view, objs[0])
        text = translated("%(record)s was moved to the trash, where it can be restored.", record=record)
    else:
        text = translated(
            "%(count)s %(things)s were moved to the trash, where they can be restored.",
            count=len(objs),
            things=noun(view.name_plural),
        )
    succeeded(request, text)


def bulk_done(request: Request, view: ModelView, count: int, done: str) -> None:
    """After a bulk action: '3 products were marked active.' (`done` as the action's own words)."""
    things = noun(view.name if count == 1 else view.name_plural)
    message = translated_plural(
        "%(count)s %(things)s was %(done)s.",
        "%(count)s %(things)s were %(done)s.",
        count,
        things=things,
        done=gettext(done),
    )
    succeeded(request, message)


def back_to(request: Request, page: URL) -> str:
    """`page` as the user last saw it (its search and filters, from the Referer), else `page` itself.

    Only a Referer on this host and on `page`'s own path is followed, so it can never lead elsewhere.
    """
    referer = urlsplit(request.headers.get("referer", ""))
    if referer.netloc == page.netloc and referer.path == page.path:
        return urlunsplit(("", "", referer.path, referer.query, ""))
    return str(page)
