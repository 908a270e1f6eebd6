"""Passkeys in the admin: added on My account and removed there, used at the second step of signing
in, with a software authenticator answering the JSON endpoints as the page's script would. CSRF,
a half-signed-in session, anonymous requests and bad input each get a 4xx, never a 5xx."""

from __future__ import annotations

from typing import Any

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.applications import Starlette

from backend.models import AuditEntry
from backend.models.two_factor import Passkey
from backend.services import passkeys, two_factor
from tests.admin.conftest import ClientFactory, client_for, csrf_from, page_token, sign_in
from tests.passkey_authenticator import SoftAuthenticator

ORIGIN = "http://testserver"
CODE_PAGE = "/admin/two-factor"


async def _json(client: httpx.AsyncClient, path: str, body: Any, *, token: str | None) -> httpx.Response:
    headers = {"content-type": "application/json"}
    if token is not None:
        headers["x-csrf-token"] = token
    content = body if isinstance(body, bytes) else httpx.Request("POST", "/", json=body).content
    return await client.post(path, content=content, headers=headers)


async def _add(client: httpx.AsyncClient, name: str = "laptop") -> tuple[SoftAuthenticator, httpx.Response]:
    token = await page_token(client, "/admin/me")
    options = await _json(client, "/admin/passkeys/options", {"name": name}, token=token)
    assert options.status_code == 200, options.text
    device = SoftAuthenticator()
    answer = device.create(options.json()["publicKey"], origin=ORIGIN)
    body = {"challenge": options.json()["challenge"], "credential": answer}
    return device, await _json(client, "/admin/passkeys/register", body, token=token)


def _id(client: httpx.AsyncClient) -> int:
    user_id = getattr(client, "user_id", None)  # set by `new_client`
    assert isinstance(user_id, int)
    return user_id


async def _actions(session: AsyncSession, user_id: int) -> list[str]:
    found = await session.scalars(
        select(AuditEntry.action).where(AuditEntry.object_id == str(user_id)).order_by(AuditEntry.id)
    )
    return list(found)


async def test_a_user_adds_a_passkey_on_my_account_and_signs_in_with_it(
    app: Starlette, new_client: ClientFactory, session: AsyncSession
) -> None:
    client = await new_client(roles=["viewer"])
    me = await client.get("/admin/me")
    assert 'id="passkey-add-form"' in me.text and 'id="no-passkeys"' in me.text and "passkeys.js" in me.text
    assert "<script>" not in me.text.split('id="passkeys"')[1]  # a script file, nothing inline
    device, added = await _add(client, "my laptop")
    assert added.status_code == 200 and added.json()["redirect"].endswith("/admin/me")
    me = await client.get("/admin/me")
    assert "Passkey my laptop added." in me.text and 'class="passkey-name">my laptop<' in me.text
    assert two_factor.PASSKEY_ADDED in await _actions(session, _id(client))

    other = client_for(app)
    assert (await sign_in(other, client.username)).status_code == 302  # type: ignore[attr-defined]
    page = await other.get(CODE_PAGE)
    assert 'id="use-passkey"' in page.text and 'name="code"' not in page.text  # no app: no code field
    token = csrf_from(page.text)
    options = await _json(other, CODE_PAGE, {"step": "options"}, token=token)
    assert options.status_code == 200 and options.json()["publicKey"]["rpId"] == "testserver"
    answer = device.get(options.json()["publicKey"], origin=ORIGIN)
    body = {"step": "verify", "challenge": options.json()["challenge"], "credential": answer, "next": ""}
    verified = await _json(other, CODE_PAGE, body, token=token)
    assert verified.status_code == 200, verified.text
    assert verified.json()["redirect"] == "http://testserver/admin/"
    assert (await other.get("/admin/product/list")).status_code == 200
    # the same answer again, from the now signed-in session: nothing is pending, nothing opens twice
    again = await _json(other, CODE_PAGE, body, token=await page_token(other))
    assert again.status_code in {302, 303}
    await other.aclose()


async def test_json_endpoints_check_csrf_the_session_and_their_input(
    app: Starlette, new_client: ClientFactory, session: AsyncSession
) -> None:
    client = await new_client()
    no_token = await _json(client, "/admin/passkeys/options", {"name": "x"}, token=None)
    assert no_token.status_code == 403
    wrong_token = await _json(client, "/admin/passkeys/options", {"name": "x"}, token="forged")
    assert wrong_token.status_code == 403
    token = await page_token(client, "/admin/me")
    cases: tuple[tuple[bytes | dict[str, object], int], ...] = (
        (b"{not json", 400),
        (b"[]", 400),
        ({"name": ""}, 400),
        ({"name": "n" * 65}, 400),
    )
    for body, status in cases:
        refused = await _json(client, "/admin/passkeys/options", body, token=token)
        assert refused.status_code == status and refused.json()["error"], refused.text
    bodies: tuple[dict[str, object], ...] = (
        {"challenge": "forged", "credential": {}},
        {"challenge": 1, "credential": "x"},
        {},
    )
    for payload in bodies:
        refused = await _json(client, "/admin/passkeys/register", payload, token=token)
        assert refused.status_code == 400 and refused.json()["error"] == passkeys.CHALLENGE_EXPIRED
    options = await _json(client, "/admin/passkeys/options", {"name": "k"}, token=token)
    garbage = await _json(
        client,
        "/admin/passkeys/register",
        {"challenge": options.json()["challenge"], "credential": {"id": 3}},
        token=token,
    )
    assert garbage.status_code == 400 and garbage.json()["error"] == passkeys.BAD_RESPONSE
    device = SoftAuthenticator()
    evil = device.create(options.json()["publicKey"], origin="http://evil.test")
    wrong_origin = await _json(
        client,
        "/admin/passkeys/register",
        {"challenge": options.json()["challenge"], "credential": evil},
        token=token,
    )
    assert wrong_origin.status_code == 400 and wrong_origin.json()["error"] == passkeys.NOT_VERIFIED
    assert await session.scalar(select(Passkey).where(Passkey.user_id == _id(client))) is None

    anonymous = client_for(app)
    assert (await _json(anonymous, "/admin/passkeys/options", {"name": "x"}, token="t")).status_code in {
        302,
        403,
    }
    assert (await _json(anonymous, CODE_PAGE, {"step": "options"}, token="t")).status_code in {302, 403}
    await anonymous.aclose()


