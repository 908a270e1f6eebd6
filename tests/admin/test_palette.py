"""The command palette (admin/palette.py): each role gets only what it may open, masked labels, hostile
text answered safely, a bounded number of statements, German words, and the dialog on every page."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from admin.palette import MAX_QUERY_LENGTH, RECORDS_PER_MODEL
from admin.views.store import CustomerAdmin
from backend.models import Customer, Permission
from tests.admin.conftest import Apps, ClientFactory
from tests.admin.test_store_views import counting_statements
from tests.factories import make_customer, make_order, make_product, make_role, make_user, unique

# Not numbers an id parser may take, and text a search must take as text.
ODD_TEXT = ("²²", "١٢", "𝟗𝟗", "99999999999999999999999", "#-1", "#0", "1e400", "' OR 1=1 --", "\u202e\u202e")
MODEL_TABLES = re.compile(r'\bFROM "?(product|category|tag|customer|order|order_item|user|role)"?(?:\s|$)')


async def every_permission(session: AsyncSession) -> str:
    """A role holding every permission: a superuser's reach, signed in with a password alone."""
    codenames = list((await session.execute(select(Permission.codename))).scalars())
    role = await make_role(session, permissions=codenames)
    await session.commit()
    return role.name


async def ask(client: httpx.AsyncClient, query: str | None = None) -> dict[str, Any]:
    response = await client.get("/admin/palette", params={} if query is None else {"q": query})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    answer: dict[str, Any] = response.json()
    return answer


def labels(items: list[dict[str, str]]) -> set[str]:
    return {item["label"] for item in items}


# What each role is offered -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("role", "offered", "withheld"),
    [
        ("editor", {"Products", "Customers", "New Product", "New Tag", "My account"}, {"Users", "New Order"}),
        ("viewer", {"Products", "Orders", "Dashboard"}, {"Users", "Trash", "New Product", "New Tag"}),
        ("manager", {"Orders", "Trash", "New Order", "New Customer"}, {"Users", "Roles", "Audit log"}),
        ("auditor", {"Users", "Roles", "Trash", "Audit log", "My jobs"}, {"New Product", "New User"}),
        (None, {"Users", "Roles", "New User", "New Role", "Audit log", "Trash"}, set()),
    ],
)
async def test_each_role_is_offered_exactly_the_pages_it_may_open(
    new_client: ClientFactory, session: AsyncSession, role: str | None, offered: set[str], withheld: set[str]
) -> None:
    client = await new_client(roles=[role or await every_permission(session)])
    entries = (await ask(client))["entries"]
    found = labels(entries)
    assert offered <= found, offered - found
    assert not withheld & found
    for entry in entries:  # a control that is shown works
        response = await client.get(entry["url"])
        assert response.status_code == 200, (entry, response.status_code)


async def test_a_user_without_permissions_is_offered_only_their_account(new_client: ClientFactory) -> None:
    client = await new_client()
    answer = await ask(client, "")
    assert [entry["label"] for entry in answer["entries"]] == ["My account"]
    assert (await ask(client, "product"))["records"] == []


async def test_a_manager_without_customer_create_rights_is_not_offered_a_form_that_shows_pii(
    new_client: ClientFactory, session: AsyncSession
) -> None:
    # The customer form shows email, phone and address: it opens only with customer.view_pii too.
    role = await make_role(session, permissions=["customer.view", "customer.add"])
    await session.commit()
    client = await new_client(roles=[role.name])
    found = labels((await ask(client))["entries"])
    assert "Customers" in found and "New Customer" not in found


async def test_entries_are_filtered_by_the_text(new_client: ClientFactory) -> None:
    client = await new_client(roles=["editor"])
    assert labels((await ask(client, "prod"))["entries"]) == {"Products", "New Product"}
    # The menu group counts too: "Sales" finds its pages.
    assert {"Orders", "Customers", "Order items"} <= labels((await ask(client, "sales"))["entries"])


# Records ------------------------------------------------------------------------------------------


async def test_records_come_from_the_models_the_user_may_list_and_open(
    new_client: ClientFactory, session: AsyncSession
) -> None:
    word = unique("Quokka")
    product = await make_product(session, sku=unique("QK-"), name=f"{word} lamp")
    await make_customer(session, name=f"{word} Jones")
    await make_user(session, username=word.lower())
    await session.commit()

    editor = await new_client(roles=["editor"])
    answer = await ask(editor, word)
    assert answer["searched"] is True
    assert {(r["group"], r["label"]) for r in answer["records"]} == {
        ("Products", f"{product.sku} {word} lamp"),
        ("Customers", f"{word} Jones"),
    }  # no user: editors may not list users
    for record in answer["records"]:
        assert (await editor.get(record["url"])).status_code == 200

    everything = await new_client(roles=[await every_permission(session)])
    assert ("Users", word.lower()) in {
        (r["group"], r["label"]) for r in (await ask(everything, word))["records"]
    }


