"""Signing in and out of the admin, sessions, CSRF and security headers, over HTTP."""

from __future__ import annotations

import base64
import json
import re
from datetime import UTC, datetime, timedelta

import pytest
from itsdangerous import TimestampSigner
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.applications import Starlette

from admin.auth import SESSION_COOKIE, admin_next_path
from backend.config import Settings
from backend.models import AuditEntry, AuthSession, LoginAttempt, User
from tests.admin.conftest import ClientFactory, client_for, csrf_from, page_token, sign_in
from tests.factories import DEFAULT_PASSWORD, make_user


async def test_anonymous_is_sent_to_login_with_next(new_client: ClientFactory) -> None:
    client = await new_client(signed_in=False)
    response = await client.get("/admin/user/list?page=2")
    assert response.status_code == 302
    assert response.headers["location"].endswith("/admin/login?next=%2Fadmin%2Fuser%2Flist%3Fpage%3D2")


async def test_sign_in_records_attempt_and_last_login(app: Starlette, session: AsyncSession) -> None:
    user = await make_user(session, is_superuser=True)
    await session.commit()
    async with client_for(app) as client:
        response = await sign_in(client, user.username)
        assert response.status_code == 302
        assert response.headers["location"] == "http://testserver/admin/"
        assert (await client.get("/admin/")).status_code == 200
    await session.refresh(user)
    assert user.last_login_at is not None
    attempts = (
        await session.execute(select(LoginAttempt).where(LoginAttempt.username == user.username))
    ).scalars()
    assert [a.succeeded for a in attempts] == [True]


async def test_unknown_user_and_wrong_password_look_the_same(app: Starlette, session: AsyncSession) -> None:
    user = await make_user(session)
    await session.commit()
    async with client_for(app) as client:
        wrong = await sign_in(client, user.username, "not-the-password")
        unknown = await sign_in(client, "nobody-by-this-name", "not-the-password")
    assert wrong.status_code == unknown.status_code == 400
    message = "Please enter a correct username and password."
    assert message in wrong.text and message in unknown.text
    assert "nobody-by-this-name" in unknown.text  # the username is kept in the form


async def test_inactive_user_cannot_sign_in(app: Starlette, session: AsyncSession) -> None:
    user = await make_user(session, is_active=False)
    await session.commit()
    async with client_for(app) as client:
        assert (await sign_in(client, user.username)).status_code == 400


async def test_throttling_after_repeated_failures(
    app: Starlette, session: AsyncSession, settings: Settings
) -> None:
    user = await make_user(session)
    await session.commit()
    async with client_for(app) as client:
        for _ in range(settings.login_max_failures_per_user):
            assert (await sign_in(client, user.username, "wrong-password")).status_code == 400
        throttled = await sign_in(client, user.username)  # even the right password is refused now
        assert throttled.status_code == 429
        assert "Too many failed sign-in attempts. Try again in" in throttled.text
    failures = await session.scalar(
        select(func.count()).where(LoginAttempt.username == user.username, LoginAttempt.succeeded.is_(False))
    )
    assert failures == settings.login_max_failures_per_user  # the refusal tried no password
    refusals = await session.scalar(
        select(func.count()).where(
            AuditEntry.action == "login_refused", AuditEntry.object_repr == user.username
        )
    )
    assert refusals == 1


async def test_refused_attempts_do_not_keep_an_account_locked(
    app: Starlette, session: AsyncSession, settings: Settings
) -> None:
    """Whoever keeps knocking during a lock-out does not extend it: only tried passwords count."""
    user = await make_user(session)
    await session.commit()
    window = timedelta(minutes=settings.login_throttle_window_minutes)
    tried_at = datetime.now(UTC) - window + timedelta(minutes=1)  # still inside the window
    ours = LoginAttempt.username == user.username
    async with client_for(app) as client:
        for _ in range(settings.login_max_failures_per_user):
            assert (await sign_in(client, user.username, "wrong-password")).status_code == 400
        await session.execute(update(LoginAttempt).where(ours).values(attempted_at=tried_at))
        await session.commit()
        for _ in range(settings.login_max_failures_per_user):
            assert (await sign_in(client, user.username, "wrong-password")).status_code == 429
        # The tried passwords age out of the window...
        aged = update(LoginAttempt).where(ours, LoginAttempt.attempted_at <= tried_at)
        await session.execute(aged.values(attempted_at=tried_at - window))
        await session.commit()
        # ...and the account opens again, however many refusals came meanwhile.
        assert (await sign_in(client, user.username)).status_code == 302


