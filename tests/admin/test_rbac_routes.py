"""Every admin route of every model view, for every built-in role and anonymous.

The expected status comes from the role's permissions in the database, so
this walk stays right as models and views are added: a route is allowed
exactly when the user holds the codename it maps to.
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.applications import Starlette

from admin.authorization import CustodianAuthorization
from admin.views.base import ServiceModelView
from backend.auth.permissions import BUILTIN_ROLES
from backend.models import OrderItem, Permission, Role, User, role_permission
from tests.admin.conftest import ClientFactory, page_token
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

ROLES = [*sorted(BUILTIN_ROLES), "superuser", "no-role", "anonymous"]


@dataclass(frozen=True)
class Call:
    name: str
    method: str
    path: str
    permission: str | None  # the action needed; None: refused to everyone
    allowed_status: int
    data: dict[str, str] | None = None


async def case_for(identity: str, session: AsyncSession) -> tuple[int, dict[str, str], dict[str, str]]:
    """A target row, valid create form data and valid edit form data for a view."""
    name = unique("walk")
    if identity == "user":
        target = await make_user(session)
        create = {
            "username": name,
            "password": "walk-password-123",
            "password_confirm": "walk-password-123",
            "is_active": "y",
        }
        return target.id, create, {"email": "walked@example.com", "is_active": "y"}
    if identity == "role":
        return (
            (await make_role(session)).id,
            {"name": name},
            {"name": unique("walked"), "description": "walked"},
        )
    if identity == "category":
        target = await make_category(session)
        return target.id, {"name": name, "slug": name}, {"name": "Walked", "slug": unique("walked")}
    if identity == "tag":
        return (await make_tag(session)).id, {"name": name}, {"name": unique("walked")}
    if identity == "product":
        target = await make_product(session)
        form = {
            "sku": name,
            "name": "Walked",
            "price": "9.99",
            "stock": "3",
            "status": "active",
            "category": str(target.category_id),
        }
        return target.id, form, {**form, "sku": unique("walked")}
    if identity == "customer":
        target = await make_customer(session)
        form = {"name": "Walked", "email": f"{name}@example.com", "phone": "", "address": ""}
        return target.id, form, {**form, "email": f"{unique('walked')}@example.com"}
    if identity == "order":
        target = await make_order(session)
        form = {"customer": str(target.customer_id), "status": "pending", "placed_at": "2026-01-02 03:04:05"}
        return target.id, form, form
    if identity == "order-item":
        order = await make_order(session)
        product = await make_product(session)
        item_id = (
            await session.execute(select(OrderItem.id).where(OrderItem.order_id == order.id))
        ).scalar_one()
        return (
            item_id,
            {"order": str(order.id), "product": str(product.id), "quantity": "1"},
            {"quantity": "2"},
        )
    raise AssertionError(f"no walk case for the {identity} view: add one")


def calls_for(
    identity: str, target_id: int, create: dict[str, str], edit: dict[str, str], *, can_delete: bool
) -> list[Call]:
    calls = [
        Call("list", "GET", f"/admin/{identity}/list", "view", 200),
        Call("details", "GET", f"/admin/{identity}/details/{target_id}", "view", 200),
        Call("create form", "GET", f"/admin/{identity}/create", "add", 200),
        Call("edit form", "GET", f"/admin/{identity}/edit/{target_id}", "change", 200),
        Call("export", "GET", f"/admin/{identity}/export/csv", "export", 200),
        Call("create", "POST", f"/admin/{identity}/create", "add", 302, {**create, "save": "Save"}),
        Call("edit", "POST", f"/admin/{identity}/edit/{target_id}", "change", 302, {**edit, "save": "Save"}),
    ]
    if identity == "user":
        calls += [
            Call("set password form", "GET", f"/admin/user/set-password/{target_id}", "change", 200),
            Call(
                "set password",
                "POST",
                f"/admin/user/set-password/{target_id}",
                "change",
                302,
                {"password": "walk-new-password-1", "password_confirm": "walk-new-password-1"},
            ),
        ]
    # Last: it removes the target from view.
    calls.append(
        Call(
            "delete",
            "DELETE",
            f"/admin/{identity}/delete?pks={target_id}",
            "delete" if can_delete else None,
            200,
        )
    )
    return calls


# Views whose form shows personal data need this too, for create and edit.
EXTRA_REQUIREMENTS = {("customer", "add"): "customer.view_pii", ("customer", "change"): "customer.view_pii"}


def _error_text(response: httpx.Response) -> str:
    import re

    found = re.findall(r'(?:alert-danger" role="alert">|invalid-feedback">)\s*([^<]+)', response.text)
    return "; ".join(f.strip() for f in found)[:300]


async def _permissions_of(session: AsyncSession, role: str) -> set[str]:
    if role in ("anonymous", "no-role"):
        return set()
    stmt = (
        select(Permission.codename)
        .join(role_permission, role_permission.c.permission_id == Permission.id)
        .join(Role, Role.id == role_permission.c.role_id)
        .where(Role.name == role)
    )
    return set((await session.execute(stmt)).scalars())


async def _snapshot(session: AsyncSession) -> tuple[object, ...]:
    users = (await session.execute(select(User.id, User.email, User.password_hash, User.deleted_at))).all()
    roles = (await session.execute(select(Role.id, Role.name, Role.description))).all()
    return tuple(sorted(users)), tuple(sorted(roles))


@pytest.mark.parametrize("role", ROLES)
async def test_every_route_answers_by_permission(
    role: str, app: Starlette, new_client: ClientFactory, session: AsyncSession
) -> None:
    if role == "anonymous":
        client = await new_client(signed_in=False)
    elif role == "superuser":
        client = await new_client(superuser=True)
    else:
        client = await new_client(roles=[] if role == "no-role" else [role])
    held = await _permissions_of(session, role)
    authorization: CustodianAuthorization = app.state.admin.authorization_backend
    token = await page_token(client, "/admin/login") if role == "anonymous" else await page_token(client)

    mismatches = []
    views = [v for v in app.state.admin.views if isinstance(v, ServiceModelView)]
    assert {v.identity for v in views} >= {"user", "role", "product", "order", "customer"}
    for view in views:
        table = str(view.model.__tablename__)
        target_id, create, edit = await case_for(view.identity, session)
        await session.commit()
        # An edit says which version it was made on (see tests/admin/test_edit_forms.py).
        version = await session.scalar(select(view.model.version).where(view.model.id == target_id))
        edit = {**edit, "_version": str(version)}
        for call in calls_for(view.identity, target_id, create, edit, can_delete=view.can_delete):
            extra = EXTRA_REQUIREMENTS.get((view.identity, call.permission or ""))
            allowed = call.permission is not None and (
                role == "superuser"
                or (f"{table}.{call.permission}" in held and (extra is None or extra in held))
            )
            expected = 302 if role == "anonymous" else (call.allowed_status if allowed else 403)
            before = await _snapshot(session)
            response = await client.request(
                call.method, call.path, data=call.data, headers={"X-CSRF-Token": token}
            )
            if response.status_code != expected:
                mismatches.append(
                    f"{role}: {call.method} {call.path} ({call.name}) -> {response.status_code}, "
                    f"expected {expected}: {_error_text(response)}"
                )
            if not allowed or role == "anonymous":
                session.expire_all()
                if await _snapshot(session) != before:
                    mismatches.append(f"{role}: {call.method} {call.path} changed data while refused")
            elif call.method != "GET":
                # Put the target back for the next call (it may have been deleted).
                session.expire_all()
        # Permission mapping sanity: every call maps to a codename the backend knows.
        assert authorization.codename_for(view.identity, "list") == f"{table}.view"
    assert not mismatches, "\n".join(mismatches)


@pytest.mark.parametrize("role", [*sorted(BUILTIN_ROLES), "no-role"])
async def test_index_shows_no_access_without_any_permission(
    role: str, app: Starlette, new_client: ClientFactory, session: AsyncSession
) -> None:
    client = await new_client(roles=[] if role == "no-role" else [role])
    held = await _permissions_of(session, role)
    authorization: CustodianAuthorization = app.state.admin.authorization_backend
    viewable = {authorization.codename_for(view.identity, "list") for view in app.state.admin.views}
    response = await client.get("/admin/")
    if held & viewable:
        assert response.status_code == 200
        assert 'id="no-access"' not in response.text
    else:
        assert response.status_code == 403
        assert 'id="no-access"' in response.text


async def test_menu_and_buttons_follow_permissions(new_client: ClientFactory, session: AsyncSession) -> None:
    auditor = await new_client(roles=["auditor"])
    target = await make_user(session)
    await session.commit()
    listing = await auditor.get("/admin/user/list")
    assert listing.status_code == 200
    assert "/admin/user/create" not in listing.text  # no "New" button
    assert "/admin/role/list" in listing.text  # the menu shows what the auditor may view
    details = await auditor.get(f"/admin/user/details/{target.id}")
    assert f"/admin/user/edit/{target.id}" not in details.text
    assert 'data-bs-target="#modal-delete"' not in details.text
    assert "set-password" not in details.text

    superuser = await new_client(superuser=True)
    listing = await superuser.get("/admin/user/list")
    assert "/admin/user/create" in listing.text
    details = await superuser.get(f"/admin/user/details/{target.id}")
    assert f"/admin/user/edit/{target.id}" in details.text and "set-password" in details.text


async def test_hidden_rows_cannot_be_deleted(new_client: ClientFactory, session: AsyncSession) -> None:
    """SQLAdmin's delete loaded rows without the view's scoping; ours does not."""
    client = await new_client(superuser=True)
    hidden = await make_user(session)
    hidden.deleted_at = func.now()
    await session.commit()
    token = await page_token(client)
    assert (await client.get(f"/admin/user/details/{hidden.id}")).status_code == 404
    response = await client.delete(f"/admin/user/delete?pks={hidden.id}", headers={"X-CSRF-Token": token})
    assert response.status_code == 404


async def test_password_hash_is_never_shown(new_client: ClientFactory, session: AsyncSession) -> None:
    client = await new_client(superuser=True)
    target = await make_user(session)
    await session.commit()
    for path in (
        "/admin/user/list",
        f"/admin/user/details/{target.id}",
        f"/admin/user/edit/{target.id}",
        "/admin/user/export/csv",
    ):
        body = (await client.get(path)).text
        assert "argon2" not in body and "password_hash" not in body.lower().replace(" ", "_"), path