async def test_a_number_finds_the_record_with_that_id(
    new_client: ClientFactory, session: AsyncSession
) -> None:
    order = await make_order(session)
    await session.commit()
    client = await new_client(roles=["manager"])
    for query in (f"#{order.id}", f"{order.id:06d}"):
        records = (await ask(client, query))["records"]
        orders = [
            (r["label"], r["url"].removeprefix("http://testserver"))
            for r in records
            if r["group"] == "Orders"
        ]
        assert orders == [(f"Order #{order.id}", f"/admin/order/details/{order.id}")], query


async def test_at_most_a_few_records_per_model_and_none_from_the_trash(
    new_client: ClientFactory, session: AsyncSession
) -> None:
    word = unique("Wombat")
    for index in range(RECORDS_PER_MODEL + 3):
        await make_product(session, name=f"{word} {index}")
    deleted = await make_product(session, name=f"{word} deleted", deleted_at=datetime.now(UTC))
    await session.commit()
    client = await new_client(roles=["viewer"])
    records = (await ask(client, word))["records"]
    assert len(records) == RECORDS_PER_MODEL
    assert all(r["group"] == "Products" for r in records)
    assert not any(r["url"].endswith(f"/details/{deleted.id}") for r in records)


async def test_too_short_a_text_searches_no_records(new_client: ClientFactory, session: AsyncSession) -> None:
    await make_product(session, name="X marks")
    await session.commit()
    client = await new_client(roles=["viewer"])
    for query in ("", "   ", "X", " X "):
        answer = await ask(client, query)
        assert answer["records"] == [] and answer["searched"] is False, query


# Personal data -------------------------------------------------------------------------------------


async def test_without_view_pii_a_customer_is_not_found_by_email(
    new_client: ClientFactory, session: AsyncSession
) -> None:
    customer = await make_customer(session, name=unique("Ottilie "), email="ottilie.hidden@example.org")
    await session.commit()
    editor = await new_client(roles=["editor"])
    assert (await ask(editor, "ottilie.hidden"))["records"] == []
    assert labels((await ask(editor, customer.name))["records"]) == {customer.name}