async def test_a_half_signed_in_session_reaches_only_the_sign_in_step(
    app: Starlette, new_client: ClientFactory, session: AsyncSession
) -> None:
    owner = await new_client()
    device, added = await _add(owner)
    assert added.status_code == 200
    half = client_for(app)
    await sign_in(half, owner.username)  # type: ignore[attr-defined]
    token = csrf_from((await half.get(CODE_PAGE)).text)
    assert (await _json(half, "/admin/passkeys/options", {"name": "more"}, token=token)).status_code == 403
    removal = await half.post("/admin/passkeys/remove", data={"passkey": "1", "csrf_token": token})
    assert removal.status_code == 403
    assert (await _json(half, CODE_PAGE, {"step": "dance"}, token=token)).status_code == 400
    assert (await _json(half, CODE_PAGE, b"\xff", token=token)).status_code == 400
    # an answer for another challenge, and a stale token: clear refusals, counted or not
    options = await _json(half, CODE_PAGE, {"step": "options"}, token=token)
    stranger = SoftAuthenticator()
    refused = await _json(
        half,
        CODE_PAGE,
        {
            "step": "verify",
            "challenge": options.json()["challenge"],
            "credential": stranger.get(options.json()["publicKey"], origin=ORIGIN),
        },
        token=token,
    )
    assert refused.status_code == 400 and refused.json()["error"] == passkeys.NOT_VERIFIED
    assert two_factor.PASSKEY_FAILED in await _actions(session, _id(owner))
    expired = await _json(
        half,
        CODE_PAGE,
        {
            "step": "verify",
            "challenge": "stale",
            "credential": device.get(options.json()["publicKey"], origin=ORIGIN),
        },
        token=token,
    )
    assert expired.status_code == 400 and expired.json()["error"] == passkeys.CHALLENGE_EXPIRED
    await half.aclose()


async def test_the_owner_removes_a_passkey_with_a_form_and_nobody_else(
    new_client: ClientFactory, session: AsyncSession
) -> None:
    ada = await new_client(roles=["manager"])
    bob = await new_client(roles=["editor"])
    _, added = await _add(ada, "phone")
    assert added.status_code == 200
    passkey = await session.scalar(select(Passkey).where(Passkey.user_id == _id(ada)))
    assert passkey is not None
    no_csrf = await ada.post("/admin/passkeys/remove", data={"passkey": str(passkey.id)})
    assert no_csrf.status_code == 403
    theirs = await bob.post(
        "/admin/passkeys/remove", data={"passkey": str(passkey.id), "csrf_token": await page_token(bob)}
    )
    assert theirs.status_code == 303
    assert "no such passkey" in (await bob.get("/admin/me")).text
    for bad in ("", "abc", "٣", "9" * 40):
        odd = await ada.post(
            "/admin/passkeys/remove", data={"passkey": bad, "csrf_token": await page_token(ada)}
        )
        assert odd.status_code == 303
    removed = await ada.post(
        "/admin/passkeys/remove", data={"passkey": str(passkey.id), "csrf_token": await page_token(ada)}
    )
    assert removed.status_code == 303
    assert "Passkey phone removed." in (await ada.get("/admin/me")).text
    session.expire_all()
    assert await session.scalar(select(Passkey).where(Passkey.user_id == _id(ada))) is None
    assert two_factor.PASSKEY_REMOVED in await _actions(session, _id(ada))


async def test_a_page_opened_at_an_ip_address_is_told_to_use_the_sites_name(
    new_client: ClientFactory,
) -> None:
    """Browsers take only a domain name as the RP id: say so, rather than let the browser refuse."""
    client = await new_client()
    token = await page_token(client, "/admin/me")
    content = httpx.Request("POST", "/", json={"name": "laptop"}).content
    headers = {"content-type": "application/json", "x-csrf-token": token, "host": "127.0.0.1:8000"}
    refused = await client.post("/admin/passkeys/options", content=content, headers=headers)
    assert refused.status_code == 400, refused.text
    assert "not at an IP address" in refused.json()["error"]
