"""Edit forms show the record as it is: saving one untouched changes nothing.

Every edit form of every model view, for records in every state (each enum
value, empty and multi-line text, relations set and unset, a related record
since moved to the trash), is opened and submitted exactly as a browser would
submit it (tests/admin/browser_forms.py): the row, its links and the audit
trail are unchanged, version included. The same for records made through the
create form. Then the optimistic lock: an edit without a valid version, or
from an old one, is a 409 that keeps what the user typed.
"""

from __future__ import annotations

import html
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

import httpx
import pytest
from sqladmin.forms import get_model_form
from sqlalchemy import Boolean, Integer, Text, func, select
from sqlalchemy import Enum as SAEnum
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from starlette.datastructures import FormData

from admin.forms import CustodianFormConverter, untouched_fields
from admin.views import model_views
from backend.db.columns import enum_column
from backend.models import AuditEntry, OrderItem, OrderStatus, Permission, Product, ProductStatus, Role
from tests.admin.browser_forms import as_post_data, submitted_form
from tests.admin.conftest import ClientFactory
from tests.factories import (
    make_category,
    make_customer,
    make_order,
    make_product,
    make_role,
    make_tag,
    make_user,
    unique,
)

BASE = "http://testserver"
MODELS = {view.identity: view.model for view in model_views()}  # type: ignore[attr-defined]  # set by SQLAdmin
Factory = Callable[[AsyncSession], Awaitable[int]]


async def _product(session: AsyncSession, **values: Any) -> int:
    return (await make_product(session, **values)).id


async def _product_with_tags(session: AsyncSession, *, deleted_tag: bool = False) -> int:
    tags = [await make_tag(session) for _ in range(2)]
    if deleted_tag:
        tags[0].deleted_at = datetime.now(UTC)
    product = await make_product(session, tags=tags, description="")
    return product.id


async def _child_category(session: AsyncSession) -> int:
    return (await make_category(session, parent_id=(await make_category(session)).id)).id


async def _order(session: AsyncSession, **values: Any) -> int:
    return (await make_order(session, **values)).id


async def _order_of_deleted_customer(session: AsyncSession) -> int:
    customer = await make_customer(session)
    order = await make_order(session, customer_id=customer.id, status=OrderStatus.PAID)
    customer.deleted_at = datetime.now(UTC)
    return order.id


async def _order_item(session: AsyncSession, *, status: OrderStatus) -> int:
    order = await make_order(session, status=status)
    item = (await session.execute(select(OrderItem).where(OrderItem.order_id == order.id))).scalar_one()
    return item.id


async def _user(session: AsyncSession, **values: Any) -> int:
    return (await make_user(session, **values)).id


async def _role(session: AsyncSession, **values: Any) -> int:
    return (await make_role(session, **values)).id


async def _builtin_role(session: AsyncSession) -> int:
    return int((await session.scalar(select(Role.id).where(Role.name == "auditor"))) or 0)


STATES: dict[str, tuple[str, Factory]] = {
    **{
        f"product {status.value}": ("product", lambda s, status=status: _product(s, status=status))
        for status in ProductStatus
    },
    "product multi-line description": (
        "product",
        lambda s: _product(s, description='first line\nsecond <line> & "quotes"\n\n  indented\n'),
    ),
    "product description starting with a line break": (
        "product",
        lambda s: _product(s, description="\nafter a blank line\r\nwith CR LF"),
    ),
    "product out of stock, price with cents": (
        "product",
        lambda s: _product(s, stock=0, price=Decimal("1234567.05")),
    ),
    "product with tags": ("product", _product_with_tags),
    "product with a tag in the trash": ("product", lambda s: _product_with_tags(s, deleted_tag=True)),
    "category without parent": ("category", lambda s: _category(s)),
    "category with parent": ("category", _child_category),
    "tag": ("tag", lambda s: _tag(s)),
    **{
        f"order {status.value}": ("order", lambda s, status=status: _order(s, status=status))
        for status in OrderStatus
    },
    "order without items": ("order", lambda s: _order(s, items=0, status=OrderStatus.PAID)),
    "order placed at an exact second": (
        "order",
        lambda s: _order(s, placed_at=datetime(2026, 1, 31, 9, 30, tzinfo=UTC)),
    ),
    "order of a customer in the trash": ("order", _order_of_deleted_customer),
    "item of an open order": ("order-item", lambda s: _order_item(s, status=OrderStatus.PENDING)),
    "item of a shipped order": ("order-item", lambda s: _order_item(s, status=OrderStatus.SHIPPED)),
    "customer with everything": ("customer", lambda s: _customer(s, address="1 Road\nTown\nPostcode")),
    "customer without phone or address": ("customer", lambda s: _customer(s, phone="", address="")),
    "user with roles": ("user", lambda s: _user(s, roles=["editor", "viewer"])),
    "user without roles or email": ("user", lambda s: _user(s, email="")),
    "user inactive": ("user", lambda s: _user(s, is_active=False, roles=["auditor"])),
    "superuser": ("user", lambda s: _user(s, is_superuser=True)),
    "built-in role": ("role", _builtin_role),
    "role without permissions": ("role", lambda s: _role(s, description="")),
    "role with permissions": (
        "role",
        lambda s: _role(s, permissions=["product.view", "tag.view"], description="Two\nlines"),
    ),
}