async def test_a_view_searching_personal_data_is_searched_by_id_only_for_who_may_not_see_it(
    make_app: Apps,
    clients: Any,
    session: AsyncSession,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Were a view ever to search a personal field, the palette would still not search it for a role
    # that may not see it (the list page is guarded by a test of every view: test_masking_views.py).
    monkeypatch.setattr(CustomerAdmin, "column_searchable_list", [Customer.name, Customer.email])
    app, _database = make_app()
    customer = await make_customer(session, email="erna.private@example.org")
    editor = await make_user(session, roles=["editor"])
    manager = await make_user(session, roles=["manager"])
    await session.commit()

    as_manager = await clients(app, manager)
    assert labels((await ask(as_manager, "erna.private"))["records"]) == {customer.name}
    as_editor = await clients(app, editor)
    assert (await ask(as_editor, "erna.private"))["records"] == []
    assert labels((await ask(as_editor, f"#{customer.id}"))["records"]) >= {customer.name}


@pytest.mark.usefixtures("customer_label_with_email")
async def test_labels_are_masked_for_a_role_without_view_pii(
    new_client: ClientFactory, session: AsyncSession
) -> None:
    customer = await make_customer(session, name=unique("Masked "), email="masked.person@example.org")
    await session.commit()
    editor = await new_client(roles=["editor"])
    response = await editor.get("/admin/palette", params={"q": customer.name})
    assert "masked.person" not in response.text
    assert labels(response.json()["records"]) == {f"customer {customer.id}"}
    manager = await new_client(roles=["manager"])
    assert labels((await ask(manager, customer.name))["records"]) == {
        f"{customer.name} <masked.person@example.org>"
    }


# Hostile text ---------------------------------------------------------------------------------------


async def test_hostile_text_is_answered_safely(new_client: ClientFactory, session: AsyncSession) -> None:
    plain = await make_product(session, name=unique("Plain "))
    literal = await make_product(session, name=unique("Odd_%name "))
    await session.commit()
    client = await new_client(roles=[await every_permission(session)])

    nul = await client.get("/admin/palette", params={"q": "ab\x00cd"})
    assert nul.status_code == 400

    marker = "Call-zq7x-to-unlock "
    long = await client.get("/admin/palette", params={"q": marker * (10_000 // len(marker) + 1)})
    assert long.status_code == 400
    assert "zq7x" not in long.text
    assert str(MAX_QUERY_LENGTH) in long.json()["error"]
    assert (await ask(client, "x" * MAX_QUERY_LENGTH))["records"] == []

    # LIKE's wildcards are text: "%" and "_" match themselves, not every row.
    for wildcard in ("%%", "__", "_%"):
        found = labels((await ask(client, wildcard))["records"])
        assert str(plain) not in found, wildcard
    assert labels((await ask(client, "d_%n"))["records"]) == {str(literal)}

    for odd in ODD_TEXT:
        assert (await ask(client, odd))["searched"] is True, odd


async def test_signed_out_the_palette_sends_to_sign_in(new_client: ClientFactory) -> None:
    client = await new_client(signed_in=False)
    response = await client.get("/admin/palette", params={"q": "product"})
    assert response.status_code in (302, 303)
    assert "/admin/login" in response.headers["location"]


# Bounded cost ----------------------------------------------------------------------------------------


async def _statements(client: httpx.AsyncClient, engine: AsyncEngine, query: str) -> list[str]:
    with counting_statements(engine) as statements:
        await ask(client, query)
    return [" ".join(statement.split()) for statement in statements]


async def test_one_limited_statement_per_model_whatever_the_rows(
    new_client: ClientFactory, session: AsyncSession, engine: AsyncEngine
) -> None:
    client = await new_client(roles=[await every_permission(session)])
    word = unique("Numbat")
    navigation_only = await _statements(client, engine, "")  # the session check, nothing of the palette's
    assert not [s for s in navigation_only if MODEL_TABLES.search(s) and "LIMIT" not in s.upper()]
    assert await _statements(client, engine, "N") == navigation_only  # too short: no record searched
    counts = []
    for more in (1, 20):
        for _ in range(more):
            await make_product(session, name=f"{word} product")
            await make_customer(session, name=f"{word} customer")
        await session.commit()
        statements = await _statements(client, engine, word)
        assert statements[: len(navigation_only)] == navigation_only
        searches = statements[len(navigation_only) :]
        tables = [match.group(1) for match in map(MODEL_TABLES.search, searches) if match]
        assert len(tables) == len(searches) and len(set(tables)) == len(tables), searches  # one per model
        assert {"product", "customer", "category", "tag", "user", "role"} <= set(tables)
        for statement in searches:
            assert re.search(r"\bLIMIT\b", statement, re.IGNORECASE), statement
            assert "count(" not in statement.lower(), statement
        counts.append(len(statements))
    assert counts[0] == counts[1]


# Language and page ----------------------------------------------------------------------------------


async def test_the_palette_speaks_german(new_client: ClientFactory) -> None:
    client = await new_client(roles=["editor"])
    client.headers["accept-language"] = "de"
    entries = (await ask(client))["entries"]
    assert {"Produkte", "Produkt anlegen", "Mein Konto", "Übersicht"} <= labels(entries)
    assert {"Seiten", "Neu"} == {entry["group"] for entry in entries}
    page = (await client.get("/admin/product/list")).text
    assert "Suchen und öffnen" in page and "Nichts gefunden." in page
    too_long = await client.get("/admin/palette", params={"q": "x" * (MAX_QUERY_LENGTH + 1)})
    assert too_long.json()["error"] == f"Geben Sie höchstens {MAX_QUERY_LENGTH} Zeichen ein."


async def test_every_signed_in_page_carries_the_dialog_and_its_script_by_src(
    new_client: ClientFactory,
) -> None:
    client = await new_client(roles=["viewer"])
    page = (await client.get("/admin/product/list")).text
    assert 'id="palette-open"' in page and 'role="dialog"' in page and 'role="listbox"' in page
    assert 'data-url="http://testserver/admin/palette?q="' in page
    assert re.search(r'<script src="[^"]+/statics/palette\.js" defer></script>', page)
    assert re.search(r"<script(?![^>]*\bsrc=)[^>]*>", page) is None  # no inline script: the CSP forbids it
    login = (await (await new_client(signed_in=False)).get("/admin/login")).text
    assert "palette" not in login
