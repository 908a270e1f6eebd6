"""My password and my sessions (admin/views/my_account_security.py), and the role form's 2FA flag."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import httpx
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.applications import Starlette

from backend.models import AuditEntry, AuthSession, LoginAttempt, Role, User
from backend.services import account
from tests.admin.conftest import ClientFactory, client_for, csrf_from, page_token, sign_in
from tests.admin.crawling import EscapedErrors, crawl, failures
from tests.factories import DEFAULT_PASSWORD, make_role, make_user

PASSWORD_PAGE = "/admin/me/password"
SESSIONS_PAGE = "/admin/me/sessions"
NEW_PASSWORD = "a-brand-new-password-77"
FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"


async def _change(
    client: httpx.AsyncClient, current: str, new: str = NEW_PASSWORD, again: str | None = None
) -> httpx.Response:
    token = await page_token(client, PASSWORD_PAGE)
    data = {
        "current_password": current,
        "password": new,
        "password_confirm": again or new,
        "csrf_token": token,
    }
    return await client.post(PASSWORD_PAGE, data=data)


async def _second_browser(app: Starlette, username: str, agent: str) -> httpx.AsyncClient:
    client = client_for(app)
    client.headers["user-agent"] = agent
    assert (await sign_in(client, username)).status_code == 302
    return client


def _with_cookies_of(app: Starlette, client: httpx.AsyncClient) -> httpx.AsyncClient:
    """A new client holding a copy of `client`'s cookies as they are now (an old cookie, kept)."""
    copy = client_for(app)
    for cookie in client.cookies.jar:
        copy.cookies.set(cookie.name, cookie.value or "", domain=cookie.domain, path=cookie.path)
    return copy


async def _signed_in(client: httpx.AsyncClient) -> bool:
    response = await client.get("/admin/me")
    return response.status_code == 200


async def _actions(session: AsyncSession, user_id: int) -> list[str]:
    rows = await session.scalars(
        select(AuditEntry.action).where(AuditEntry.model == "user", AuditEntry.object_id == str(user_id))
    )
    return list(rows)


async def _session_ids(session: AsyncSession, user_id: int) -> dict[str, int]:
    rows = await session.execute(
        select(AuthSession.user_agent, AuthSession.id).where(
            AuthSession.user_id == user_id, AuthSession.revoked_at.is_(None)
        )
    )
    return {agent: session_id for agent, session_id in rows.all()}


# My password -------------------------------------------------------------------------------------


async def test_my_account_links_both_pages(new_client: ClientFactory) -> None:
    client = await new_client(roles=["viewer"])
    page = await client.get("/admin/me")
    assert f'href="http://testserver{PASSWORD_PAGE}"' in page.text
    assert f'href="http://testserver{SESSIONS_PAGE}"' in page.text
    form = await client.get(PASSWORD_PAGE)
    assert form.status_code == 200 and 'name="current_password"' in form.text


async def test_hand_written_forms_are_drawn_like_sqladmins(new_client: ClientFactory) -> None:
    """Our own forms (StyledForm) carry Tabler's classes, as SQLAdmin's generated ones do."""
    page = (await (await new_client()).get("/admin/me/password")).text
    for name in ("current_password", "password", "password_confirm"):
        field = re.search(rf'<input[^>]*name="{name}"[^>]*>', page)
        assert field and 'class="form-control"' in field.group(0), name
    superuser = await new_client(superuser=True)
    create = (await superuser.get("/admin/user/create")).text
    assert re.search(r'<input[^>]*class="form-check-input"[^>]*name="is_active"', create)
    assert re.search(r'<input[^>]*class="form-control"[^>]*name="username"', create)


