"""An export job writes exactly what the list shows: every view, filter, search and sort, both ways.

For each list state a model view can have, the streamed export of that list
(the admin's export route) and the file of an export job submitted with
`export_query_of(view, request)` must hold the same bytes: the same rows in
the same order. On SQLite the job runs at once in `submit`; on PostgreSQL it
is queued, and run here in-process (`run_job`), over the test's transaction.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

import httpx
from sqladmin.filters import StaticValuesFilter
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.applications import Starlette
from starlette.requests import Request

from admin.export import FileExport, export_query_of
from admin.filters import ALL, DateRangeFilter, LiveForeignKeyFilter
from backend.auth.actor import Actor
from backend.db.session import Database
from backend.jobs.export_query import ExportQuery
from backend.jobs.runner import run_job
from backend.jobs.service import JobService
from backend.models import OrderStatus, ProductStatus
from backend.models.jobs import JobStatus
from backend.services import masking
from tests.admin.conftest import client_for, sign_in
from tests.factories import (
    make_category,
    make_customer,
    make_order,
    make_product,
    make_tag,
    make_user,
    unique,
)
from tests.jobs.conftest import actor_of

State = list[tuple[str, str]]


def export_views(app: Starlette) -> list[FileExport]:
    return [view for view in app.state.admin.views if isinstance(view, FileExport) and view.can_export]


def request_for(state: State) -> Request:
    """A request with the list's query string: all `export_query_of` reads of a request."""
    return Request(
        {"type": "http", "method": "GET", "query_string": urlencode(state).encode(), "headers": []}
    )


async def list_states(view: FileExport, session: AsyncSession) -> list[State]:
    """The list with nothing chosen; each value of each declared filter; a search; each sort both ways."""
    states: list[State] = [[]]
    for list_filter in view.get_filters():
        name = list_filter.parameter_name
        if isinstance(list_filter, LiveForeignKeyFilter):
            rows = await list_filter.lookups(request_for([]), view.model, _rows(session))
            states.extend([(name, key)] for key, _label in rows if key != ALL)
        elif isinstance(list_filter, DateRangeFilter):
            first, last = list_filter.parameter_names
            today = datetime.now(UTC).date()
            start, end = (today - timedelta(days=30)).isoformat(), (today - timedelta(days=2)).isoformat()
            states.extend(
                [
                    [(first, start)],
                    [(last, end)],
                    [(first, start), (last, end)],
                    [(first, today.isoformat()), (last, today.isoformat())],  # to takes its whole day
                ]
            )
        elif isinstance(list_filter, StaticValuesFilter):
            states.extend([(name, str(value))] for value, _label in list_filter.values)
        else:
            raise AssertionError(f"{view.identity}: no list states written for filter {name}")
    if view.columns.searchable:
        states.append([("search", "a")])
        states.append([("search", "5")])
    for column in sorted(view.columns.sortable):
        states.extend([("sortBy", column), ("sort", direction)] for direction in ("asc", "desc"))
    filtered = [[*state, ("search", "e")] for state in states[1:3] if view.columns.searchable]
    return states + filtered


def _rows(session: AsyncSession) -> Any:
    """What a filter's `lookups` runs its statement with (the list's `rows_of`)."""

    async def run(stmt: Any) -> Any:
        return (await session.execute(stmt)).all()

    return run


async def a_store(session: AsyncSession) -> None:
    """Rows that every filter value and sort tells apart: statuses, dates, ties, related records."""
    now = datetime.now(UTC)
    first = await make_category(session, name="Lamps", slug="lamps")
    # A slug that reads like another category's id: a filter by id must not match it.
    desks = await make_category(session, name="Desks", slug=str(first.id + 2))
    second = await make_category(session, name="Chairs", slug=unique("chairs-"), parent_id=first.id)
    assert desks.slug == str(second.id)
    tags = [await make_tag(session, name=name) for name in ("amber", "zinc", "teak")]
    ages = (
        timedelta(hours=1),
        timedelta(days=3),
        timedelta(days=20),
        timedelta(days=200),
        timedelta(days=900),
    )
    statuses = list(ProductStatus)
    for index in range(12):
        await make_product(
            session,
            name=f"Product {index % 5}",  # ties, broken by id
            sku=f"SKU-{index:03d}-{unique('x')}",
            price=Decimal(f"{5 + index % 4}.50"),
            status=statuses[index % len(statuses)],
            category_id=(first, second, desks)[index % 3].id,
            tags=tags[: index % 4],
            created_at=now - ages[index % len(ages)],
        )
    order_statuses = list(OrderStatus)
    for index in range(8):
        customer = await make_customer(session, name=f"Customer {index % 3}")
        await make_order(
            session,
            customer_id=customer.id,
            status=order_statuses[index % len(order_statuses)],
            placed_at=now - ages[index % len(ages)],
        )
    for index in range(3):
        await make_user(session, roles=["editor"] if index else ["manager"])
    await session.commit()