async def test_throttling_holds_across_app_instances(
    settings: Settings, database: object, session: AsyncSession
) -> None:
    from admin.app import create_app
    from backend.db.session import Database

    assert isinstance(database, Database)
    user = await make_user(session)
    await session.commit()
    first, second = create_app(settings, database=database), create_app(settings, database=database)
    async with client_for(first) as client:
        for _ in range(settings.login_max_failures_per_user):
            await sign_in(client, user.username, "wrong-password")
    async with client_for(second) as client:  # another process: the count lives in the database
        assert (await sign_in(client, user.username)).status_code == 429


async def test_per_address_throttling(app: Starlette, session: AsyncSession, settings: Settings) -> None:
    async with client_for(app) as client:
        for attempt in range(settings.login_max_failures_per_address):
            await sign_in(client, f"guess{attempt}", "wrong-password")
        user = await make_user(session)
        await session.commit()
        assert (await sign_in(client, user.username)).status_code == 429


@pytest.mark.parametrize(
    "candidate",
    [
        "https://evil.example/admin/",
        "//evil.example/admin/",
        "/\\evil.example",
        "javascript:alert(1)",
        "/somewhere-else/",
        "/admin/logout",
        "/admin/../../x",
        "/admin/%2e%2e/%2E%2E/x",
        "/admin/..%2f..%2fx",
        "/admin/%252e%252e/%252e%252e/x",
        "/admin/%2F%2Fevil.example",
        "/admin/%5c%5cevil.example",
        "/admin/\t/evil.example",
        "/admin/./%6cogout",
    ],
)
async def test_next_only_accepts_admin_paths(app: Starlette, session: AsyncSession, candidate: str) -> None:
    user = await make_user(session, is_superuser=True)
    await session.commit()
    async with client_for(app) as client:
        page = await client.get("/admin/login")
        response = await client.post(
            "/admin/login",
            data={
                "username": user.username,
                "password": DEFAULT_PASSWORD,
                "csrf_token": csrf_from(page.text),
                "next": candidate,
            },
        )
    assert response.status_code == 302
    assert response.headers["location"] == "http://testserver/admin/"


async def test_next_inside_the_admin_is_followed(app: Starlette, session: AsyncSession) -> None:
    user = await make_user(session, is_superuser=True)
    await session.commit()
    async with client_for(app) as client:
        page = await client.get("/admin/login?next=/admin/user/list")
        assert 'value="/admin/user/list"' in page.text
        response = await client.post(
            "/admin/login",
            data={
                "username": user.username,
                "password": DEFAULT_PASSWORD,
                "csrf_token": csrf_from(page.text),
                "next": "/admin/user/list",
            },
        )
    assert response.headers["location"] == "/admin/user/list"


async def test_login_needs_csrf_token(app: Starlette, session: AsyncSession) -> None:
    user = await make_user(session)
    await session.commit()
    async with client_for(app) as client:
        await client.get("/admin/login")
        response = await client.post(
            "/admin/login", data={"username": user.username, "password": DEFAULT_PASSWORD}
        )
    assert response.status_code == 403


async def test_session_is_rotated_on_sign_in(app: Starlette, session: AsyncSession) -> None:
    user = await make_user(session)
    await session.commit()
    async with client_for(app) as client:
        page = await client.get("/admin/login")
        before_cookie, before_token = client.cookies[SESSION_COOKIE], csrf_from(page.text)
        await sign_in(client, user.username)
        after_token = await page_token(client)
        assert client.cookies[SESSION_COOKIE] != before_cookie
        assert after_token != before_token


async def test_logout_is_post_only_and_kills_the_session(new_client: ClientFactory) -> None:
    client = await new_client(superuser=True)
    stolen_cookie = client.cookies[SESSION_COOKIE]

    confirm = await client.get("/admin/logout")  # GET changes nothing: it asks
    assert confirm.status_code == 200 and 'id="confirm-logout"' in confirm.text
    assert (await client.get("/admin/")).status_code == 200

    assert (await client.post("/admin/logout")).status_code == 403  # no CSRF token
    assert (await client.get("/admin/")).status_code == 200

    response = await client.post("/admin/logout", data={"csrf_token": csrf_from(confirm.text)})
    assert response.status_code == 302 and response.headers["location"].endswith("/admin/login")
    assert (await client.get("/admin/")).status_code == 302

    # The same cookie replayed after logout is refused: the session is dead server-side.
    client.cookies.set(SESSION_COOKIE, stolen_cookie)
    assert (await client.get("/admin/")).status_code == 302