async def test_a_wrong_current_password_is_a_form_error_and_is_throttled(
    new_client: ClientFactory, session: AsyncSession
) -> None:
    client = await new_client(roles=["viewer"])
    user_id, username = client.user_id, client.username  # type: ignore[attr-defined]
    limit = 5  # LOGIN_MAX_FAILURES_PER_USER's default
    for attempt in range(limit):
        wrong = await _change(client, f"wrong-guess-{attempt}-xyz")
        assert wrong.status_code == 400
        assert "Your current password is not right." in wrong.text
        assert f"wrong-guess-{attempt}-xyz" not in wrong.text and NEW_PASSWORD not in wrong.text
    throttled = await _change(client, DEFAULT_PASSWORD)
    assert throttled.status_code == 429 and "Too many failed sign-in attempts" in throttled.text
    failed = await session.scalar(
        select(func.count()).where(LoginAttempt.username == username, LoginAttempt.succeeded.is_(False))
    )
    assert failed == limit
    assert (await _actions(session, user_id)).count(account.PASSWORD_FAILED) == limit
    # Nothing changed: this session still opens the admin, the old password still works (elsewhere).
    assert await _signed_in(client)
    stored = await session.scalar(select(User.password_hash).where(User.id == user_id))
    session.expire_all()
    assert stored == await session.scalar(select(User.password_hash).where(User.id == user_id))


async def test_the_policy_and_the_repeat_are_form_errors(new_client: ClientFactory) -> None:
    client = await new_client(roles=["viewer"])
    short = await _change(client, DEFAULT_PASSWORD, "short")
    assert short.status_code == 400 and "Use at least 10 characters." in short.text
    same = await _change(client, DEFAULT_PASSWORD, DEFAULT_PASSWORD)
    assert same.status_code == 400 and account.SAME_PASSWORD in same.text
    differ = await _change(client, DEFAULT_PASSWORD, NEW_PASSWORD, again=NEW_PASSWORD + "!")
    assert differ.status_code == 400 and "The two passwords differ." in differ.text
    for response in (short, same, differ):
        assert DEFAULT_PASSWORD not in response.text and NEW_PASSWORD not in response.text
    assert await _signed_in(client)


async def test_a_change_ends_the_other_sessions_and_rotates_this_one(
    app: Starlette, new_client: ClientFactory, session: AsyncSession
) -> None:
    client = await new_client(roles=["viewer"])
    user_id, username = client.user_id, client.username  # type: ignore[attr-defined]
    other = await _second_browser(app, username, "other browser")
    old_cookie = _with_cookies_of(app, client)
    try:
        changed = await _change(client, DEFAULT_PASSWORD)
        assert changed.status_code == 303
        assert urlsplit(changed.headers["location"]).path == "/admin/me"
        me = await client.get("/admin/me")
        assert me.status_code == 200 and "Your password was changed." in me.text
        # The old cookie of this very browser, and the other browser, are refused at once.
        assert (await old_cookie.get("/admin/me")).status_code == 302
        assert (await other.get("/admin/me")).status_code == 302
        assert len(await _session_ids(session, user_id)) == 1
        actions = await _actions(session, user_id)
        assert account.PASSWORD_CHANGED in actions and "update" in actions
        async with client_for(app) as fresh:
            assert (await sign_in(fresh, username)).status_code == 400  # the old password: refused
            assert (await sign_in(fresh, username, NEW_PASSWORD)).status_code == 302
    finally:
        await other.aclose()
        await old_cookie.aclose()


async def test_writes_without_the_csrf_token_are_refused(
    app: Starlette, new_client: ClientFactory, session: AsyncSession
) -> None:
    client = await new_client(roles=["viewer"])
    user_id, username = client.user_id, client.username  # type: ignore[attr-defined]
    other = await _second_browser(app, username, "other browser")
    try:
        data = {
            "current_password": DEFAULT_PASSWORD,
            "password": NEW_PASSWORD,
            "password_confirm": NEW_PASSWORD,
        }
        assert (await client.post(PASSWORD_PAGE, data=data)).status_code == 403
        assert (await client.post(f"{SESSIONS_PAGE}/end-others")).status_code == 403
        other_id = (await _session_ids(session, user_id))["other browser"]
        assert (await client.post(f"{SESSIONS_PAGE}/end", data={"session": str(other_id)})).status_code == 403
        assert await _signed_in(other)
        assert account.PASSWORD_CHANGED not in await _actions(session, user_id)
    finally:
        await other.aclose()


