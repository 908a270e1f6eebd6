"""Two-factor sign-in pages: the code asked after the password, setting up an app, turning it off.

- `/admin/two-factor`: the second step of signing in, for a session pending a code
  (admin/auth.py lets such a session open this page and sign-out only). A TOTP code or a
  recovery code; wrong codes are throttled like passwords (backend/services/auth.py).
- `/admin/two-factor/enrol`: set up an authenticator app: a QR code drawn on the server (an
  inline SVG: no script, nothing the CSP blocks) and the secret as text; a code confirms it and
  the ten recovery codes are shown once. Reached from My account, or right after the password
  when policy requires a second factor and the user has none (then nothing else opens first).
- `/admin/two-factor/remove`: the owner turns it off with a current code (unless policy requires it,
  and no passkey is left to answer it).

Passkeys (admin/passkeys.py) are the other second factor: the code page offers "Use a passkey" to a
user who has one (and the code form only to one with an app), and takes the passkey's JSON steps.

Every POST carries the CSRF token, checked with the session (admin/auth.py).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import segno
from markupsafe import Markup
from sqladmin import BaseView, expose
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from admin import i18n, outcomes
from admin.auth import (
    SESSION_TOKEN_KEY,
    client_address,
    current_actor,
    next_to_keep,
    pending_sign_in,
    safe_next_url,
    start_session,
)
from admin.passkeys import PasskeyRoutes, sign_in_step, wants_json
from admin.requests import request_uow
from backend.errors import AppError, Conflict, PermissionDenied, ValidationFailed
from backend.services.auth import CODE, ENROL, AuthService
from backend.services.two_factor import WRONG_CODE, Enrolment, TwoFactorService

# The services' fixed sentences, marked for the catalog: shown through `i18n.gettext(message)`.
SERVICE_SENTENCES = (
    i18n.lazy_gettext(
        "Enter the 6 digits your authenticator app shows (no spaces), or one of your recovery codes."
    ),
    i18n.lazy_gettext(
        "That code is not right, or it was used already. Wait for the next code and try again."
    ),
    i18n.lazy_gettext("Two-factor sign-in is already set up for this account."),
    i18n.lazy_gettext("Two-factor sign-in is not set up for this account."),
    i18n.lazy_gettext(
        "This set-up form has expired or was not made for you. Start again with a new QR code."
    ),
    i18n.lazy_gettext("Your sign-in expired before it was finished. Sign in again."),
    i18n.lazy_gettext("Your roles require two-factor sign-in: it cannot be removed."),
)
T = TypeVar("T")
MAX_FIELD = 4000  # a form value longer than any code or set-up token is cut, never parsed whole


class TwoFactorView(PasskeyRoutes, BaseView):
    """The second factor's pages, and the passkeys' (admin/passkeys.py); registered by
    admin/views/me.py, beside My account."""

    name = "Two-factor sign-in"
    identity = "two-factor"

    def is_accessible(self, request: Request) -> bool:
        # A pending session reaches only its own factor's page (admin/auth.py); a signed-in user
        # reaches set-up and removal.
        return current_actor(request).user_id is not None or pending_sign_in(request) is not None

    def is_visible(self, request: Request) -> bool:
        return False

    @expose("/two-factor", methods=["GET", "POST"], identity="two-factor-code")
    async def code(self, request: Request) -> Response:
        pending = pending_sign_in(request)
        next_url = next_to_keep(request, request.query_params.get("next"))
        if pending is None or pending.pending_factor != CODE:
            return RedirectResponse(safe_next_url(request, next_url), status_code=302)
        if request.method != "POST":
            return await self._code_page(request, next_url=next_url)
        if wants_json(request):
            return await sign_in_step(request)  # a passkey's options or answer
        form = await request.form()
        next_url = next_to_keep(request, _text(form, "next"))
        uow = await request_uow(request)
        token = request.session.get(SESSION_TOKEN_KEY, "")
        try:
            outcome = await AuthService(uow).pass_second_factor(
                str(token), _text(form, "code"), client_address=client_address(request)
            )
        except ValidationFailed as exc:
            return await self._code_page(request, next_url=next_url, error=exc.message, status_code=400)
        except (PermissionDenied, Conflict) as exc:
            raise HTTPException(status_code=403, detail=i18n.gettext(exc.message)) from None
        await uow.commit()  # a failure is recorded too: it counts toward throttling
        if outcome.token is None:
            status_code = 429 if outcome.throttled else 400
            return await self._code_page(
                request, next_url=next_url, error=outcome.message, status_code=status_code
            )
        start_session(request, outcome.token)
        return RedirectResponse(safe_next_url(request, next_url), status_code=302)

    @expose("/two-factor/enrol", methods=["GET", "POST"], identity="two-factor-enrol")
    async def enrol(self, request: Request) -> Response:
        pending = pending_sign_in(request)
        if pending is not None and pending.pending_factor != ENROL:
            raise HTTPException(status_code=403)
        user_id = pending.actor.user_id if pending else current_actor(request).user_id
        if user_id is None:
            raise HTTPException(status_code=403)
        uow = await request_uow(request)
        service = TwoFactorService(uow)
        query_next = request.query_params.get("next")
        if request.method != "POST":
            try:
                enrolment = await service.start_enrolment(user_id)
            except Conflict as exc:
                outcomes.refused(request, i18n.gettext(exc.message))
                return RedirectResponse(str(request.url_for("admin:view-me")), status_code=303)
            return await self._enrol_page(request, enrolment, next_url=next_to_keep(request, query_next))
        form = await request.form()
        next_url = next_to_keep(request, _text(form, "next"))
        form_token, code = _text(form, "form_token"), _text(form, "code")
        try:
            if pending is not None:
                outcome, codes = await AuthService(uow).finish_enrolment(
                    str(request.session.get(SESSION_TOKEN_KEY, "")),
                    form_token,
                    code,
                    client_address=client_address(request),
                )
            else:
                codes = await service.confirm_enrolment(user_id, form_token, code)
        except ValidationFailed as exc:
            await uow.commit()  # a wrong code is audited; nothing else was written
            again = await service.reopen_enrolment(user_id, form_token)
            return await self._enrol_page(
                request, again, next_url=next_url, error=exc.message, status_code=400
            )
        except (PermissionDenied, Conflict) as exc:
            raise HTTPException(status_code=409, detail=i18n.gettext(exc.message)) from None
        await uow.commit()
        if pending is not None and outcome.token is not None:
            start_session(request, outcome.token)
            continue_to = safe_next_url(request, next_url)
        else:
            continue_to = str(request.url_for("admin:view-me"))
        context = {"codes": codes, "continue_to": continue_to}
        return await self.templates.TemplateResponse(request, "custodian/two_factor_recovery.html", context)

    @expose("/two-factor/recovery-codes", methods=["POST"], identity="two-factor-recovery-codes")
    async def recovery_codes(self, request: Request) -> Response:
        """Ten new recovery codes, proven with a current code, shown once; the old ones stop working."""

        async def renew(service: TwoFactorService, user_id: int, code: str) -> list[str] | None:
            return await service.renew_recovery_codes(user_id, code)

        codes = await self._with_current_code(request, renew)
        if isinstance(codes, Response):
            return codes
        context = {"codes": codes, "continue_to": str(request.url_for("admin:view-me")), "renewed": True}
        return await self.templates.TemplateResponse(request, "custodian/two_factor_recovery.html", context)

    @expose("/two-factor/remove", methods=["POST"], identity="two-factor-remove")
    async def remove(self, request: Request) -> Response:
        async def turn_off(service: TwoFactorService, user_id: int, code: str) -> bool | None:
            return await service.remove(user_id, code) or None

        done = await self._with_current_code(request, turn_off)
        if isinstance(done, Response):
            return done
        outcomes.succeeded(request, i18n.gettext("Two-factor sign-in is off for your account."))
        return RedirectResponse(str(request.url_for("admin:view-me")), status_code=303)

    async def _with_current_code(
        self, request: Request, act: Callable[[TwoFactorService, int, str], Awaitable[T | None]]
    ) -> T | Response:
        """Run the owner's `act` with the form's code, throttled and counted like every code; its
        result once committed, or the redirect to My account with the reason it was refused."""
        actor = current_actor(request)
        if actor.user_id is None:
            raise HTTPException(status_code=403)
        me = RedirectResponse(str(request.url_for("admin:view-me")), status_code=303)
        uow = await request_uow(request)
        auth = AuthService(uow)
        throttled = await auth.code_throttled(actor.username, client_address(request))
        if throttled:
            outcomes.refused(request, i18n.gettext(throttled))
            return me
        try:
            result = await act(TwoFactorService(uow), actor.user_id, _text(await request.form(), "code"))
        except AppError as exc:
            outcomes.refused(request, i18n.gettext(exc.message))
            return me
        if result is None:  # a wrong code: audited by the service, counted here
            auth.count_failed_code(actor.username, client_address(request))
            await uow.commit()
            outcomes.refused(request, i18n.gettext(WRONG_CODE))
            return me
        await uow.commit()
        return result

    # Pages -----------------------------------------------------------------------------------

    async def _code_page(
        self, request: Request, *, next_url: str, error: str | None = None, status_code: int = 200
    ) -> Response:
        pending = pending_sign_in(request)
        uow = await request_uow(request)
        factors = await TwoFactorService(uow).status(pending.actor.user_id or 0) if pending else None
        context = {
            "next": next_url,
            "error": i18n.gettext(error) if error else None,
            "has_app": factors is None or factors.enrolled_at is not None,
            "has_passkeys": factors is not None and factors.passkeys > 0,
        }
        return await self.templates.TemplateResponse(
            request, "custodian/two_factor_code.html", context, status_code=status_code
        )

    async def _enrol_page(
        self,
        request: Request,
        enrolment: Enrolment,
        *,
        next_url: str,
        error: str | None = None,
        status_code: int = 200,
    ) -> Response:
        context: dict[str, Any] = {
            "qr_svg": qr_svg(enrolment.uri),
            "secret": enrolment.secret,
            "form_token": enrolment.form_token,
            "next": next_url,
            "error": i18n.gettext(error) if error else None,
            "during_sign_in": pending_sign_in(request) is not None,
        }
        return await self.templates.TemplateResponse(
            request, "custodian/two_factor_enrol.html", context, status_code=status_code
        )


def qr_svg(uri: str) -> Markup:
    """The otpauth URI as a QR code: an inline SVG of paths (no text from the URI, no style)."""
    code = segno.make(uri, error="m")
    return Markup(code.svg_inline(scale=4, border=2, dark="#000", light="#fff"))  # noqa: S704 - segno's paths


def _text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value[:MAX_FIELD] if isinstance(value, str) else ""
