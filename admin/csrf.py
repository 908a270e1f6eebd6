"""CSRF protection for every state-changing admin request.

The token is a random value kept in the signed session cookie, rotated at
sign-in and sign-out, so it is bound to one browser session: another
session's token does not match. Browsers send it as the `csrf_token` form
field or the `X-CSRF-Token` header (set by custodian.js for fetch and
jQuery). The Origin (or, failing that, Referer) must also be this site.
"""

from __future__ import annotations

import hmac
import secrets
from urllib.parse import urlsplit

from starlette.requests import Request

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
SESSION_KEY = "csrf"
FORM_FIELD = "csrf_token"
HEADER = "x-csrf-token"


def csrf_token(request: Request) -> str:
    """This session's token, created on first use."""
    token = request.session.get(SESSION_KEY)
    if not isinstance(token, str) or not token:
        token = secrets.token_urlsafe(32)
        request.session[SESSION_KEY] = token
    return token


# The most fields a form of ours sends: an order with its most lines (500, four fields each) and its own.
# Starlette's default (1,000) refused it; the body's size is bounded before this (admin/input_guard.py).
FORM_MAX_FIELDS = 2_500


def rotate_csrf_token(request: Request) -> None:
    request.session[SESSION_KEY] = secrets.token_urlsafe(32)


async def csrf_failure(request: Request) -> str | None:
    """Why this unsafe request fails the CSRF check, or None if it passes."""
    if request.method in SAFE_METHODS:
        return None
    origin_problem = _origin_problem(request)
    if origin_problem:
        return origin_problem
    expected = request.session.get(SESSION_KEY)
    if not isinstance(expected, str) or not expected:
        return "Your session has no security token; reload the page and try again."
    sent = request.headers.get(HEADER)
    if not sent:
        content_type = request.headers.get("content-type", "")
        if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
            # The first read of the form: Starlette keeps it for every later one, limits included.
            value = (await request.form(max_fields=FORM_MAX_FIELDS)).get(FORM_FIELD)
            sent = value if isinstance(value, str) else None
    if not sent or not hmac.compare_digest(sent, expected):
        return "The security token is missing or does not match; reload the page and try again."
    return None


def navigation_problem(request: Request) -> str | None:
    """Why a GET that starts work (an export job) is not known to come from this site's own pages.

    A GET carries no token, so its Origin or Referer must be present and this
    site's: our pages send it on every same-origin navigation (Referrer-Policy
    same-origin), while a cross-site link, image or script sends another site's
    or none. The caller then does the read-only thing instead (streams the file).
    """
    source = request.headers.get("origin") or request.headers.get("referer")
    if not source or source == "null":
        return "The request does not say it came from a page of this site."
    return _origin_problem(request)


def _origin_problem(request: Request) -> str | None:
    source = request.headers.get("origin") or request.headers.get("referer")
    if not source or source == "null":
        if request.headers.get("origin") == "null":
            return "Requests from an opaque origin are refused."
        return None  # non-browser clients send neither; the token still applies
    parts = urlsplit(source)
    if (parts.scheme, parts.netloc) != (request.url.scheme, request.url.netloc):
        return "Cross-site requests are refused."
    return None
