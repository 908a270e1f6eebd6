from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from backend.auth.actor import Actor
from backend.db.session import Database
from backend.db.uow import UnitOfWork, unit_of_work
from backend.errors import Conflict
from backend.models import AuditEntry, Product
from backend.services.auth import AuthService
from backend.services.catalog import ProductService
from backend.services.history import AuditFilters, AuditLog
from backend.services.roles import RoleService
from backend.services.users import UserService
from tests.factories import DEFAULT_PASSWORD, make_category, make_product, make_user

EDITOR_PERMISSIONS = frozenset(
    {"product.add", "product.change", "product.view", "product.delete", "product.restore"}
)


async def editor(session: AsyncSession) -> Actor:
    user = await make_user(session, username="edith")
    return Actor(user_id=user.id, username="edith", permissions=EDITOR_PERMISSIONS, client_address="10.1.2.3")


async def _entries(session: AsyncSession, model: str, object_id: object) -> list[AuditEntry]:
    stmt = select(AuditEntry).where(AuditEntry.model == model, AuditEntry.object_id == str(object_id))
    return list((await session.execute(stmt.order_by(AuditEntry.id))).scalars())


async def test_create_update_delete_restore_purge_are_recorded(
    session: AsyncSession, settings: object
) -> None:
    category = await make_category(session)
    actor = await editor(session)
    uow = UnitOfWork(session, actor=actor, settings=settings)  # type: ignore[arg-type]
    service = ProductService(uow)
    product = await service.create(
        {"sku": "AUD-1", "name": "Audited", "price": "5.00", "category_id": category.id}
    )
    await service.update(product.id, {"price": "6.50", "name": "Audited"})
    await service.delete(product.id)
    await service.restore(product.id)
    await service.delete(product.id)
    await ProductService(UnitOfWork(session, actor=Actor.system("ops"), settings=settings)).purge(product.id)  # type: ignore[arg-type]

    entries = await _entries(session, "product", product.id)
    assert [e.action for e in entries] == ["create", "update", "delete", "restore", "delete", "purge"]
    created, updated, deleted, restored, _, purged = entries
    assert created.changes["sku"] == [None, "AUD-1"] and created.changes["price"] == [None, "5.00"]
    assert (
        created.actor_id == actor.user_id
        and created.actor_name == "edith"
        and created.client_address == "10.1.2.3"
    )
    assert created.object_repr == "AUD-1 Audited"
    assert updated.changes == {"price": ["5.00", "6.50"]}  # only what changed; no version or updated_at
    assert set(deleted.changes) == {"deleted_at", "deleted_by_id"}
    assert deleted.changes["deleted_by_id"] == [None, actor.user_id]
    assert restored.changes["deleted_at"][1] is None
    assert purged.actor_name == "system:ops" and purged.changes["sku"] == ["AUD-1", None]
    assert purged.changes["price"] == ["6.50", None]  # the record's last values survive the purge


async def test_secrets_are_redacted(system_uow: UnitOfWork, session: AsyncSession) -> None:
    user = await make_user(session)
    await UserService(system_uow).set_password(user.id, "a-new-long-password-1")
    entry = (await _entries(session, "user", user.id))[-1]
    assert (entry.action, entry.changes) == ("update", {"password_hash": ["[redacted]", "[redacted]"]})
    created = await UserService(system_uow).create(
        {"username": "newcomer", "password": "newcomer-password-9"}
    )
    (entry,) = await _entries(session, "user", created.id)
    assert entry.changes["password_hash"] == [None, "[redacted]"]
    assert "argon2" not in str(entry.changes)


async def test_permission_and_role_changes_are_recorded(
    system_uow: UnitOfWork, session: AsyncSession
) -> None:
    role = await RoleService(system_uow).create({"name": "support", "permissions": ["user.view"]})
    await RoleService(system_uow).grant("support", ["role.view"])
    entries = await _entries(session, "role", role.id)
    assert entries[0].changes["permissions"] == [[], ["user.view"]]
    assert entries[1].changes["permissions"] == [["user.view"], ["role.view", "user.view"]]
    user = await make_user(session)
    await UserService(system_uow).update(user.id, {"roles": ["support"]})
    entry = (await _entries(session, "user", user.id))[-1]
    assert entry.changes["roles"] == [[], ["support"]]


async def test_sign_in_events_are_recorded(system_uow: UnitOfWork, session: AsyncSession) -> None:
    user = await make_user(session)
    auth = AuthService(system_uow)
    await auth.login(user.username, "wrong", client_address="192.0.2.1")
    outcome = await auth.login(user.username, DEFAULT_PASSWORD, client_address="192.0.2.1")
    await auth.logout(outcome.token or "", client_address="192.0.2.1")
    await session.flush()
    entries = await _entries(session, "user", user.id)
    actions = [(e.action, e.actor_name, e.client_address) for e in entries if e.action != "create"]
    assert actions == [
        ("login_failed", user.username, "192.0.2.1"),
        ("login", user.username, "192.0.2.1"),
        ("logout", user.username, "192.0.2.1"),
    ]


