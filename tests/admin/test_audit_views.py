"""Trash, audit log and history pages over HTTP, as the roles that use them."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import UTC, datetime
from urllib.parse import parse_qs, urlencode, urlsplit

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from backend.auth.actor import Actor
from backend.db.session import Database
from backend.db.uow import unit_of_work
from backend.models import AuditEntry, Order, OrderItem, Product
from backend.services.catalog import ProductService
from backend.services.orders import OrderService
from tests.admin.conftest import ClientFactory, csrf_from, page_token, sign_in
from tests.factories import make_category, make_customer, make_order, make_product, make_role, make_user


async def _delete(client, path: str) -> int:  # type: ignore[no-untyped-def]
    response = await client.delete(path, headers={"X-CSRF-Token": await page_token(client)})
    return int(response.status_code)


async def test_manager_deletes_an_order_and_restores_it_from_the_trash(
    new_client: ClientFactory, session: AsyncSession
) -> None:
    manager = await new_client(roles=["manager"])
    order = await make_order(session, items=2)
    await session.commit()
    assert await _delete(manager, f"/admin/order/delete?pks={order.id}") == 200
    assert f"/admin/order/details/{order.id}" not in (await manager.get("/admin/order/list")).text

    trash = await manager.get("/admin/trash?model=order")
    assert trash.status_code == 200
    assert f'data-model="order" data-pk="{order.id}"' in trash.text
    assert manager.username in trash.text  # type: ignore[attr-defined]  # who deleted it
    restored = await manager.post(
        f"/admin/trash/order/{order.id}/restore", data={"csrf_token": csrf_from(trash.text)}
    )
    assert restored.status_code == 303 and "message" not in restored.headers["location"]
    next_page = (await manager.get(restored.headers["location"])).text
    assert f"Order {order.id} was restored." in next_page  # flashed through the session
    assert (await manager.get(f"/admin/order/details/{order.id}")).status_code == 200
    page = (await manager.get(f"/admin/order/details/{order.id}")).text
    assert page.count('class="order-item"') == 2  # its items came back with it
    assert "purge-button" not in trash.text  # a manager may not purge


async def test_auditor_answers_who_deleted_an_order_and_what_it_contained(
    new_client: ClientFactory, session: AsyncSession
) -> None:
    manager, auditor = await new_client(roles=["manager"]), await new_client(roles=["auditor"])
    customer = await make_customer(session)
    product = await make_product(session, stock=5)
    await session.commit()
    form = await manager.get("/admin/order/create")
    created = await manager.post(
        "/admin/order/create",
        data={
            "customer": str(customer.id),
            "status": "pending",
            "csrf_token": csrf_from(form.text),
            "save": "Save",
        },
    )
    assert created.status_code == 302, created.text
    order = (await session.execute(select(Order).where(Order.customer_id == customer.id))).scalar_one()
    item_form = await manager.get("/admin/order-item/create")
    added = await manager.post(
        "/admin/order-item/create",
        data={
            "order": str(order.id),
            "product": str(product.id),
            "quantity": "2",
            "csrf_token": csrf_from(item_form.text),
            "save": "Save",
        },
    )
    assert added.status_code == 302, added.text
    assert await _delete(manager, f"/admin/order/delete?pks={order.id}") == 200

    trash = await auditor.get("/admin/trash")
    assert trash.status_code == 200 and f'data-pk="{order.id}"' in trash.text
    assert "restore-button" not in trash.text  # auditors review; they do not write
    history = await auditor.get(f"/admin/history/order/{order.id}")
    assert history.status_code == 200
    assert "history-delete" in history.text and manager.username in history.text  # type: ignore[attr-defined]
    # What it contained: the items' entries are part of the order's history.
    assert f"Order #{order.id}: 2 x product {product.id}" in history.text
    assert "unit_price" in history.text and "quantity" in history.text


async def test_history_link_on_details_pages(new_client: ClientFactory, session: AsyncSession) -> None:
    client = await new_client(roles=["viewer"])
    product = await make_product(session)
    await session.commit()
    page = await client.get(f"/admin/product/details/{product.id}")
    assert f'href="http://testserver/admin/history/product/{product.id}"' in page.text


async def test_audit_log_search_paging_and_permissions(
    new_client: ClientFactory, session: AsyncSession
) -> None:
    auditor, editor = await new_client(roles=["auditor"]), await new_client(roles=["editor"])
    token = await page_token(editor)
    category = await make_product(session)
    await session.commit()
    for n in range(55):
        form = {
            "sku": f"LOG-{n}",
            "name": f"Logged {n}",
            "price": "1.00",
            "stock": "1",
            "status": "draft",
            "category": str(category.category_id),
            "csrf_token": token,
            "save": "Save",
        }
        assert (await editor.post("/admin/product/create", data=form)).status_code == 302
    first = await auditor.get(f"/admin/audit-log?actor={editor.username}&model=product")  # type: ignore[attr-defined]
    assert first.status_code == 200 and first.text.count('class="audit-row"') == 50
    assert 'id="audit-older"' in first.text
    older_link = first.text.split('id="audit-older" href="')[1].split('"')[0].replace("&amp;", "&")
    second = await auditor.get(older_link)
    assert second.text.count('class="audit-row"') == 5
    assert (await auditor.get("/admin/audit-log?since=not-a-date")).status_code == 400
    assert (await auditor.get("/admin/audit-log?action=explode")).status_code == 400
    assert (await auditor.get("/admin/audit-log?before=abc")).status_code == 400
    assert (await editor.get("/admin/audit-log")).status_code == 403
    viewer = await new_client(roles=["viewer"])
    assert (await viewer.get("/admin/audit-log/export")).status_code == 403
    assert (await viewer.get("/admin/trash")).status_code == 403


async def test_audit_log_csv_export(new_client: ClientFactory, session: AsyncSession) -> None:
    auditor = await new_client(roles=["auditor"])
    editor = await new_client(roles=["editor"])
    product = await make_product(session)
    await session.commit()
    edit = await editor.get(f"/admin/product/edit/{product.id}")
    saved = await editor.post(
        f"/admin/product/edit/{product.id}",
        data={
            "sku": product.sku,
            "name": "=cmd()",
            "price": "2.00",
            "stock": "1",
            "status": "active",
            "category": str(product.category_id),
            "_version": str(product.version),
            "csrf_token": csrf_from(edit.text),
            "save": "Save",
        },
    )
    assert saved.status_code == 302, saved.text
    async with auditor.stream(
        "GET", f"/admin/audit-log/export?model=product&object_id={product.id}"
    ) as response:
        assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
        body = "".join([chunk async for chunk in response.aiter_text()])
    (row,) = list(csv.DictReader(io.StringIO(body)))
    assert row["action"] == "update" and row["actor_name"] == editor.username  # type: ignore[attr-defined]
    assert json.loads(row["changes"])["name"][1] == "=cmd()"  # inside JSON, so not a formula cell


async def test_purge_from_the_trash_needs_purge_permission(
    new_client: ClientFactory, session: AsyncSession
) -> None:
    manager, root = await new_client(roles=["manager"]), await new_client(superuser=True)
    product = await make_product(session)
    await session.commit()
    assert await _delete(manager, f"/admin/product/delete?pks={product.id}") == 200
    refused = await manager.post(
        f"/admin/trash/product/{product.id}/purge", headers={"X-CSRF-Token": await page_token(manager)}
    )
    assert refused.status_code == 403
    trash = await root.get("/admin/trash?model=product")
    assert "purge-button" in trash.text
    purged = await root.post(
        f"/admin/trash/product/{product.id}/purge", data={"csrf_token": csrf_from(trash.text)}
    )
    assert purged.status_code == 303
    history = await root.get(f"/admin/history/product/{product.id}")
    assert "history-purge" in history.text and product.sku in history.text  # last values kept


async def test_restore_conflict_is_shown_not_raised(new_client: ClientFactory, session: AsyncSession) -> None:
    manager = await new_client(roles=["manager"])
    old = await make_product(session, sku="CLASH-1")
    await session.commit()
    assert await _delete(manager, f"/admin/product/delete?pks={old.id}") == 200
    await make_product(session, sku="CLASH-1", category_id=old.category_id)
    await session.commit()
    token = await page_token(manager)
    response = await manager.post(f"/admin/trash/product/{old.id}/restore", data={"csrf_token": token})
    assert response.status_code == 303
    page = await manager.get(response.headers["location"])
    assert "Cannot restore this product: A product with the SKU CLASH-1 already exists." in page.text


async def test_history_masks_pii_for_roles_without_view_pii(
    new_client: ClientFactory, session: AsyncSession
) -> None:
    manager, viewer = await new_client(roles=["manager"]), await new_client(roles=["viewer"])
    form = await manager.get("/admin/customer/create")
    response = await manager.post(
        "/admin/customer/create",
        data={
            "name": "Private Person",
            "email": "private@example.com",
            "phone": "",
            "address": "",
            "csrf_token": csrf_from(form.text),
            "save": "Save",
        },
    )
    assert response.status_code == 302
    from backend.models import Customer

    customer = (await session.execute(select(Customer).where(Customer.name == "Private Person"))).scalar_one()
    assert "private@example.com" in (await manager.get(f"/admin/history/customer/{customer.id}")).text
    masked = await viewer.get(f"/admin/history/customer/{customer.id}")
    assert masked.status_code == 200 and "private@example.com" not in masked.text
    assert (await viewer.get("/admin/history/user/1")).status_code == 403
    assert (await viewer.get("/admin/history/nothing/1")).status_code == 404


def _menu_link(html: str, label: str) -> str:
    match = re.search(rf'<a[^>]*href="([^"]+)"[^>]*>(?:(?!</a>).)*?{re.escape(label)}', html, re.DOTALL)
    assert match, f"no menu link for {label}"
    return match.group(1).replace("&amp;", "&")


async def _csv(client, url: str) -> list[dict[str, str]]:  # type: ignore[no-untyped-def]
    response = await client.get(url)
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
    return list(csv.DictReader(io.StringIO(response.text)))


async def test_the_audit_log_menu_item_opens_the_page(new_client: ClientFactory) -> None:
    auditor = await new_client(roles=["auditor"])
    link = _menu_link((await auditor.get("/admin/")).text, "Audit log")
    page = await auditor.get(link)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert 'id="audit-table"' in page.text


async def test_the_export_button_exports_exactly_the_filtered_entries(
    new_client: ClientFactory, database: Database, session: AsyncSession
) -> None:
    auditor = await new_client(roles=["auditor"])
    editor = Actor(user_id=None, username="export-filter-editor", is_superuser=True)
    async with unit_of_work(database, editor) as uow:
        category = await make_category(uow.session)
        products = ProductService(uow)
        made = [
            await products.create(
                {"sku": f"EXP-{n}", "name": "x", "price": "1.00", "category_id": category.id}
            )
            for n in range(3)
        ]
        await products.update(made[0].id, {"name": "y"})
        await uow.commit()
    wanted = (
        await session.execute(
            select(AuditEntry.id).where(
                AuditEntry.actor_name == editor.username,
                AuditEntry.model == "product",
                AuditEntry.action == "create",
            )
        )
    ).scalars()
    query = urlencode({"actor": editor.username, "model": "product", "action": "create", "before": ""})
    page = await auditor.get(f"/admin/audit-log?{query}")
    assert page.text.count('class="audit-row"') == 3
    href = page.text.split('id="audit-export" href="')[1].split('"')[0].replace("&amp;", "&")
    assert [int(row["id"]) for row in await _csv(auditor, href)] == sorted(wanted, reverse=True)

    # Filter values are encoded, not pasted: "&model=..." stays part of the actor searched for.
    tricky = urlencode({"actor": f"{editor.username}&action=update", "model": "product"})
    page = await auditor.get(f"/admin/audit-log?{tricky}")
    href = page.text.split('id="audit-export" href="')[1].split('"')[0].replace("&amp;", "&")
    assert parse_qs(urlsplit(href).query)["actor"] == [f"{editor.username}&action=update"]
    assert await _csv(auditor, href) == []


FORMULAS = ["＝1+1", "＋1+1", "－1", "＠x", "\u200b=1+1", '\u00a0\u2060=HYPERLINK("http://x")']


async def test_list_and_audit_exports_neutralise_formulas_in_any_form(
    new_client: ClientFactory, database: Database, session: AsyncSession
) -> None:
    auditor = await new_client(roles=["auditor"])
    async with unit_of_work(database, Actor.system("tests")) as uow:
        category = await make_category(uow.session)
        for n, formula in enumerate(FORMULAS):
            await ProductService(uow).create(
                {"sku": f"FORMULA-{n}", "name": formula, "price": "1.00", "category_id": category.id}
            )
        await uow.commit()
    stored = (await session.execute(select(Product.name).where(Product.sku.like("FORMULA-%")))).scalars()
    rows = await _csv(auditor, "/admin/product/export/csv?search=FORMULA-")
    assert sorted(row["Name"] for row in rows) == sorted("'" + name for name in stored)

    anonymous = await new_client(signed_in=False)
    for formula in FORMULAS:
        await sign_in(anonymous, formula, "wrong-password-123")
    rows = await _csv(auditor, "/admin/audit-log/export?action=login_failed")
    names = {row["actor_name"] for row in rows} | {row["object_repr"] for row in rows}
    for formula in FORMULAS:
        assert formula.strip() not in names and "'" + formula.strip() in names


async def test_the_trash_refuses_an_item_of_an_order_still_in_the_trash(
    new_client: ClientFactory, database: Database, session: AsyncSession
) -> None:
    manager = await new_client(roles=["manager"])
    order = await make_order(session, items=1)
    item_id = (await session.execute(select(OrderItem.id).where(OrderItem.order_id == order.id))).scalar_one()
    await session.commit()
    async with unit_of_work(database, Actor.system("tests")) as uow:
        await OrderService(uow).delete(order.id)
        await uow.commit()
    trash = await manager.get("/admin/trash?model=order_item")
    assert f'data-model="order_item" data-pk="{item_id}"' in trash.text
    response = await manager.post(
        f"/admin/trash/order_item/{item_id}/restore", data={"csrf_token": csrf_from(trash.text)}
    )
    assert response.status_code == 303
    page = await manager.get(response.headers["location"])
    assert (
        f"Restore order {order.id} first: this order item refers to it, and it is in the trash." in page.text
    )
    assert f'data-model="order_item" data-pk="{item_id}"' in page.text  # still in the trash
    assert (await manager.get(f"/admin/order-item/details/{item_id}")).status_code == 404


async def test_a_record_without_entries_has_an_empty_history_not_a_missing_one(
    new_client: ClientFactory, session: AsyncSession
) -> None:
    """Rows loaded in bulk have no audit entries; the History button on their page must still open."""
    product = await make_product(session)
    await session.commit()
    recorded = select(AuditEntry).where(
        AuditEntry.model == "product", AuditEntry.object_id == str(product.id)
    )
    assert not (await session.scalars(recorded)).all()
    client = await new_client(roles=["viewer"])
    page = await client.get(f"/admin/history/product/{product.id}")
    assert page.status_code == 200
    assert 'id="history-empty"' in page.text
    missing = await client.get("/admin/history/product/987654321")
    assert missing.status_code == 404


async def test_the_trash_offers_restore_and_purge_only_for_accounts_the_actor_may_manage(
    new_client: ClientFactory, session: AsyncSession
) -> None:
    restorers = await make_role(
        session, permissions=["trash.view", "user.view", "user.restore", "user.purge"]
    )
    manager = await make_user(session, roles=["manager"])
    root = await make_user(session, is_superuser=True)
    plain = await make_user(session)
    for user in (manager, root, plain):
        user.deleted_at = datetime.now(UTC)
    await session.commit()
    client = await new_client(roles=[restorers.name])
    trash = await client.get("/admin/trash?model=user")
    assert trash.status_code == 200
    for what in ("restore", "purge"):
        assert f'/trash/user/{plain.id}/{what}"' in trash.text
        for held_more in (manager, root):
            assert f"/admin/history/user/{held_more.id}" in trash.text  # listed, without the buttons
            assert f'/trash/user/{held_more.id}/{what}"' not in trash.text
    refused = await client.post(
        f"/admin/trash/user/{manager.id}/restore", data={"csrf_token": csrf_from(trash.text)}
    )
    assert refused.status_code == 403  # what the page leaves out would have been refused
    restored = await client.post(
        f"/admin/trash/user/{plain.id}/restore", data={"csrf_token": csrf_from(trash.text)}
    )
    assert restored.status_code == 303