async def _category(session: AsyncSession) -> int:
    return (await make_category(session)).id


async def _tag(session: AsyncSession) -> int:
    return (await make_tag(session)).id


async def _customer(session: AsyncSession, **values: Any) -> int:
    return (await make_customer(session, **values)).id


async def _snapshot(session: AsyncSession, identity: str, pk: int) -> dict[str, Any]:
    """The row (every column), its many-to-many links and its audit entries, read afresh."""
    model = MODELS[identity]
    table = model.__table__
    row = (await session.execute(select(table).where(table.c.id == pk))).mappings().one()
    links: dict[str, list[int]] = {}
    for relationship in model.__mapper__.relationships:
        if relationship.secondary is not None:
            secondary = relationship.secondary
            local = next(c for c in secondary.c if c.references(table.c.id))
            remote = next(c for c in secondary.c if c is not local)
            stmt = select(remote).where(local == pk).order_by(remote)
            links[relationship.key] = list((await session.execute(stmt)).scalars())
    entries = await session.scalar(
        select(func.count()).where(AuditEntry.model == table.name, AuditEntry.object_id == str(pk))
    )
    return {"row": dict(row), "links": links, "audit entries": entries}


async def _save_untouched(client: httpx.AsyncClient, identity: str, pk: int) -> httpx.Response:
    path = f"/admin/{identity}/edit/{pk}"
    page = await client.get(path)
    assert page.status_code == 200, page.text
    return await client.post(path, data=as_post_data(submitted_form(page.text, BASE + path)))


@pytest.mark.parametrize("state", list(STATES))
async def test_saving_an_untouched_edit_form_changes_nothing(
    new_client: ClientFactory, session: AsyncSession, state: str
) -> None:
    identity, factory = STATES[state]
    client = await new_client(superuser=True)
    pk = await factory(session)
    await session.commit()
    before = await _snapshot(session, identity, pk)

    response = await _save_untouched(client, identity, pk)

    assert response.status_code == 302, html.unescape(response.text)
    assert await _snapshot(session, identity, pk) == before


def test_every_editable_view_has_a_state_here() -> None:
    editable = {view.identity for view in model_views() if view.can_edit}  # type: ignore[attr-defined]
    assert editable == {identity for identity, _ in STATES.values()}


# Create, then save the edit form untouched ----------------------------------


async def _create_values(session: AsyncSession, identity: str) -> dict[str, str]:
    """What a user types into the create form's required fields."""
    if identity == "product":
        category = await make_category(session)
        tag = await make_tag(session)
        return {
            "sku": unique("NEW-"),
            "name": "New product",
            "description": "Line one\r\nLine two",
            "price": "12.30",
            "category": str(category.id),
            "tags": str(tag.id),
            "status": "archived",
        }
    if identity == "category":
        parent = await make_category(session)
        return {"name": "New category", "slug": unique("new-cat-"), "parent": str(parent.id)}
    if identity == "tag":
        return {"name": unique("new tag ")}
    if identity == "order":
        customer = await make_customer(session)
        return {"customer": str(customer.id), "status": "paid", "placed_at": "2026-03-04 05:06:07"}
    if identity == "order-item":
        order = await make_order(session, items=0)
        product = await make_product(session)
        return {"order": str(order.id), "product": str(product.id), "quantity": "2"}
    if identity == "customer":
        return {"name": "New customer", "email": f"{unique('new')}@example.com", "address": "Here\r\nThere"}
    if identity == "user":
        password = "a-long-enough-password-for-new-users"
        return {
            "username": unique("newuser"),
            "password": password,
            "password_confirm": password,
            "roles": "viewer",
        }
    if identity == "role":
        return {"name": unique("newrole"), "description": "Made\r\nhere", "permissions": "tag.view"}
    raise AssertionError(f"no create values for {identity}")