async def test_tampered_cookie_is_refused(new_client: ClientFactory) -> None:
    client = await new_client(superuser=True)
    cookie = client.cookies[SESSION_COOKIE]
    client.cookies.set(SESSION_COOKIE, cookie[:-3] + ("AAA" if not cookie.endswith("AAA") else "BBB"))
    assert (await client.get("/admin/")).status_code == 302


async def test_forged_cookie_with_a_guessed_token_is_refused(
    new_client: ClientFactory, settings: Settings
) -> None:
    client = await new_client(signed_in=False)
    # Even signed with the right key, a token that is not a live session gets nothing.
    payload = base64.b64encode(json.dumps({"sid": "guessed", "csrf": "x"}).encode())
    client.cookies.set(SESSION_COOKIE, TimestampSigner(settings.secret_key).sign(payload).decode())
    assert (await client.get("/admin/")).status_code == 302


async def test_cookie_carries_no_role_or_permission(new_client: ClientFactory) -> None:
    client = await new_client(superuser=True)
    data = client.cookies[SESSION_COOKIE].split(".")[0]
    decoded = json.loads(base64.b64decode(data + "=" * (-len(data) % 4)))
    assert set(decoded) == {"sid", "csrf"}


async def test_password_change_ends_existing_sessions(
    new_client: ClientFactory, session: AsyncSession
) -> None:
    admin = await new_client(superuser=True)
    victim = await new_client(roles=["auditor"])
    assert (await victim.get("/admin/user/list")).status_code == 200

    token = await page_token(admin)
    response = await admin.post(
        f"/admin/user/set-password/{victim.user_id}",  # type: ignore[attr-defined]
        data={
            "password": "a-brand-new-password-7",
            "password_confirm": "a-brand-new-password-7",
            "csrf_token": token,
        },
    )
    assert response.status_code == 302
    assert (await victim.get("/admin/user/list")).status_code == 302  # the old cookie is dead


async def test_deactivation_and_role_change_end_sessions(
    new_client: ClientFactory, session: AsyncSession
) -> None:
    admin = await new_client(superuser=True)
    for change in ({"is_active": ""}, {"is_active": "y", "roles": "viewer"}):
        member = await new_client(roles=["auditor"])
        assert (await member.get("/admin/user/list")).status_code == 200
        user_id = member.user_id  # type: ignore[attr-defined]
        form = await admin.get(f"/admin/user/edit/{user_id}")
        version = re.search(r'name="_version" value="(\d+)"', form.text)
        assert version, "the edit form carries the version it was opened at"
        data = {
            "email": "changed@example.com",
            "csrf_token": csrf_from(form.text),
            "_version": version.group(1),
            "save": "Save",
            **change,
        }
        if "roles" not in change:
            data["roles"] = "auditor"
        response = await admin.post(f"/admin/user/edit/{user_id}", data=data)
        assert response.status_code == 302, response.text
        assert (await member.get("/admin/user/list")).status_code == 302


async def test_idle_and_absolute_timeouts(new_client: ClientFactory, session: AsyncSession) -> None:
    from datetime import UTC, datetime, timedelta

    client = await new_client(roles=["auditor"])
    user_id = client.user_id  # type: ignore[attr-defined]
    assert (await client.get("/admin/user/list")).status_code == 200
    long_ago = datetime.now(UTC) - timedelta(days=2)
    await session.execute(
        update(AuthSession).where(AuthSession.user_id == user_id).values(last_seen_at=long_ago)
    )
    await session.commit()
    assert (await client.get("/admin/user/list")).status_code == 302

    other = await new_client(roles=["auditor"])
    other_id = other.user_id  # type: ignore[attr-defined]
    await session.execute(
        update(AuthSession).where(AuthSession.user_id == other_id).values(expires_at=datetime.now(UTC))
    )
    await session.commit()
    assert (await other.get("/admin/user/list")).status_code == 302


async def test_csrf_is_required_for_every_write(new_client: ClientFactory, session: AsyncSession) -> None:
    client = await new_client(superuser=True)
    target = await make_user(session)
    await session.commit()
    writes = [
        (
            "POST",
            "/admin/user/create",
            {"username": "csrf-victim", "password": "x" * 12, "password_confirm": "x" * 12},
        ),
        ("POST", f"/admin/user/edit/{target.id}", {"email": "csrf@example.com", "save": "Save"}),
        ("DELETE", f"/admin/user/delete?pks={target.id}", None),
        (
            "POST",
            f"/admin/user/set-password/{target.id}",
            {"password": "y" * 12, "password_confirm": "y" * 12},
        ),
    ]
    other = await new_client(superuser=True)
    foreign_token = await page_token(other)
    for method, path, data in writes:
        missing = await client.request(method, path, data=data)
        assert missing.status_code == 403, (method, path)
        # The refusal says why, inside the admin (menu included), not on a bare page.
        assert "security token" in missing.text and "data-sqladmin-menu" in missing.text, (method, path)
        foreign = await client.request(method, path, data=data, headers={"X-CSRF-Token": foreign_token})
        assert foreign.status_code == 403, (method, path)
    await session.refresh(target)
    assert target.email != "csrf@example.com" and target.deleted_at is None
    assert await session.scalar(select(func.count()).where(User.username == "csrf-victim")) == 0


