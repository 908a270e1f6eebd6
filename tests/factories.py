"""Factories: rows with unique values from a counter; parents made when not given."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from backend.auth.passwords import PasswordHasher
from backend.models import (
    Category,
    Customer,
    Order,
    OrderItem,
    OrderStatus,
    Product,
    ProductStatus,
    Role,
    Tag,
    User,
)

_counter = itertools.count(1)
DEFAULT_PASSWORD = "a-long-enough-password-42"
_hasher = PasswordHasher(memory_kib=1024, time_cost=1)


def unique(prefix: str) -> str:
    return f"{prefix}{next(_counter)}"


async def make_user(
    session: AsyncSession,
    *,
    roles: Sequence[str] = (),
    password: str | None = None,
    **overrides: Any,
) -> User:
    """A live, active user with the given built-in roles (setup only: bypasses the services)."""
    username = overrides.pop("username", None) or unique("user")
    role_rows = []
    if roles:
        role_rows = list((await session.execute(select(Role).where(Role.name.in_(roles)))).scalars())
        assert len(role_rows) == len(set(roles)), f"unknown roles in {roles}"
    user = User(
        username=username,
        email=overrides.pop("email", f"{username}@example.com"),
        password_hash=_hasher.hash(password or DEFAULT_PASSWORD) if password is not False else "",
        roles=role_rows,
        **overrides,
    )
    session.add(user)
    await session.flush()
    return user


async def make_role(session: AsyncSession, *, permissions: Sequence[str] = (), **overrides: Any) -> Role:
    from backend.models import Permission

    found = []
    if permissions:
        found = list(
            (await session.execute(select(Permission).where(Permission.codename.in_(permissions)))).scalars()
        )
        assert len(found) == len(set(permissions)), f"unknown permissions in {permissions}"
    role = Role(name=overrides.pop("name", None) or unique("role"), permissions=found, **overrides)
    session.add(role)
    await session.flush()
    return role


async def make_category(session: AsyncSession, **overrides: Any) -> Category:
    name = overrides.pop("name", None) or unique("Category ")
    category = Category(name=name, slug=overrides.pop("slug", None) or unique("cat-"), **overrides)
    session.add(category)
    await session.flush()
    return category


async def make_tag(session: AsyncSession, **overrides: Any) -> Tag:
    tag = Tag(name=overrides.pop("name", None) or unique("tag"), **overrides)
    session.add(tag)
    await session.flush()
    return tag


async def make_product(session: AsyncSession, **overrides: Any) -> Product:
    if "category_id" not in overrides:
        overrides["category_id"] = (await make_category(session)).id
    values: dict[str, Any] = {
        "sku": unique("SKU-"),
        "name": unique("Product "),
        "price": Decimal("9.99"),
        "stock": 10,
        "status": ProductStatus.ACTIVE,
        **overrides,
    }
    product = Product(**values)
    session.add(product)
    await session.flush()
    return product


async def make_customer(session: AsyncSession, **overrides: Any) -> Customer:
    name = overrides.pop("name", None) or unique("Customer ")
    values: dict[str, Any] = {
        "email": f"{unique('customer')}@example.com",
        "phone": "+44 20 7946 0000",
        "address": "1 Test Street",
        **overrides,
    }
    customer = Customer(name=name, **values)
    session.add(customer)
    await session.flush()
    return customer


async def make_order(session: AsyncSession, *, items: int = 1, **overrides: Any) -> Order:
    """An order with `items` lines (each a new product at 9.99) and a matching total."""
    if "customer_id" not in overrides:
        overrides["customer_id"] = (await make_customer(session)).id
    order = Order(status=overrides.pop("status", OrderStatus.PENDING), total=Decimal("0.00"), **overrides)
    session.add(order)
    await session.flush()
    for _ in range(items):
        product = await make_product(session)
        session.add(OrderItem(order_id=order.id, product_id=product.id, quantity=1, unit_price=product.price))
        order.total += product.price
    await session.flush()
    return order
