"""Who a request acts as: set by the sign-in check (admin/auth.py), read everywhere else.

Its own module so that the request's unit of work (admin/requests.py) and the sign-in check,
which runs its session lookup in that unit, can both name it without importing each other.
"""

from __future__ import annotations

from starlette.requests import Request

from backend.auth.actor import Actor

ANONYMOUS = Actor(user_id=None, username="anonymous")


def current_actor(request: Request) -> Actor:
    """The signed-in actor of this request (set by `authenticate`)."""
    actor = getattr(request.state, "actor", None)
    return actor if isinstance(actor, Actor) else ANONYMOUS