async def test_cross_origin_writes_are_refused_even_with_a_token(
    new_client: ClientFactory, session: AsyncSession
) -> None:
    client = await new_client(superuser=True)
    target = await make_user(session)
    await session.commit()
    token = await page_token(client)
    response = await client.delete(
        f"/admin/user/delete?pks={target.id}",
        headers={"X-CSRF-Token": token, "Origin": "https://evil.example"},
    )
    assert response.status_code == 403
    same_site = await client.delete(
        f"/admin/user/delete?pks={target.id}", headers={"X-CSRF-Token": token, "Origin": "http://testserver"}
    )
    assert same_site.status_code == 200


async def test_security_headers(new_client: ClientFactory) -> None:
    client = await new_client(superuser=True)
    for path in ("/admin/", "/admin/login", "/admin/user/list"):
        headers = (await client.get(path)).headers
        assert headers["x-frame-options"] == "DENY"
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["referrer-policy"] == "same-origin"
        csp = headers["content-security-policy"]
        assert "frame-ancestors 'none'" in csp and "script-src 'self' 'sha256-" in csp
        assert "unsafe-eval" not in csp and "script-src 'self' 'unsafe-inline'" not in csp
        assert headers["cache-control"] == "no-store"


async def test_session_cookie_flags(app: Starlette, session: AsyncSession) -> None:
    async with client_for(app) as client:
        response = await client.get("/admin/login")
    cookie = response.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie and "max-age=" in cookie


async def test_secure_cookie_in_production(database: object, session: AsyncSession) -> None:
    from admin.app import create_app
    from backend.db.session import Database
    from tests.databases import make_settings

    assert isinstance(database, Database)
    production = make_settings(
        database.settings.database_url, environment="production", allow_sqlite_in_production=True
    )
    async with client_for(create_app(production, database=database)) as client:
        response = await client.get("/admin/login")
    assert "secure" in response.headers["set-cookie"].lower()
    assert "max-age=31536000" in response.headers["strict-transport-security"]


@pytest.mark.parametrize(
    ("candidate", "expected"),
    [
        ("/admin/", "/admin/"),
        ("/admin", "/admin"),
        ("/admin/product/list?search=a%2Fb&page=2", "/admin/product/list?search=a%2Fb&page=2"),
        ("/admin/user/details/7#roles", "/admin/user/details/7#roles"),
        ("/admin/../../x", None),
        ("/admin/..", None),
        ("/admin/.%2e/x", None),
        ("/admin/%2e%2e%2f%2e%2e%2fx", None),
        ("/admin/%25252e%25252e/x", None),
        ("/admin//evil.example", None),
        ("/admin/%00/x", None),
        ("/admin/%0d%0aSet-Cookie:x", None),
        ("/administrator/", None),
        ("/admin/%6Cogin", None),
        ("admin/", None),
        ("", None),
        ("/admin/" + "a" * 3000, None),
    ],
)
def test_next_path_is_judged_after_decoding_and_normalising(candidate: str, expected: str | None) -> None:
    assert admin_next_path(candidate, admin_path="/admin/") == expected


async def test_a_megabyte_password_is_a_failed_sign_in(app: Starlette, session: AsyncSession) -> None:
    user = await make_user(session)
    await session.commit()
    async with client_for(app) as client:
        for username in (user.username, "nobody-at-all"):
            response = await sign_in(client, username, DEFAULT_PASSWORD + "x" * 1_000_000)
            assert response.status_code == 400
            assert "A password has at most 1024 characters." in response.text
        assert (await sign_in(client, user.username)).status_code == 302


async def test_login_page_does_not_echo_a_hostile_next(app: Starlette) -> None:
    async with client_for(app) as client:
        page = await client.get("/admin/login", params={"next": "/admin/%2e%2e/%2e%2e/phish"})
        assert page.status_code == 200 and "phish" not in page.text
        kept = await client.get("/admin/login", params={"next": "/admin/user/list"})
        assert 'value="/admin/user/list"' in kept.text