@pytest.mark.parametrize("identity", [view.identity for view in model_views() if view.can_create])  # type: ignore[attr-defined]
async def test_created_records_save_untouched_unchanged(
    new_client: ClientFactory, session: AsyncSession, identity: str
) -> None:
    client = await new_client(superuser=True)
    typed = await _create_values(session, identity)
    await session.commit()
    path = f"/admin/{identity}/create"
    page = await client.get(path)
    assert page.status_code == 200
    data = as_post_data(submitted_form(page.text, BASE + path))
    data.update({name: [value] for name, value in typed.items()})
    model = MODELS[identity]
    newest_before = await session.scalar(select(func.max(model.id)))

    created = await client.post(path, data=data)

    assert created.status_code == 302, html.unescape(created.text)
    pk = await session.scalar(select(func.max(model.id)))
    assert pk is not None and pk != newest_before
    before = await _snapshot(session, identity, pk)
    response = await _save_untouched(client, identity, pk)
    assert response.status_code == 302, html.unescape(response.text)
    assert await _snapshot(session, identity, pk) == before


# The status select: the regression of finding 0 --------------------------------


async def test_edit_forms_select_the_current_status(new_client: ClientFactory, session: AsyncSession) -> None:
    client = await new_client(superuser=True)
    product = await make_product(session, status=ProductStatus.ARCHIVED)
    order = await make_order(session, status=OrderStatus.PAID)
    await session.commit()
    product_page = await client.get(f"/admin/product/edit/{product.id}")
    order_page = await client.get(f"/admin/order/edit/{order.id}")
    assert '<option selected value="archived">' in product_page.text
    assert '<option selected value="paid">' in order_page.text


# Optimistic locking --------------------------------------------------------------


async def _product_form(client: httpx.AsyncClient, product: Product) -> dict[str, list[str]]:
    path = f"/admin/product/edit/{product.id}"
    page = await client.get(path)
    return as_post_data(submitted_form(page.text, BASE + path))


@pytest.mark.parametrize(
    "version", [None, "", "-1", "0", "abc", "²", "1.0", " 1", "99999999999999999999999", "2147483648"]
)
async def test_an_edit_without_a_valid_version_is_a_conflict_that_keeps_the_input(
    new_client: ClientFactory, session: AsyncSession, version: str | None
) -> None:
    client = await new_client(superuser=True)
    product = await make_product(session, name="Stored name")
    await session.commit()
    before = await _snapshot(session, "product", product.id)
    form = await _product_form(client, product)
    form["name"] = ["Typed name"]
    if version is None:
        del form["_version"]
    else:
        form["_version"] = [version]

    response = await client.post(f"/admin/product/edit/{product.id}", data=form)

    assert response.status_code == 409, response.text
    page = html.unescape(response.text)
    assert 'value="Typed name"' in page
    assert "does not say which version of the product it was opened at" in page
    assert await _snapshot(session, "product", product.id) == before


async def test_an_edit_from_an_old_version_is_a_conflict_that_keeps_the_input(
    new_client: ClientFactory, session: AsyncSession
) -> None:
    first, second = await new_client(superuser=True), await new_client(superuser=True)
    product = await make_product(session, name="Stored name")
    await session.commit()
    first_form = await _product_form(first, product)
    second_form = await _product_form(second, product)
    first_form["name"] = ["First"]
    assert (await first.post(f"/admin/product/edit/{product.id}", data=first_form)).status_code == 302
    after_first = await _snapshot(session, "product", product.id)

    second_form["name"] = ["Second"]
    response = await second.post(f"/admin/product/edit/{product.id}", data=second_form)

    assert response.status_code == 409
    page = html.unescape(response.text)
    assert 'value="Second"' in page and "since you opened it" in page
    # The re-shown form still carries the old version: saving it again is refused again.
    again = as_post_data(submitted_form(response.text, f"{BASE}/admin/product/edit/{product.id}"))
    assert again["_version"] == second_form["_version"]
    assert (await second.post(f"/admin/product/edit/{product.id}", data=again)).status_code == 409
    assert await _snapshot(session, "product", product.id) == after_first