async def job_file(database: Database, actor: Actor, *, table: str, params: dict[str, Any]) -> bytes:
    service = JobService(database)
    job = await service.submit(actor, kind="export", table=table, format="csv", params=params)
    if not database.settings.is_sqlite:
        assert job.status is JobStatus.QUEUED
        await run_job(database, job.id, live_progress=False)
    job = await service.get_mine(actor, job.id)
    assert job.status is JobStatus.DONE, (table, params, job.error)
    return (await service.result_file(actor, job.id)).path.read_bytes()


async def streamed(client: httpx.AsyncClient, identity: str, state: State) -> bytes:
    response = await client.get(f"/admin/{identity}/export/csv", params=state)
    assert response.status_code == 200, (identity, state, response.status_code, response.text[:300])
    return response.content


async def test_a_jobs_file_holds_the_rows_of_the_streamed_export_for_every_list_state(
    app: Starlette, job_database: Database, session: AsyncSession
) -> None:
    await a_store(session)
    user = await make_user(session, is_superuser=True)
    await session.commit()
    actor = await actor_of(session, user)
    checked: dict[str, int] = {}
    async with client_for(app) as client:
        assert (await sign_in(client, user.username)).status_code == 302
        for view in export_views(app):
            for state in await list_states(view, session):
                params = await export_query_of(view, request_for(state))
                assert params is not None, (view.identity, state)
                ExportQuery.from_params(params).check(view.model, actor)
                expected = await streamed(client, view.identity, state)
                written = await job_file(
                    job_database, actor, table=masking.table_of(view.model), params=params
                )
                assert written == expected, (view.identity, state, params)
                checked[view.identity] = checked.get(view.identity, 0) + 1
    assert {"product", "category", "tag", "customer", "order", "user", "role"} <= set(checked)
    assert checked["product"] >= 15 and checked["order"] >= 10


async def test_the_lists_state_becomes_the_jobs_query(app: Starlette, session: AsyncSession) -> None:
    category = await make_category(session)
    await session.commit()
    product_view = next(view for view in export_views(app) if view.identity == "product")
    state = [
        ("status", "draft"),
        ("category", str(category.id)),
        ("created", "7d"),
        ("created_from", (date.today() - timedelta(days=30)).isoformat()),
        ("created_to", "9999-12-31"),
        ("search", "lamp"),
        ("sortBy", "price"),
        ("sort", "desc"),
        ("pageSize", "25"),
        ("after", "whatever"),
    ]
    before = datetime.now(UTC)

    params = await export_query_of(product_view, request_for(state))

    assert params is not None
    assert params["equals"] == {"status": "draft", "category_id": str(category.id)}
    # Both date filters bound created_at from below: the narrower (the past 7 days) holds both.
    since = datetime.fromisoformat(params["since"]["created_at"])
    assert before - timedelta(days=7, seconds=5) <= since <= datetime.now(UTC) - timedelta(days=7)
    ranged = await export_query_of(
        product_view, request_for([("created_from", "2026-11-02"), ("created_to", "2026-11-30")])
    )
    assert ranged is not None
    assert ranged["since"] == {"created_at": "2026-11-02T00:00:00+00:00"}
    assert ranged["until"] == {"created_at": "2026-12-01T00:00:00+00:00"}  # the 30th included, whole
    assert params["search"] == {"term": "lamp", "fields": ["sku", "name"]}
    assert params["order_by"] == ["-price"]
    # Position and page size do not travel; a range to the last day there is has no upper bound.
    assert set(params) == {"equals", "since", "search", "order_by"}
    default = await export_query_of(product_view, request_for([("status", ALL)]))
    assert default == {"order_by": ["-id"]}
