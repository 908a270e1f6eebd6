"""Writes that restore a recorded state (a fixture being loaded) instead of making something happen.

A service's rules are of two kinds. Some say what a record may hold: its
input schema, live references, unique values, database constraints,
permissions. Others are what an action does to the world: placing an order
takes stock from its products, cancelling gives it back, a shipped order's
items no longer change, an archived product is not ordered again. A fixture
is a snapshot, as Django's are (its `loaddata` saves raw, without model
logic): every record in it, stock and statuses included, is already the
outcome of those actions, so replaying them would apply them twice (stock
taken again, and refused once it runs out).

So a unit of work can be marked as restoring, for the length of a block:

    with restoring(uow):
        ...  # the same service calls, as the system or a user

and services ask `is_restoring(uow)` where they act on records other than
the one written, or refuse a change for the state it moves from. Everything
else is unchanged: the same schemas, checks, constraints, permissions and
audit entries, in the caller's transaction. One flag on the unit of work
rather than a second set of methods: the import machinery that loads
fixtures (`exchange.importing`) calls each service's own `build` / `apply`
as a form would, and a flag reaches them without a parallel write path per
model that could drift from the real one.

What a record derives from others is kept as the services always keep it
(an order's total is the sum of its items' lines): the fixture holds the
items, not the total.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from backend.db.uow import UnitOfWork


@contextmanager
def restoring(uow: UnitOfWork) -> Iterator[None]:
    """Mark the writes of `uow` inside the block as restoring a recorded state (see the module)."""
    before = uow.restoring
    uow.restoring = True
    try:
        yield
    finally:
        uow.restoring = before


def is_restoring(uow: UnitOfWork) -> bool:
    """Whether `uow` is restoring a recorded state: no stock moves, no refusals for a past action."""
    return uow.restoring
