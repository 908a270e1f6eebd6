"""Two-factor sign-in in the admin: enrolment from My account, the code step, a half-signed-in
session that reaches nothing else (every route walked), bad codes, throttling, the recovery path,
policy enforcement right after the password, and the administrator's reset under the authority rule."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import httpx
import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.applications import Starlette
from starlette.routing import Mount, Route

from admin.auth import FINISH_ENROLMENT, FINISH_SIGN_IN, SIGN_IN_EXPIRED
from backend.models import AuditEntry, AuthSession, User
from backend.services import two_factor
from tests.admin.conftest import (
    Apps,
    ClientFactory,
    client_for,
    csrf_from,
    enrol_through_page,
    page_token,
    sign_in,
    totp_code,
)
from tests.factories import make_role, make_user

CODE_PAGE = "/admin/two-factor"
ENROL_PAGE = "/admin/two-factor/enrol"
# Routes a browser without any session may open too: nothing a pending session gains.
OPEN_TO_ANYONE = {"/admin/login", "/admin/logout", "/admin/statics"}


async def _actions(session: AsyncSession, user_id: int) -> list[str]:
    found = await session.scalars(
        select(AuditEntry.action).where(AuditEntry.object_id == str(user_id)).order_by(AuditEntry.id)
    )
    return list(found)


async def _enrolled_client(
    new_client: ClientFactory, **kwargs: object
) -> tuple[httpx.AsyncClient, str, list[str]]:
    client = await new_client(**kwargs)
    secret, codes, confirmed = await enrol_through_page(client)
    assert confirmed.status_code == 200, confirmed.text
    return client, secret, codes


async def _pending(app: Starlette, username: str) -> httpx.AsyncClient:
    client = client_for(app)
    signed = await sign_in(client, username)
    assert signed.status_code == 302
    return client


def _wrong(secret: str) -> str:
    return "000000" if totp_code(secret) != "000000" and totp_code(secret, 1) != "000000" else "111111"


# Enrolment from My account --------------------------------------------------------------------


async def test_a_user_enrols_from_my_account_and_signs_in_with_a_code(
    app: Starlette, new_client: ClientFactory, session: AsyncSession
) -> None:
    client = await new_client(roles=["viewer"])
    me = await client.get("/admin/me")
    assert 'id="two-factor-enrol"' in me.text
    enrol = await client.get(ENROL_PAGE)
    assert enrol.status_code == 200 and "<svg" in enrol.text and 'id="totp-secret"' in enrol.text
    assert "<script" not in enrol.text.split('id="totp-qr"')[1].split("</div>")[0]
    secret, codes, confirmed = await enrol_through_page(client)
    assert confirmed.status_code == 200 and len(codes) == 10
    me = await client.get("/admin/me")
    assert 'id="recovery-codes-left"' in me.text and "10" in me.text
    assert two_factor.ENROLLED in await _actions(session, client.user_id)  # type: ignore[attr-defined]

    other = client_for(app)
    password_only = await sign_in(other, client.username)  # type: ignore[attr-defined]
    assert password_only.status_code == 302
    assert (await other.get("/admin/")).headers["location"].startswith("http://testserver/admin/two-factor")
    signed = await sign_in(other, client.username, totp_secret=secret, steps_ahead=1)  # type: ignore[attr-defined]
    assert signed.status_code == 302
    assert (await other.get("/admin/product/list")).status_code == 200
    await other.aclose()


async def test_an_enrolment_confirmed_with_a_wrong_code_stores_nothing(
    new_client: ClientFactory, session: AsyncSession
) -> None:
    client = await new_client()
    page = await client.get(ENROL_PAGE)
    token = page.text.split('name="form_token" value="')[1].split('"')[0]
    secret = page.text.split('<code id="totp-secret">')[1].split("<")[0]
    for bad in (_wrong(secret), "12 34 56", "١٢٣٤٥٦", ""):
        refused = await client.post(
            ENROL_PAGE, data={"code": bad, "form_token": token, "csrf_token": csrf_from(page.text)}
        )
        assert refused.status_code == 400 and 'id="enrol-error"' in refused.text
        assert secret in refused.text  # the same set-up, to try again
    expired = await client.post(
        ENROL_PAGE,
        data={"code": totp_code(secret), "form_token": "forged", "csrf_token": csrf_from(page.text)},
    )
    assert expired.status_code == 400 and "expired" in expired.text
    session.expire_all()
    stored = await session.scalar(select(User.totp_secret).where(User.id == client.user_id))  # type: ignore[attr-defined]
    assert stored is None


# The code step ---------------------------------------------------------------------------------


async def test_bad_codes_are_form_errors_and_throttled_like_passwords(
    app: Starlette, new_client: ClientFactory, settings: object
) -> None:
    enrolled, secret, _codes = await _enrolled_client(new_client)
    client = await _pending(app, enrolled.username)  # type: ignore[attr-defined]
    page = await client.get(CODE_PAGE)
    assert page.status_code == 200 and 'id="two-factor-code-form"' in page.text
    token = csrf_from(page.text)
    for bad in ("123 456", "12345", "x" * 5000):
        refused = await client.post(CODE_PAGE, data={"code": bad, "csrf_token": token})
        assert refused.status_code == 400 and 'id="code-error"' in refused.text
    statuses = []
    for _ in range(6):
        wrong = await client.post(CODE_PAGE, data={"code": _wrong(secret), "csrf_token": token})
        statuses.append(wrong.status_code)
    assert statuses[:5] == [400] * 5 and statuses[5] == 429
    right = await client.post(CODE_PAGE, data={"code": totp_code(secret, 1), "csrf_token": token})
    assert right.status_code == 429 and "Too many failed sign-in attempts" in right.text
    await client.aclose()


async def test_a_recovery_code_works_once(
    app: Starlette, new_client: ClientFactory, session: AsyncSession
) -> None:
    enrolled, _secret, codes = await _enrolled_client(new_client, roles=["viewer"])
    username = enrolled.username  # type: ignore[attr-defined]
    first = await _pending(app, username)
    token = csrf_from((await first.get(CODE_PAGE)).text)
    assert (await first.post(CODE_PAGE, data={"code": codes[0], "csrf_token": token})).status_code == 302
    assert (await first.get("/admin/")).status_code == 200
    second = await _pending(app, username)
    token = csrf_from((await second.get(CODE_PAGE)).text)
    reused = await second.post(CODE_PAGE, data={"code": codes[0], "csrf_token": token})
    assert reused.status_code == 400 and "used already" in reused.text
    assert two_factor.RECOVERY_USED in await _actions(session, enrolled.user_id)  # type: ignore[attr-defined]
    for client in (first, second):
        await client.aclose()


async def test_an_expired_challenge_is_a_clear_refusal(
    app: Starlette, new_client: ClientFactory, session: AsyncSession
) -> None:
    enrolled, secret, _codes = await _enrolled_client(new_client)
    client = await _pending(app, enrolled.username)  # type: ignore[attr-defined]
    token = csrf_from((await client.get(CODE_PAGE)).text)
    past = datetime.now(UTC) - timedelta(seconds=1)
    await session.execute(
        update(AuthSession)
        .where(AuthSession.user_id == enrolled.user_id, AuthSession.pending_factor.is_not(None))  # type: ignore[attr-defined]
        .values(expires_at=past)
    )
    await session.commit()
    refused = await client.post(CODE_PAGE, data={"code": totp_code(secret, 1), "csrf_token": token})
    assert refused.status_code == 403 and SIGN_IN_EXPIRED in refused.text
    assert (await client.get(CODE_PAGE)).headers["location"].startswith("http://testserver/admin/login")
    await client.aclose()


async def test_a_half_signed_in_session_reaches_nothing_but_the_code_form_and_sign_out(
    app: Starlette, new_client: ClientFactory
) -> None:
    enrolled, _secret, _codes = await _enrolled_client(new_client, superuser=True)
    client = await _pending(app, enrolled.username)  # type: ignore[attr-defined]
    token = csrf_from((await client.get(CODE_PAGE)).text)
    walked = 0
    for path, methods in _admin_routes(app):
        if any(path.startswith(prefix) for prefix in OPEN_TO_ANYONE) or path == CODE_PAGE:
            continue
        for method in methods - {"HEAD", "OPTIONS"}:
            walked += 1
            response = await client.request(
                method, path, data={"csrf_token": token}, headers={"X-CSRF-Token": token}
            )
            where = f"{method} {path} -> {response.status_code}"
            if method == "GET":
                assert response.status_code == 302, where
                assert urlsplit(response.headers["location"]).path == CODE_PAGE, where
            else:
                assert response.status_code == 403, where
                assert FINISH_SIGN_IN in response.text, where
            assert "Traceback" not in response.text
    assert walked > 40
    logout = await client.post("/admin/logout", data={"csrf_token": token})
    assert logout.status_code == 302
    assert (await client.get(CODE_PAGE)).headers["location"].startswith("http://testserver/admin/login")
    await client.aclose()


def _admin_routes(app: Starlette) -> list[tuple[str, set[str]]]:
    """Every route of the admin with its methods, path parameters filled with a plausible value."""
    mount = next(route for route in app.routes if isinstance(route, Mount) and route.path == "/admin")
    found = []
    for route in mount.routes:
        if isinstance(route, Route):
            path = route.path.replace("{identity}", "product")
            for name in route.param_convertors:
                path = path.replace(f"{{{name}}}", "1")
            found.append(("/admin" + path, set(route.methods or {"GET"})))
    return found


# Policy ------------------------------------------------------------------------------------------


async def test_policy_sends_a_superuser_to_enrolment_before_anything_else(
    make_app: Apps, session: AsyncSession
) -> None:
    app, _database = make_app(require_2fa_for="superusers")
    user = await make_user(session, is_superuser=True)
    await session.commit()
    async with client_for(app) as client:
        assert (await sign_in(client, user.username)).status_code == 302
        landing = await client.get("/admin/user/list")
        assert urlsplit(landing.headers["location"]).path == ENROL_PAGE
        token = csrf_from((await client.get(ENROL_PAGE)).text)
        refused = await client.post("/admin/me", data={"locale": "de", "csrf_token": token})
        assert refused.status_code == 403 and FINISH_ENROLMENT in refused.text
        assert (await client.get(CODE_PAGE)).status_code == 302  # not its step
        secret, codes, done = await enrol_through_page(client)
        assert done.status_code == 200 and len(codes) == 10
        assert (await client.get("/admin/user/list")).status_code == 200
    async with client_for(app) as again:
        assert (await sign_in(again, user.username, totp_secret=secret, steps_ahead=1)).status_code == 302
        assert (await again.get("/admin/user/list")).status_code == 200


async def test_a_role_flag_requires_enrolment_of_its_holders(make_app: Apps, session: AsyncSession) -> None:
    app, _database = make_app()
    role = await make_role(session, permissions=["product.view"], requires_two_factor=True)
    holder = await make_user(session)
    holder.roles = [role]
    await session.commit()
    async with client_for(app) as client:
        assert (await sign_in(client, holder.username)).status_code == 302
        assert urlsplit((await client.get("/admin/")).headers["location"]).path == ENROL_PAGE


async def test_a_required_factor_cannot_be_turned_off_an_optional_one_can(
    new_client: ClientFactory, session: AsyncSession
) -> None:
    client, secret, _codes = await _enrolled_client(new_client)
    token = await page_token(client, "/admin/me")
    wrong = await client.post("/admin/two-factor/remove", data={"code": _wrong(secret), "csrf_token": token})
    assert wrong.status_code == 303
    assert "used already" in (await client.get("/admin/me")).text
    removed = await client.post(
        "/admin/two-factor/remove", data={"code": totp_code(secret, 1), "csrf_token": token}
    )
    assert removed.status_code == 303
    assert 'id="two-factor-enrol"' in (await client.get("/admin/me")).text
    assert two_factor.REMOVED in await _actions(session, client.user_id)  # type: ignore[attr-defined]


async def test_the_owner_renews_recovery_codes_with_a_current_code_and_the_old_ones_stop_working(
    app: Starlette, new_client: ClientFactory, session: AsyncSession
) -> None:
    client, secret, old_codes = await _enrolled_client(new_client, roles=["viewer"])
    page = (await client.get("/admin/me")).text
    assert 'id="recovery-codes-form"' in page
    token = csrf_from(page)
    renew = "/admin/two-factor/recovery-codes"
    assert (await client.post(renew, data={"code": totp_code(secret, 1)})).status_code == 403  # no CSRF
    wrong = await client.post(renew, data={"code": _wrong(secret), "csrf_token": token})
    assert wrong.status_code == 303 and "used already" in (await client.get("/admin/me")).text
    renewed = await client.post(renew, data={"code": totp_code(secret, 1), "csrf_token": token})
    assert renewed.status_code == 200 and "New recovery codes" in renewed.text
    new_codes = [line.strip() for line in renewed.text.split("<li>")[1:]]
    new_codes = [code.split("</li>")[0] for code in new_codes]
    assert len(new_codes) == 10 and not set(new_codes) & set(old_codes)
    actions = await _actions(session, client.user_id)  # type: ignore[attr-defined]
    assert two_factor.RECOVERY_RENEWED in actions and two_factor.FAILED in actions

    username = client.username  # type: ignore[attr-defined]
    pending = await _pending(app, username)
    token = csrf_from((await pending.get(CODE_PAGE)).text)
    old = await pending.post(CODE_PAGE, data={"code": old_codes[1], "csrf_token": token})
    assert old.status_code == 400
    assert (
        await pending.post(CODE_PAGE, data={"code": new_codes[0], "csrf_token": token})
    ).status_code == 302
    await pending.aclose()


# The administrator's reset ----------------------------------------------------------------------


async def test_reset_is_refused_for_an_account_holding_more(
    app: Starlette, new_client: ClientFactory, session: AsyncSession
) -> None:
    superuser, _secret, _codes = await _enrolled_client(new_client, superuser=True)
    managers = await make_role(session, permissions=["user.view", "user.change"])
    await session.commit()
    manager = await new_client(roles=[managers.name])
    target = superuser.user_id  # type: ignore[attr-defined]
    token = await page_token(manager, "/admin/")
    refused = await manager.post(
        f"/admin/user/action/reset-two-factor?pks={target}", data={"csrf_token": token}
    )
    assert refused.status_code == 403 and "Only a superuser can reset the second factor of" in refused.text
    session.expire_all()
    assert await session.scalar(select(User.totp_enrolled_at).where(User.id == target)) is not None


async def test_a_superuser_resets_a_users_factor_which_ends_their_sessions(
    app: Starlette, new_client: ClientFactory, session: AsyncSession
) -> None:
    user, secret, _codes = await _enrolled_client(new_client, roles=["viewer"])
    signed_in = await _pending(app, user.username)  # type: ignore[attr-defined]
    token = csrf_from((await signed_in.get(CODE_PAGE)).text)
    assert (
        await signed_in.post(CODE_PAGE, data={"code": totp_code(secret, 1), "csrf_token": token})
    ).status_code == 302
    admin = await new_client(superuser=True)
    listing = await admin.get("/admin/user/list")
    assert "2FA enrolled" in listing.text
    details = await admin.get(f"/admin/user/details/{user.user_id}")  # type: ignore[attr-defined]
    assert "reset-two-factor" in details.text
    token = await page_token(admin, "/admin/")
    done = await admin.post(
        f"/admin/user/action/reset-two-factor?pks={user.user_id}", data={"csrf_token": token}
    )  # type: ignore[attr-defined]
    assert done.status_code == 302
    assert "was reset" in (await admin.get(done.headers["location"])).text
    assert (await signed_in.get("/admin/")).status_code == 302  # their session ended
    session.expire_all()
    assert await session.scalar(select(User.totp_secret).where(User.id == user.user_id)) is None  # type: ignore[attr-defined]
    assert two_factor.RESET in await _actions(session, user.user_id)  # type: ignore[attr-defined]
    again = await admin.post(
        f"/admin/user/action/reset-two-factor?pks={user.user_id}", data={"csrf_token": token}
    )  # type: ignore[attr-defined]
    assert again.status_code == 302
    assert "no second factor" in (await admin.get(again.headers["location"])).text
    await signed_in.aclose()


@pytest.mark.parametrize("pks", ["", "1,2", "abc"])
async def test_reset_takes_one_valid_user(new_client: ClientFactory, pks: str) -> None:
    admin = await new_client(superuser=True)
    token = await page_token(admin, "/admin/")
    response = await admin.post(f"/admin/user/action/reset-two-factor?pks={pks}", data={"csrf_token": token})
    # A malformed id is a 404, as everywhere in the admin.
    assert response.status_code in (302, 400, 404) and "Traceback" not in response.text
