"""One unit of work per admin request: an edit POST opens one session for its work and loads the row once;
SQLAdmin's own create and edit routes keep `after_model_change` and "Save as new"."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import event, func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from admin.app import create_app
from admin.views.store import ProductAdmin
from backend.config import Settings
from backend.db.session import WRITE_INTENT, Database
from backend.models import AuthSession, Product
from tests.admin.browser_forms import as_post_data, submitted_form
from tests.admin.conftest import client_for, sign_in
from tests.factories import make_category, make_product, make_user

BASE = "http://testserver"


class CountingSessions:
    """The test's session maker, counting the sessions opened."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.sessions = sessions
        self.opened = 0

    def __call__(self, **options: Any) -> AsyncSession:
        self.opened += 1
        return self.sessions(**options)


@pytest.fixture
async def counted(
    settings: Settings, engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession], session: AsyncSession
) -> AsyncIterator[tuple[httpx.AsyncClient, CountingSessions, list[str]]]:
    counter = CountingSessions(sessions)
    database = Database(settings, engine=engine, sessions=counter)  # type: ignore[arg-type]  # a counting maker
    statements: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    event.listen(engine.sync_engine, "before_cursor_execute", record)
    client = client_for(create_app(settings, database=database))
    user = await make_user(session, is_superuser=True)
    await session.commit()
    assert (await sign_in(client, user.username)).status_code == 302
    try:
        yield client, counter, statements
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", record)
        await client.aclose()


def _row_loads(statements: list[str]) -> list[str]:
    """SELECTs of the product row by its id (the admin's loader), not of other tables or the audit trail."""
    pattern = re.compile(r"^SELECT .* FROM product\b.*WHERE product\.id = ", re.DOTALL)
    return [s for s in statements if pattern.match(" ".join(s.split()))]


async def _product_edit_form(
    client: httpx.AsyncClient, session: AsyncSession, *, submit: str | None = None, **values: Any
) -> tuple[int, str, dict[str, list[str]]]:
    """A new product's id, its edit path, and its edit form as the browser would send it."""
    product = await make_product(session, **values)
    await session.commit()
    path = f"/admin/product/edit/{product.id}"
    page = (await client.get(path)).text
    return product.id, path, as_post_data(submitted_form(page, BASE + path, submit=submit))


async def test_an_edit_post_uses_one_session_and_loads_the_row_once(
    counted: tuple[httpx.AsyncClient, CountingSessions, list[str]], session: AsyncSession
) -> None:
    client, counter, statements = counted
    pk, path, form = await _product_edit_form(client, session, name="Before")
    form["name"] = ["After"]
    counter.opened, statements[:] = 0, []

    response = await client.post(path, data=form)

    assert response.status_code == 302, response.text
    # The sign-in check's own short unit (a writing request's unit would hold SQLite's write lock
    # from the lookup on), and the request's one unit of work for everything else.
    assert counter.opened == 2
    # The admin loads the row; the service finds it in the same session's identity map.
    assert len(_row_loads(statements)) == 1, _row_loads(statements)
    session.expire_all()
    assert (await session.scalar(select(Product.name).where(Product.id == pk))) == "After"