async def _link_change(session: AsyncSession, identity: str) -> tuple[int, str, str, int]:
    """A record, and a change to its many-to-many links only: (id, field, submitted value, linked id)."""
    if identity == "product":
        product, tag = await make_product(session), await make_tag(session)
        return product.id, "tags", str(tag.id), tag.id
    if identity == "user":
        user = await make_user(session, roles=["viewer"])
        editor = await session.scalar(select(Role.id).where(Role.name == "editor"))
        return user.id, "roles", "editor", int(editor or 0)
    role = await make_role(session, permissions=["tag.view"])
    permission = await session.scalar(select(Permission.id).where(Permission.codename == "tag.add"))
    return role.id, "permissions", "tag.add", int(permission or 0)


@pytest.mark.parametrize("identity", ["product", "user", "role"])
async def test_a_save_that_changes_only_links_moves_the_version_on(
    new_client: ClientFactory, session: AsyncSession, identity: str
) -> None:
    """Tags, roles, permissions live in link tables: changing only them is versioned like any change."""
    client = await new_client(superuser=True)
    pk, name, value, linked = await _link_change(session, identity)
    await session.commit()
    before = await _snapshot(session, identity, pk)
    path = f"/admin/{identity}/edit/{pk}"
    form = as_post_data(submitted_form((await client.get(path)).text, BASE + path))
    form[name] = [value]

    assert (await client.post(path, data=form)).status_code == 302
    after = await _snapshot(session, identity, pk)
    assert after["links"] == {name: [linked]}
    assert after["row"]["version"] == before["row"]["version"] + 1
    # The form opened before that save is now stale, though its columns still match.
    assert (await client.post(path, data=form)).status_code == 409


async def test_audit_trail_of_an_edit_shows_only_the_change(
    new_client: ClientFactory, session: AsyncSession
) -> None:
    client = await new_client(superuser=True)
    order = await make_order(session, status=OrderStatus.PAID)
    await session.commit()
    path = f"/admin/order/edit/{order.id}"
    form = as_post_data(submitted_form((await client.get(path)).text, BASE + path))
    form["status"] = ["shipped"]
    assert (await client.post(path, data=form)).status_code == 302
    entry = (
        await session.execute(
            select(AuditEntry)
            .where(AuditEntry.model == "order", AuditEntry.object_id == str(order.id))
            .order_by(AuditEntry.id.desc())
            .limit(1)
        )
    ).scalar_one()
    # placed_at is shown to the second but stored to the microsecond: it is not in the diff.
    assert entry.action == "update" and entry.changes == {"status": ["paid", "shipped"]}


# Every field kind, beyond the ones today's models use --------------------------


class _Colour(StrEnum):
    RED = "red"
    DARK_BLUE = "dark blue"


class _Base(DeclarativeBase):
    pass


class _Gadget(_Base):
    """Column kinds the converter must show as stored: never written to a database."""

    __tablename__ = "gadget"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    colour: Mapped[_Colour | None] = mapped_column(enum_column(_Colour, "colour"), nullable=True)
    colour_by_name: Mapped[_Colour] = mapped_column(SAEnum(_Colour, name="colour_by_name"))
    flag: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    notes: Mapped[str] = mapped_column(Text)


@pytest.mark.parametrize(
    "values",
    [
        {"colour": _Colour.DARK_BLUE, "colour_by_name": _Colour.DARK_BLUE, "flag": False, "notes": "\nx\n y"},
        {"colour": None, "colour_by_name": _Colour.RED, "flag": None, "notes": "plain"},
        {"colour": _Colour.RED, "colour_by_name": _Colour.RED, "flag": True, "notes": "a\r\nb"},
    ],
)
async def test_every_field_kind_comes_back_as_it_was_shown(values: dict[str, Any]) -> None:
    form_class = await get_model_form(
        model=_Gadget,
        session_maker=None,  # type: ignore[arg-type]  # only relationships query, and there are none
        only=list(values),
        form_converter=CustodianFormConverter,
    )
    shown = form_class(data=values)
    fields = "".join(str(field()) for field in shown)
    page = f'<form action="/save">{fields}<input type="submit" name="s"></form>'
    sent = FormData([pair for pair in submitted_form(page, "/save") if pair[0] != "s"])

    submitted = form_class(sent)

    assert submitted.validate(), submitted.errors
    # Enums come back as the text their column stores: the value, or the name for a plain Enum().
    assert submitted.colour.data == (values["colour"].value if values["colour"] else None)
    assert submitted.colour_by_name.data == values["colour_by_name"].name
    assert submitted.flag.data is values["flag"]
    # Text comes back with its line breaks rewritten by the browser, so it counts as untouched.
    assert untouched_fields(submitted, shown) == {"notes"}
