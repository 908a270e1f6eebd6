"""User and role pages: forms go through the services, errors show next to their fields."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession
from starlette.applications import Starlette

from backend.models import Role, User
from tests.admin.conftest import ClientFactory, client_for, csrf_from, page_token, sign_in
from tests.admin.test_store_views import counting_statements
from tests.factories import make_user


async def test_create_user_with_invalid_input_keeps_it_and_changes_nothing(
    new_client: ClientFactory, session: AsyncSession
) -> None:
    client = await new_client(superuser=True)
    form = await client.get("/admin/user/create")
    response = await client.post(
        "/admin/user/create",
        data={
            "username": "newbie",
            "email": "newbie@example.com",
            "password": "password123",
            "password_confirm": "password123",
            "csrf_token": csrf_from(form.text),
            "save": "Save",
        },
    )
    assert response.status_code == 400
    assert "This password is too common" in response.text
    assert 'value="newbie@example.com"' in response.text  # what the user typed is kept
    assert await session.scalar(select(func.count()).where(User.username == "newbie")) == 0


async def test_create_user_duplicate_is_a_field_error(
    new_client: ClientFactory, session: AsyncSession
) -> None:
    client = await new_client(superuser=True)
    await make_user(session, username="dupe")
    await session.commit()
    form = await client.get("/admin/user/create")
    response = await client.post(
        "/admin/user/create",
        data={
            "username": "dupe",
            "password": "long-enough-pass-1",
            "password_confirm": "long-enough-pass-1",
            "csrf_token": csrf_from(form.text),
            "save": "Save",
        },
    )
    assert response.status_code == 400
    assert "A user named dupe already exists." in response.text
    assert "invalid-feedback" in response.text


async def test_create_user_then_they_sign_in(new_client: ClientFactory, session: AsyncSession) -> None:
    from tests.admin.conftest import sign_in

    client = await new_client(superuser=True)
    form = await client.get("/admin/user/create")
    response = await client.post(
        "/admin/user/create",
        data={
            "username": "fresh",
            "password": "fresh-user-password",
            "password_confirm": "fresh-user-password",
            "roles": "auditor",
            "is_active": "y",
            "csrf_token": csrf_from(form.text),
            "save": "Save",
        },
    )
    assert response.status_code == 302, response.text
    newcomer = await new_client(signed_in=False)
    assert (await sign_in(newcomer, "fresh", "fresh-user-password")).status_code == 302
    assert (await newcomer.get("/admin/user/list")).status_code == 200
    assert (await newcomer.get("/admin/user/create")).status_code == 403


async def test_mismatched_password_confirmation(new_client: ClientFactory, session: AsyncSession) -> None:
    client = await new_client(superuser=True)
    target = await make_user(session)
    await session.commit()
    token = await page_token(client)
    response = await client.post(
        f"/admin/user/set-password/{target.id}",
        data={"password": "one-long-password", "password_confirm": "another-long-one", "csrf_token": token},
    )
    assert response.status_code == 400 and "The two passwords differ." in response.text
    weak = await client.post(
        f"/admin/user/set-password/{target.id}",
        data={"password": "short", "password_confirm": "short", "csrf_token": token},
    )
    assert weak.status_code == 400 and "Use at least 10 characters." in weak.text


async def test_user_managers_cannot_escalate(new_client: ClientFactory, session: AsyncSession) -> None:
    from tests.factories import make_role

    managers = await make_role(session, permissions=["user.view", "user.add", "user.change"])
    target = await make_user(session)
    await session.commit()
    client = await new_client(roles=[managers.name])
    form = await client.get(f"/admin/user/edit/{target.id}")
    token, version = csrf_from(form.text), str(target.version)
    to_superuser = await client.post(
        f"/admin/user/edit/{target.id}",
        data={"email": "", "is_active": "y", "is_superuser": "y", "_version": version, "csrf_token": token},
    )
    assert to_superuser.status_code == 403
    to_auditor = await client.post(
        f"/admin/user/edit/{target.id}",
        data={"email": "", "is_active": "y", "roles": "auditor", "_version": version, "csrf_token": token},
    )
    assert to_auditor.status_code == 403
    session.expire_all()
    await session.refresh(target, attribute_names=["roles", "is_superuser"])
    assert not target.is_superuser and target.roles == []


async def test_role_form_grants_from_a_grouped_list(new_client: ClientFactory, session: AsyncSession) -> None:
    client = await new_client(superuser=True)
    form = await client.get("/admin/role/create")
    assert '<optgroup label="user">' in form.text and 'value="user.view"' in form.text
    response = await client.post(
        "/admin/role/create",
        data={
            "name": "support",
            "description": "Help desk",
            "permissions": ["user.view", "role.view"],
            "csrf_token": csrf_from(form.text),
            "save": "Save",
        },
    )
    assert response.status_code == 302, response.text
    role = (await session.execute(select(Role).where(Role.name == "support"))).scalar_one()
    await session.refresh(role, attribute_names=["permissions"])
    assert sorted(p.codename for p in role.permissions) == ["role.view", "user.view"]


async def test_role_editors_cannot_grant_what_they_lack(
    new_client: ClientFactory, session: AsyncSession
) -> None:
    from tests.factories import make_role

    role_admins = await make_role(session, permissions=["role.view", "role.add", "role.change"])
    await session.commit()
    client = await new_client(roles=[role_admins.name])
    form = await client.get("/admin/role/create")
    response = await client.post(
        "/admin/role/create",
        data={
            "name": "sneaky",
            "permissions": ["user.change"],
            "csrf_token": csrf_from(form.text),
            "save": "Save",
        },
    )
    assert response.status_code == 403
    assert await session.scalar(select(func.count()).where(Role.name == "sneaky")) == 0


async def test_stale_edit_is_refused_and_keeps_input(
    new_client: ClientFactory, session: AsyncSession
) -> None:
    first, second = await new_client(superuser=True), await new_client(superuser=True)
    target = await make_user(session)
    await session.commit()
    form_a = await first.get(f"/admin/user/edit/{target.id}")
    form_b = await second.get(f"/admin/user/edit/{target.id}")
    saved = await first.post(
        f"/admin/user/edit/{target.id}",
        data={
            "email": "first@example.com",
            "is_active": "y",
            "_version": "1",
            "csrf_token": csrf_from(form_a.text),
            "save": "Save",
        },
    )
    assert saved.status_code == 302
    assert 'name="_version" value="1"' in form_b.text
    stale = await second.post(
        f"/admin/user/edit/{target.id}",
        data={
            "email": "second@example.com",
            "is_active": "y",
            "_version": "1",
            "csrf_token": csrf_from(form_b.text),
            "save": "Save",
        },
    )
    assert stale.status_code == 409
    assert f"was changed by {first.username} at " in stale.text  # type: ignore[attr-defined]
    assert "since you opened it. Nothing was saved" in stale.text
    assert 'value="second@example.com"' in stale.text
    await session.refresh(target)
    assert target.email == "first@example.com"


async def _user_managers(session: AsyncSession) -> str:
    from tests.factories import make_role

    role = await make_role(session, permissions=["user.view", "user.change", "user.delete"])
    return role.name


async def test_user_managers_cannot_reset_a_manager_password(
    app: Starlette, new_client: ClientFactory, session: AsyncSession
) -> None:
    managers = await _user_managers(session)
    target = await make_user(session, roles=["manager"])
    await session.commit()
    target_id, username, hash_before = target.id, target.username, target.password_hash
    client = await new_client(roles=[managers])
    page = await client.get(f"/admin/user/set-password/{target_id}")
    assert page.status_code == 403
    assert f"{username} holds permissions you do not have" in page.text
    token = await page_token(client)
    attempt = await client.post(
        f"/admin/user/set-password/{target_id}",
        data={"password": "taken-over-pass-1", "password_confirm": "taken-over-pass-1", "csrf_token": token},
    )
    assert attempt.status_code == 403 and "holds permissions you do not have" in attempt.text
    session.expire_all()
    stored = await session.scalar(select(User.password_hash).where(User.id == target_id))
    assert stored == hash_before
    async with client_for(app) as other:
        assert (await sign_in(other, username, "taken-over-pass-1")).status_code == 400

    details = await client.get(f"/admin/user/details/{target_id}")
    assert details.status_code == 200
    assert 'id="set-password"' not in details.text
    assert f"/admin/user/edit/{target_id}" not in details.text
    assert f"/admin/user/delete?pks={target_id}" not in details.text
    assert (await client.get(f"/admin/user/edit/{target_id}")).status_code == 403
    refused_edit = await client.post(
        f"/admin/user/edit/{target_id}",
        data={"email": "", "is_active": "", "csrf_token": token, "save": "Save"},
    )
    assert refused_edit.status_code == 403
    refused_delete = await client.delete(
        f"/admin/user/delete?pks={target_id}", headers={"X-CSRF-Token": token}
    )
    assert refused_delete.status_code == 403
    session.expire_all()
    assert await session.scalar(select(User.is_active).where(User.id == target_id)) is True


async def test_a_bulk_delete_with_one_refused_row_deletes_none(
    new_client: ClientFactory, session: AsyncSession
) -> None:
    """Each selected row is checked before anything is deleted; one refusal stops the whole delete."""
    managers = await _user_managers(session)
    plain = await make_user(session, roles=[])
    await session.commit()
    plain_id = plain.id
    client = await new_client(roles=[managers])
    token = await page_token(client)
    own_id = client.user_id  # type: ignore[attr-defined]
    refused = await client.delete(
        f"/admin/user/delete?pks={plain_id},{own_id}", headers={"X-CSRF-Token": token}
    )
    assert refused.status_code == 403
    assert "Your roles do not allow you to delete" in refused.text
    missing = await client.delete(
        f"/admin/user/delete?pks={plain_id},999999999", headers={"X-CSRF-Token": token}
    )
    assert missing.status_code == 404
    assert "No user 999999999 exists. Nothing was deleted." in missing.text
    session.expire_all()
    deleted = select(User.deleted_at).where(User.id.in_([plain_id, own_id]))
    assert list(await session.scalars(deleted)) == [None, None]


async def test_user_managers_still_reset_users_who_hold_less(
    new_client: ClientFactory, session: AsyncSession
) -> None:
    managers = await _user_managers(session)
    target = await make_user(session, roles=[])
    await session.commit()
    target_id, hash_before = target.id, target.password_hash
    client = await new_client(roles=[managers])
    details = await client.get(f"/admin/user/details/{target_id}")
    assert 'id="set-password"' in details.text and f"/admin/user/edit/{target_id}" in details.text
    own = await client.get(f"/admin/user/details/{client.user_id}")  # type: ignore[attr-defined]
    assert 'id="set-password"' in own.text
    assert f"/admin/user/delete?pks={client.user_id}" not in own.text  # type: ignore[attr-defined]
    page = await client.get(f"/admin/user/set-password/{target_id}")
    assert page.status_code == 200
    done = await client.post(
        f"/admin/user/set-password/{target_id}",
        data={
            "password": "a-new-long-pass-1",
            "password_confirm": "a-new-long-pass-1",
            "csrf_token": csrf_from(page.text),
        },
    )
    assert done.status_code == 302
    session.expire_all()
    assert await session.scalar(select(User.password_hash).where(User.id == target_id)) != hash_before


async def test_set_password_refuses_an_overlong_password(
    new_client: ClientFactory, session: AsyncSession
) -> None:
    target = await make_user(session)
    await session.commit()
    client = await new_client(superuser=True)
    page = await client.get(f"/admin/user/set-password/{target.id}")
    long = "z" * 1025
    response = await client.post(
        f"/admin/user/set-password/{target.id}",
        data={"password": long, "password_confirm": long, "csrf_token": csrf_from(page.text)},
    )
    assert response.status_code == 400 and "1024 characters" in response.text


async def test_user_list_asks_the_authority_rule_once_per_page(
    new_client: ClientFactory, session: AsyncSession, engine: AsyncEngine
) -> None:
    managers = await _user_managers(session)
    for _ in range(30):
        await make_user(session, roles=["manager"])
    plain = [await make_user(session) for _ in range(30)]
    await session.commit()
    client = await new_client(roles=[managers])
    counts = {}
    for page_size in (10, 100):
        with counting_statements(engine) as statements:
            response = await client.get(f"/admin/user/list?pageSize={page_size}&sortBy=id")
        assert response.status_code == 200
        # A first page that is not full is its own count (admin/listing.py): leave the count out.
        counts[page_size] = len([statement for statement in statements if "count(*)" not in statement])
    assert counts[10] == counts[100], counts
    # The full page shows edit and delete for the accounts that hold less, none for the managers.
    page = response.text
    assert all(f"/admin/user/edit/{user.id}?" in page for user in plain)
    assert all(f'/admin/user/delete?pks={user.id}"' in page for user in plain)
    held_more = await session.scalars(select(User.id).join(User.roles).where(Role.name == "manager"))
    for user_id in held_more:
        assert f"/admin/user/edit/{user_id}?" not in page and f'/admin/user/delete?pks={user_id}"' not in page
