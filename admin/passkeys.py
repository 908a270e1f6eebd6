"""Passkeys in the admin: add and remove them on My account, sign in with one at the second step.

The browser's own WebAuthn API does the ceremony (admin/static/passkeys.js: a script file, no
inline script, so the CSP holds); the server answers JSON:

- `POST /admin/passkeys/options` `{"name"}`: options to create a passkey, and the signed challenge;
- `POST /admin/passkeys/register` `{"challenge", "credential"}`: keep the passkey created;
- `POST /admin/passkeys/remove` (a form: `passkey`): remove one, back to My account;
- `POST /admin/two-factor` with a JSON body `{"step": "options"}` or `{"step": "verify", "challenge",
  "credential", "next"}`: the second step of signing in (the only page a session pending a code
  reaches, admin/auth.py), handled by `sign_in_step`.

Adding and removing need a fully signed-in user (a session pending its second step reaches none of
them). Every POST carries the CSRF token (the `X-CSRF-Token` header for JSON, checked with the
session in admin/auth.py). Bad input is a 4xx with `{"error": "<sentence>"}`, which the script shows.

The relying party: `WEBAUTHN_RP_ID` and `WEBAUTHN_ORIGIN` when set, else the request's own host
and origin (fine behind a proxy that keeps the Host header; set both in production).
"""

from __future__ import annotations

import ipaddress
import json
from typing import Any

from sqladmin import expose
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response

from admin import i18n, outcomes
from admin.auth import (
    SESSION_TOKEN_KEY,
    client_address,
    current_actor,
    next_to_keep,
    safe_next_url,
    start_session,
)
from admin.requests import request_uow
from backend.config import Settings
from backend.errors import AppError, Conflict, PermissionDenied, ValidationFailed
from backend.services.auth import AuthService
from backend.services.passkeys import PasskeyService, RelyingParty

# The services' fixed sentences, marked for the catalog: shown through `i18n.gettext(message)`.
SERVICE_SENTENCES = (
    i18n.lazy_gettext("Give the passkey a name (at most 64 characters), e.g. the device that holds it."),
    i18n.lazy_gettext("You already have a passkey with this name."),
    i18n.lazy_gettext("You have 20 passkeys already: remove one before adding another."),
    i18n.lazy_gettext("This passkey request has expired or was not made for you. Try again."),
    i18n.lazy_gettext("The browser's answer is not a passkey response. Try again."),
    i18n.lazy_gettext("The passkey could not be verified. Try again, or use another passkey."),
    i18n.lazy_gettext("This passkey is registered already."),
    i18n.lazy_gettext("No passkey is registered for this account."),
    i18n.lazy_gettext("Your roles require two-factor sign-in: this passkey is your last second factor."),
    i18n.lazy_gettext("Only the account's owner, signed in, manages their passkeys."),
    i18n.lazy_gettext("You have no such passkey: it may have been removed already."),
    i18n.lazy_gettext("Send a JSON object from the passkey buttons of this admin."),
)
AT_AN_ADDRESS = i18n.lazy_gettext(
    "Passkeys work at the site's name, not at an IP address: open the admin at its name "
    "(http://localhost:8000 rather than http://127.0.0.1:8000), or set WEBAUTHN_RP_ID."
)
NOT_JSON = "Send a JSON object from the passkey buttons of this admin."
MAX_ID_LENGTH = 20


def relying_party(request: Request, settings: Settings) -> RelyingParty:
    """The RP id and origin: the settings', else this request's host and origin.

    Raises `ValidationFailed` when the page was opened at an IP address: browsers accept only a
    domain name as the RP id, and would refuse with an error the page cannot explain.
    """
    host = request.url.hostname or ""
    if not settings.webauthn_rp_id and _is_ip_address(host):
        raise ValidationFailed({"": [AT_AN_ADDRESS]}, AT_AN_ADDRESS)
    origin = f"{request.url.scheme}://{request.url.netloc}"
    return RelyingParty(id=settings.webauthn_rp_id or host, origin=settings.webauthn_origin or origin)


def _is_ip_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


def wants_json(request: Request) -> bool:
    return request.headers.get("content-type", "").split(";")[0].strip().lower() == "application/json"


def refusal(message: str, status_code: int) -> JSONResponse:
    """A 4xx the script shows as it is: the sentence in the user's language."""
    return JSONResponse({"error": i18n.gettext(message)}, status_code=status_code)