async def test_a_half_signed_in_session_reaches_neither_page(app: Starlette, session: AsyncSession) -> None:
    role = await make_role(session, permissions=["product.view"], requires_two_factor=True)
    user = await make_user(session)
    user.roles = [role]
    await session.commit()
    async with client_for(app) as client:
        assert (await sign_in(client, user.username)).status_code == 302  # on to enrolment
        token = await page_token(client, "/admin/two-factor/enrol")
        for path in (PASSWORD_PAGE, SESSIONS_PAGE):
            held = await client.get(path)
            assert held.status_code == 302
            assert urlsplit(held.headers["location"]).path == "/admin/two-factor/enrol"
        data = {
            "current_password": DEFAULT_PASSWORD,
            "password": NEW_PASSWORD,
            "password_confirm": NEW_PASSWORD,
        }
        assert (await client.post(PASSWORD_PAGE, data={**data, "csrf_token": token})).status_code == 403
        ended = await client.post(f"{SESSIONS_PAGE}/end-others", data={"csrf_token": token})
        assert ended.status_code == 403
    assert account.PASSWORD_CHANGED not in await _actions(session, user.id)


# My sessions -------------------------------------------------------------------------------------


async def test_the_sessions_page_lists_only_my_open_sessions(
    app: Starlette, new_client: ClientFactory, session: AsyncSession
) -> None:
    client = await new_client(roles=["viewer"])
    stranger = await new_client(roles=["viewer"])
    other = await _second_browser(app, client.username, FIREFOX)  # type: ignore[attr-defined]
    try:
        page = await client.get(SESSIONS_PAGE)
        assert page.status_code == 200
        mine = await _session_ids(session, client.user_id)  # type: ignore[attr-defined]
        theirs = await _session_ids(session, stranger.user_id)  # type: ignore[attr-defined]
        assert all(f'id="session-{i}"' in page.text for i in mine.values())
        assert not any(f'id="session-{i}"' in page.text for i in theirs.values())
        assert page.text.count('id="this-browser"') == 1
        assert "Firefox 128 on Linux" in page.text and 'id="end-other-sessions"' in page.text
    finally:
        await other.aclose()


async def test_ending_a_session_of_another_user_or_this_one_is_refused(
    new_client: ClientFactory, session: AsyncSession
) -> None:
    client = await new_client(roles=["viewer"])
    stranger = await new_client(roles=["viewer"])
    token = await page_token(client, SESSIONS_PAGE)
    [theirs] = (await _session_ids(session, stranger.user_id)).values()  # type: ignore[attr-defined]
    [this] = (await _session_ids(session, client.user_id)).values()  # type: ignore[attr-defined]
    foreign = await client.post(f"{SESSIONS_PAGE}/end", data={"session": str(theirs), "csrf_token": token})
    assert foreign.status_code == 404 and "You have no such open session." in foreign.text
    own = await client.post(f"{SESSIONS_PAGE}/end", data={"session": str(this), "csrf_token": token})
    assert own.status_code == 400 and "That is the session you are using now." in own.text
    for bad in ("", "abc", "-1", "9" * 40):
        garbage = await client.post(f"{SESSIONS_PAGE}/end", data={"session": bad, "csrf_token": token})
        assert garbage.status_code == 400 and "Choose a session to end." in garbage.text
    assert await _signed_in(client) and await _signed_in(stranger)
    assert account.SESSION_ENDED not in await _actions(session, client.user_id)  # type: ignore[attr-defined]


async def test_end_one_then_all_others_keeps_this_browser(
    app: Starlette, new_client: ClientFactory, session: AsyncSession
) -> None:
    client = await new_client(roles=["viewer"])
    user_id, username = client.user_id, client.username  # type: ignore[attr-defined]
    second = await _second_browser(app, username, "second")
    third = await _second_browser(app, username, "third")
    try:
        token = await page_token(client, SESSIONS_PAGE)
        second_id = (await _session_ids(session, user_id))["second"]
        ended = await client.post(
            f"{SESSIONS_PAGE}/end", data={"session": str(second_id), "csrf_token": token}
        )
        assert ended.status_code == 303 and urlsplit(ended.headers["location"]).path == SESSIONS_PAGE
        assert not await _signed_in(second) and await _signed_in(third)
        all_others = await client.post(f"{SESSIONS_PAGE}/end-others", data={"csrf_token": token})
        assert all_others.status_code == 303
        page = await client.get(SESSIONS_PAGE)
        assert "1 other session was ended." in page.text and 'id="no-other-sessions"' in page.text
        assert not await _signed_in(third) and await _signed_in(client)
        actions = await _actions(session, user_id)
        assert account.SESSION_ENDED in actions and account.SESSIONS_ENDED in actions
    finally:
        await second.aclose()
        await third.aclose()