async def test_a_failed_change_leaves_no_entry(database: Database, session: AsyncSession) -> None:
    taken = await make_product(session, sku="TAKEN-A")
    actor = await editor(session)
    await session.commit()
    before = await session.scalar(select(func.count()).select_from(AuditEntry))
    with pytest.raises(Conflict):
        async with unit_of_work(database, actor) as uow:
            await ProductService(uow).create(
                {"sku": "FRESH-A", "name": "ok", "price": "1.00", "category_id": taken.category_id}
            )  # flushed, and audited...
            await ProductService(uow).create(
                {"sku": "TAKEN-A", "name": "dup", "price": "1.00", "category_id": taken.category_id}
            )  # ...but this fails and the unit of work is never committed
    assert await session.scalar(select(func.count()).select_from(AuditEntry)) == before
    assert await session.scalar(select(func.count()).where(Product.sku == "FRESH-A")) == 0


async def test_a_committed_change_always_has_its_entry(database: Database, session: AsyncSession) -> None:
    category = await make_category(session)
    actor = await editor(session)
    await session.commit()
    async with unit_of_work(database, actor) as uow:
        product = await ProductService(uow).create(
            {"sku": "COMMIT-A", "name": "ok", "price": "1.00", "category_id": category.id}
        )
        await uow.commit()
    assert [e.action for e in await _entries(session, "product", product.id)] == ["create"]


@pytest.mark.parametrize(
    "statement", ["UPDATE audit_entry SET actor_name = 'forged'", "DELETE FROM audit_entry"]
)
async def test_the_database_refuses_to_edit_the_audit_log(
    connection: AsyncConnection, session: AsyncSession, statement: str
) -> None:
    session.add(AuditEntry(actor_name="someone", action="update", model="product", object_id="1", changes={}))
    await session.commit()
    with pytest.raises((DBAPIError, IntegrityError), match="append-only"):
        async with connection.begin_nested():
            await connection.execute(text(statement))
    assert await session.scalar(select(func.count()).where(AuditEntry.actor_name == "forged")) == 0


async def test_what_did_a_record_look_like_on_a_date(system_uow: UnitOfWork, session: AsyncSession) -> None:
    category = await make_category(session)
    service = ProductService(system_uow)
    product = await service.create(
        {"sku": "ASOF-1", "name": "First", "price": "2.00", "category_id": category.id}
    )
    await service.update(product.id, {"name": "Second", "price": "3.00"})
    entries = await _entries(session, "product", product.id)
    created_at, updated_at = entries[0].created_at, entries[1].created_at
    log = AuditLog(system_uow)
    assert await log.state_at("product", str(product.id), created_at - timedelta(seconds=1)) is None
    first = await log.state_at("product", str(product.id), created_at)
    assert first is not None and first["name"] == "First" and first["price"] == "2.00"
    later = await log.state_at("product", str(product.id), updated_at + timedelta(seconds=1))
    assert later is not None and later["name"] == "Second" and later["price"] == "3.00"


async def test_what_did_a_user_change_last_week(system_uow: UnitOfWork, session: AsyncSession) -> None:
    category = await make_category(session)
    uow = UnitOfWork(session, actor=await editor(session), settings=system_uow.settings)
    await ProductService(uow).create(
        {"sku": "WEEK-1", "name": "x", "price": "1.00", "category_id": category.id}
    )
    week_ago = datetime.now(UTC) - timedelta(days=7)
    found = await AuditLog(system_uow).search(AuditFilters(actor="edith", since=week_ago))
    assert [(e.action, e.model) for e in found] == [("create", "product")]
    assert await AuditLog(system_uow).search(AuditFilters(actor="edith", until=week_ago)) == []


async def test_history_masks_personal_data_without_view_pii(
    system_uow: UnitOfWork, session: AsyncSession
) -> None:
    from backend.services.customers import CustomerService

    customer = await CustomerService(system_uow).create({"name": "Pia", "email": "pia@example.com"})
    viewer = UnitOfWork(
        session,
        actor=Actor(user_id=1, username="v", permissions=frozenset({"customer.view"})),
        settings=system_uow.settings,
    )
    (entry,) = await AuditLog(viewer).history("customer", str(customer.id))
    assert entry.changes["email"] == [None, "•••"] and entry.changes["name"] == [None, "Pia"]


async def test_seeding_can_be_left_out_of_the_audit(database: Database, session: AsyncSession) -> None:
    category = await make_category(session)
    await session.commit()
    async with unit_of_work(database, Actor.system("seed"), audit=False) as uow:
        product = await ProductService(uow).create(
            {"sku": "QUIET-1", "name": "q", "price": Decimal("1.00"), "category_id": category.id}
        )
        await uow.commit()
    assert await _entries(session, "product", product.id) == []