async def test_after_model_change_runs_after_the_commit_and_its_response_is_sent(
    counted: tuple[httpx.AsyncClient, CountingSessions, list[str]],
    session: AsyncSession,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    client, _, _ = counted
    seen: list[tuple[str, bool]] = []

    async def after_model_change(
        self: ProductAdmin, data: dict[str, Any], model: Any, is_created: bool, request: Request
    ) -> Response:
        seen.append((model.name, is_created))
        return PlainTextResponse(f"changed {model.id}", status_code=201)

    monkeypatch.setattr(ProductAdmin, "after_model_change", after_model_change)
    pk, path, form = await _product_edit_form(client, session, name="Before")
    form["name"] = ["After"]

    response = await client.post(path, data=form)

    assert (response.status_code, response.text) == (201, f"changed {pk}")
    assert seen == [("After", False)]
    session.expire_all()
    assert (await session.scalar(select(Product.name).where(Product.id == pk))) == "After"


async def test_save_as_new_creates_a_record_and_leaves_the_original(
    counted: tuple[httpx.AsyncClient, CountingSessions, list[str]],
    session: AsyncSession,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    client, _, _ = counted
    monkeypatch.setattr(ProductAdmin, "save_as", True)
    _, path, form = await _product_edit_form(
        client, session, submit="Save as new", name="Original", sku="ORIG-1"
    )
    form["sku"], form["name"] = ["COPY-1"], ["Copy"]

    response = await client.post(path, data=form)

    assert response.status_code == 302, response.text
    session.expire_all()
    names = {sku: name for sku, name in (await session.execute(select(Product.sku, Product.name))).all()}
    assert names["ORIG-1"] == "Original" and names["COPY-1"] == "Copy"


async def test_a_refusal_inside_the_services_savepoint_shows_the_form_with_the_error_by_its_field(
    counted: tuple[httpx.AsyncClient, CountingSessions, list[str]], session: AsyncSession
) -> None:
    """The refused write's savepoint expires the row the page shows: it is read again, not a 500."""
    client, _, _ = counted
    category = await make_category(session, name="Loop")
    await session.commit()
    pk = category.id
    path = f"/admin/category/edit/{pk}"
    form = as_post_data(submitted_form((await client.get(path)).text, BASE + path))
    form["parent"] = [str(pk)]

    response = await client.post(path, data=form)

    assert response.status_code == 400, response.text
    assert "A category cannot be inside itself." in response.text
    assert 'value="Loop"' in response.text


async def test_a_stale_form_is_refused_as_stale_before_its_field_problems(
    counted: tuple[httpx.AsyncClient, CountingSessions, list[str]], session: AsyncSession
) -> None:
    """The admin parses the input itself (typed), but asks the service's version rule first."""
    client, _counter, _statements = counted
    pk, path, stale = await _product_edit_form(client, session, name="Before")
    fresh = as_post_data(submitted_form((await client.get(path)).text, BASE + path))
    fresh["name"] = ["Saved first"]
    assert (await client.post(path, data=fresh)).status_code == 302
    stale["sku"] = ["bad sku!"]  # also a problem only the service's schema finds (the SKU pattern)

    response = await client.post(path, data=stale)

    assert response.status_code == 409, response.text
    assert "since you opened it" in response.text
    session.expire_all()
    assert (await session.scalar(select(Product.name).where(Product.id == pk))) == "Saved first"


async def test_a_page_reads_in_one_unit_and_a_due_session_stamp_leaves_it_reading(
    counted: tuple[httpx.AsyncClient, CountingSessions, list[str]], engine: AsyncEngine, session: AsyncSession
) -> None:
    """The session lookup runs in the page's own unit (one connection, one transaction); when the
    session's stamp falls due it is committed at once and the page goes on in a read transaction
    (on SQLite, a page or an export holding the write lock would block every writer)."""
    client, counter, _statements = counted
    counter.opened = 0
    assert (await client.get("/admin/product/list")).status_code == 200
    assert counter.opened == 1

    long_ago = datetime.now(UTC) - timedelta(minutes=5)
    await session.execute(update(AuthSession).values(last_seen_at=long_ago))
    await session.commit()
    declared: list[tuple[str, bool]] = []

    def record(_conn: Any, _cursor: Any, statement: str, _parameters: Any, context: Any, _many: bool) -> None:
        words = statement.split()
        table = words[words.index("FROM") + 1] if words[0] == "SELECT" else words[1]
        declared.append((f"{words[0]} {table}", bool(context.execution_options.get(WRITE_INTENT, False))))

    event.listen(engine.sync_engine, "before_cursor_execute", record)
    try:
        assert (await client.get("/admin/product/list")).status_code == 200
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", record)
    assert counter.opened == 2
    # The lookup reads, the stamp is written and committed, and the page reads again.
    # (The first read's flag is the shared test connection's, left by earlier sessions: not asserted.)
    assert ("UPDATE auth_session", True) in declared
    assert [intent for statement, intent in declared if statement.startswith("SELECT product")] == [False]
    session.expire_all()
    stamped = await session.scalar(select(func.min(AuthSession.last_seen_at)))
    assert stamped is not None and stamped > long_ago