# The role form's flag ----------------------------------------------------------------------------


async def test_the_role_form_sets_the_2fa_flag_audited_and_enforced_at_next_sign_in(
    app: Starlette, new_client: ClientFactory, session: AsyncSession
) -> None:
    role = await make_role(session, permissions=["product.view"])
    member = await make_user(session)
    member.roles = [role]
    await session.commit()
    role_id, member_name = role.id, member.username
    admin = await new_client(superuser=True)
    form = await admin.get(f"/admin/role/edit/{role.id}")
    assert form.status_code == 200 and 'name="requires_two_factor"' in form.text
    saved = await admin.post(
        f"/admin/role/edit/{role.id}",
        data={
            "name": role.name,
            "description": "",
            "permissions": ["product.view"],
            "requires_two_factor": "y",
            "_version": str(role.version),
            "csrf_token": csrf_from(form.text),
            "save": "Save",
        },
    )
    assert saved.status_code == 302, saved.text
    assert await session.scalar(select(Role.requires_two_factor).where(Role.id == role_id)) is True
    entry = await session.scalar(
        select(AuditEntry).where(
            AuditEntry.model == "role", AuditEntry.object_id == str(role_id), AuditEntry.action == "update"
        )
    )
    assert entry is not None and entry.changes["requires_two_factor"] == [False, True]
    assert entry.actor_id == admin.user_id  # type: ignore[attr-defined]
    async with client_for(app) as client:
        assert (await sign_in(client, member_name)).status_code == 302
        assert urlsplit((await client.get("/admin/")).headers["location"]).path == "/admin/two-factor/enrol"


async def test_the_role_create_form_takes_the_flag(new_client: ClientFactory, session: AsyncSession) -> None:
    admin = await new_client(superuser=True)
    form = await admin.get("/admin/role/create")
    created = await admin.post(
        "/admin/role/create",
        data={
            "name": "guarded",
            "permissions": ["product.view"],
            "requires_two_factor": "y",
            "csrf_token": csrf_from(form.text),
            "save": "Save",
        },
    )
    assert created.status_code == 302, created.text
    assert await session.scalar(select(Role.requires_two_factor).where(Role.name == "guarded")) is True
    unflagged = await admin.post(
        "/admin/role/create",
        data={
            "name": "open",
            "permissions": ["product.view"],
            "csrf_token": csrf_from(form.text),
            "save": "Save",
        },
    )
    assert unflagged.status_code == 302
    assert await session.scalar(select(Role.requires_two_factor).where(Role.name == "open")) is False


async def test_a_role_creator_without_role_change_cannot_set_the_flag(
    new_client: ClientFactory, session: AsyncSession
) -> None:
    creators = await make_role(session, permissions=["role.view", "role.add", "product.view"])
    await session.commit()
    client = await new_client(roles=[creators.name])
    form = await client.get("/admin/role/create")
    refused = await client.post(
        "/admin/role/create",
        data={
            "name": "flagged-by-creator",
            "permissions": ["product.view"],
            "requires_two_factor": "y",
            "csrf_token": csrf_from(form.text),
            "save": "Save",
        },
    )
    assert refused.status_code == 403
    assert await session.scalar(select(func.count()).where(Role.name == "flagged-by-creator")) == 0


# The crawler -------------------------------------------------------------------------------------


async def test_the_crawler_reaches_both_pages(app: Starlette, session: AsyncSession) -> None:
    user = await make_user(session, roles=["viewer"])
    await session.commit()
    escaped = EscapedErrors(app)
    transport = httpx.ASGITransport(app=escaped, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        assert (await sign_in(client, user.username)).status_code == 302
        result = await crawl(client, escaped, per_group=1, max_requests=400)
    reached = {urlsplit(visit.url).path for visit in result.visits if visit.status == 200}
    assert {PASSWORD_PAGE, SESSIONS_PAGE} <= reached
    assert not failures(result)