def status_of(exc: AppError) -> int:
    if isinstance(exc, PermissionDenied):
        return 403
    if isinstance(exc, Conflict):
        return 409
    return 404 if not isinstance(exc, ValidationFailed) else 400


async def json_body(request: Request) -> dict[str, Any]:
    """The request's JSON object, or a 400 with a sentence (raised as `ValidationFailed`)."""
    if not wants_json(request):
        raise ValidationFailed({"": [NOT_JSON]}, NOT_JSON)
    try:
        body = json.loads(await request.body())
    except (ValueError, UnicodeError):
        body = None
    if not isinstance(body, dict):
        raise ValidationFailed({"": [NOT_JSON]}, NOT_JSON)
    return body


def _text(body: dict[str, Any], name: str, limit: int = 4000) -> str:
    value = body.get(name)
    return value[:limit] if isinstance(value, str) else ""


class PasskeyRoutes:
    """The passkey routes of My account, mixed into the two-factor pages' view (admin/two_factor.py)."""

    @expose("/passkeys/options", methods=["POST"], identity="passkey-options")
    async def passkey_options(self, request: Request) -> Response:
        user_id = _signed_in(request)
        uow = await request_uow(request)
        try:
            body = await json_body(request)
            ceremony = await PasskeyService(uow).registration_options(
                user_id, _text(body, "name", 400), relying_party(request, uow.settings)
            )
        except AppError as exc:
            return refusal(exc.message, status_of(exc))
        return JSONResponse({"publicKey": ceremony.options, "challenge": ceremony.challenge_token})

    @expose("/passkeys/register", methods=["POST"], identity="passkey-register")
    async def passkey_register(self, request: Request) -> Response:
        user_id = _signed_in(request)
        uow = await request_uow(request)
        try:
            body = await json_body(request)
            passkey = await PasskeyService(uow).register(
                user_id,
                _text(body, "challenge"),
                body.get("credential"),
                relying_party(request, uow.settings),
            )
        except AppError as exc:
            return refusal(exc.message, status_of(exc))
        await uow.commit()
        outcomes.succeeded(request, i18n.translated("Passkey %(name)s added.", name=passkey.name))
        return JSONResponse({"redirect": str(request.url_for("admin:view-me"))})

    @expose("/passkeys/remove", methods=["POST"], identity="passkey-remove")
    async def passkey_remove(self, request: Request) -> Response:
        user_id = _signed_in(request)
        me = str(request.url_for("admin:view-me"))
        value = (await request.form()).get("passkey")
        text = value.strip() if isinstance(value, str) else ""
        if not text.isascii() or not text.isdigit() or len(text) > MAX_ID_LENGTH:
            outcomes.refused(request, i18n.gettext("Choose a passkey to remove."))
            return RedirectResponse(me, status_code=303)
        uow = await request_uow(request)
        try:
            name = await PasskeyService(uow).remove(user_id, int(text))
        except AppError as exc:
            outcomes.refused(request, i18n.gettext(exc.message))
            return RedirectResponse(me, status_code=303)
        await uow.commit()
        outcomes.succeeded(request, i18n.translated("Passkey %(name)s removed.", name=name))
        return RedirectResponse(me, status_code=303)


async def sign_in_step(request: Request) -> Response:
    """The second step of signing in with a passkey, for a session pending a code (JSON both ways)."""
    uow = await request_uow(request)
    auth = AuthService(uow)
    token = str(request.session.get(SESSION_TOKEN_KEY, ""))
    try:
        rp = relying_party(request, uow.settings)
        body = await json_body(request)
        if body.get("step") == "options":
            ceremony = await auth.passkey_options(token, rp)
            return JSONResponse({"publicKey": ceremony.options, "challenge": ceremony.challenge_token})
        if body.get("step") != "verify":
            raise ValidationFailed({"": [NOT_JSON]}, NOT_JSON)
        outcome = await auth.pass_passkey(
            token,
            _text(body, "challenge"),
            body.get("credential"),
            rp=rp,
            client_address=client_address(request),
        )
    except AppError as exc:
        return refusal(exc.message, status_of(exc))
    await uow.commit()  # a refusal is recorded too: it counts toward throttling
    if outcome.token is None:
        return refusal(outcome.message, 429 if outcome.throttled else 400)
    start_session(request, outcome.token)
    next_url = next_to_keep(request, _text(body, "next", 2000))
    return JSONResponse({"redirect": safe_next_url(request, next_url)})


def _signed_in(request: Request) -> int:
    user_id = current_actor(request).user_id
    if user_id is None:
        raise HTTPException(status_code=403)
    return user_id
