"""My password and my sessions: the signed-in user's own, reached from My account.

/admin/me/password changes the password: the current one first (a wrong one counts
toward sign-in throttling), the new one twice, under the same policy as an
administrator's set-password form. Every other session then ends and this browser
goes on under a new session token (`start_session`: new cookie value, new CSRF token).

/admin/me/sessions lists the user's open sessions, this browser's marked, and ends
any other one, or all others. Each write is a POST with the CSRF token (checked with
the session, admin/auth.py) and audited through `AccountService`. A session signed
in by password only never reaches these pages (admin/auth.py holds it at its factor).
"""

from __future__ import annotations

import re
from typing import Any

from sqladmin import BaseView, expose
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from wtforms import PasswordField
from wtforms.validators import EqualTo, InputRequired, Length

from admin import i18n, outcomes
from admin.auth import SESSION_TOKEN_KEY, client_address, current_actor, start_session
from admin.forms import StyledForm
from admin.requests import request_uow
from backend.auth.passwords import MAX_PASSWORD_LENGTH
from backend.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from backend.services.account import AccountService
from backend.values import InvalidValue, parse_id

# The service's fixed sentences, marked for the catalog: shown through `i18n.gettext(message)`.
SERVICE_SENTENCES = (
    i18n.lazy_gettext("Your session has ended. Sign in again."),
    i18n.lazy_gettext("Your current password is not right."),
    i18n.lazy_gettext("Choose a new password, not the current one."),
    i18n.lazy_gettext("Your password was changed. Your other sessions have ended."),
    i18n.lazy_gettext("You have no such open session. It may have ended already."),
    i18n.lazy_gettext("That is the session you are using now. Sign out to end it."),
    i18n.lazy_gettext("The password is not acceptable."),
)
# Browser and system names picked out of a user agent, first match wins (Edge and Opera say Chrome too).
BROWSERS = (
    ("Edge", re.compile(r"Edg(?:e|A|iOS)?/(\d+)")),
    ("Opera", re.compile(r"OPR/(\d+)")),
    ("Firefox", re.compile(r"(?:Firefox|FxiOS)/(\d+)")),
    ("Chrome", re.compile(r"(?:Chrome|CriOS)/(\d+)")),
    ("Safari", re.compile(r"Version/(\d+)[.\d]* (?:Mobile/\S+ )?Safari/")),
)
SYSTEMS = (
    ("Android", "Android"),
    ("iPhone", "iOS"),
    ("iPad", "iPadOS"),
    ("Windows", "Windows"),
    ("Mac OS X", "macOS"),
    ("CrOS", "ChromeOS"),
    ("Linux", "Linux"),
)
AGENT_LIMIT = 60


def short_agent(user_agent: str) -> str:
    """A user agent as a person names it ("Firefox 128 on Linux"), else its first characters."""
    browser = next(
        (f"{name} {match.group(1)}" for name, pattern in BROWSERS if (match := pattern.search(user_agent))),
        None,
    )
    system = next((name for token, name in SYSTEMS if token in user_agent), None)
    if browser and system:
        return i18n.translated("%(browser)s on %(system)s", browser=browser, system=system)
    if browser or system:
        return browser or system or ""
    text = user_agent.strip()
    return text if len(text) <= AGENT_LIMIT else text[: AGENT_LIMIT - 1] + "…"


class ChangePasswordForm(StyledForm):
    # No length limit on the current password: a longer one is a wrong one, counted as such.
    current_password = PasswordField(
        i18n.lazy_gettext("Current password"),
        validators=[InputRequired()],
        render_kw={"autocomplete": "current-password"},
    )
    password = PasswordField(
        i18n.lazy_gettext("New password"),
        validators=[InputRequired(), Length(max=MAX_PASSWORD_LENGTH)],
        render_kw={"autocomplete": "new-password"},
    )
    password_confirm = PasswordField(
        i18n.lazy_gettext("New password (again)"),
        validators=[
            InputRequired(),
            EqualTo("password", message=i18n.lazy_gettext("The two passwords differ.")),
        ],
        render_kw={"autocomplete": "new-password"},
    )


class MyAccountSecurityView(BaseView):
    """The signed-in user's password and sessions (no permission: their own account)."""

    name = "Password and sessions"
    identity = "me-security"

    def is_accessible(self, request: Request) -> bool:
        return current_actor(request).user_id is not None

    def is_visible(self, request: Request) -> bool:
        return False  # linked from My account

    @expose("/me/password", methods=["GET", "POST"], identity="me-password")
    async def password(self, request: Request) -> Response:
        if request.method != "POST":
            return await self._password_page(request, ChangePasswordForm())
        form = ChangePasswordForm(await request.form())
        if not form.validate():
            return await self._password_page(request, form, status_code=400)
        uow = await request_uow(request)
        try:
            outcome = await AccountService(uow).change_password(
                _token(request),
                form.current_password.data or "",
                form.password.data or "",
                client_address=client_address(request),
            )
        except ValidationFailed as exc:
            form.password.errors = [i18n.gettext(problem) for problem in exc.errors.get("password", [])]
            return await self._password_page(request, form, error=i18n.gettext(exc.message), status_code=400)
        except (PermissionDenied, NotFound) as exc:
            raise HTTPException(status_code=403, detail=i18n.gettext(exc.message)) from None
        await uow.commit()  # a wrong current password is recorded too: it counts toward throttling
        if outcome.token is None:
            form.current_password.errors = [i18n.gettext(outcome.message)]
            status_code = 429 if outcome.throttled else 400
            return await self._password_page(
                request, form, error=i18n.gettext(outcome.message), status_code=status_code
            )
        start_session(request, outcome.token)
        outcomes.succeeded(request, i18n.gettext(outcome.message))
        return RedirectResponse(str(request.url_for("admin:view-me")), status_code=303)

    @expose("/me/sessions", methods=["GET"], identity="me-sessions")
    async def sessions(self, request: Request) -> Response:
        uow = await request_uow(request)
        try:
            found = await AccountService(uow).open_sessions(_token(request))
        except PermissionDenied as exc:
            raise HTTPException(status_code=403, detail=i18n.gettext(exc.message)) from None
        rows = [{"session": item, "agent": short_agent(item.user_agent)} for item in found]
        return await self.templates.TemplateResponse(
            request, "custodian/my_sessions.html", {"sessions": rows, "others": len(rows) - 1}
        )

    @expose("/me/sessions/end", methods=["POST"], identity="me-sessions-end")
    async def end_session(self, request: Request) -> Response:
        value = (await request.form()).get("session")
        try:
            session_id = parse_id(value if isinstance(value, str) else "", name="The session")
        except InvalidValue:
            raise HTTPException(status_code=400, detail=i18n.gettext("Choose a session to end.")) from None
        uow = await request_uow(request)
        try:
            await AccountService(uow).end_session(_token(request), session_id)
        except Conflict as exc:
            raise HTTPException(status_code=400, detail=i18n.gettext(exc.message)) from None
        except NotFound as exc:
            raise HTTPException(status_code=404, detail=i18n.gettext(exc.message)) from None
        except PermissionDenied as exc:
            raise HTTPException(status_code=403, detail=i18n.gettext(exc.message)) from None
        await uow.commit()
        outcomes.succeeded(request, i18n.gettext("The session was ended. That browser must sign in again."))
        return RedirectResponse(str(request.url_for("admin:view-me-sessions")), status_code=303)

    @expose("/me/sessions/end-others", methods=["POST"], identity="me-sessions-end-others")
    async def end_other_sessions(self, request: Request) -> Response:
        uow = await request_uow(request)
        try:
            ended = await AccountService(uow).end_other_sessions(_token(request))
        except PermissionDenied as exc:
            raise HTTPException(status_code=403, detail=i18n.gettext(exc.message)) from None
        await uow.commit()
        if ended:
            outcomes.succeeded(
                request,
                i18n.translated_plural(
                    "%(count)s other session was ended.", "%(count)s other sessions were ended.", ended
                ),
            )
        else:
            outcomes.succeeded(request, i18n.gettext("No other session was open."))
        return RedirectResponse(str(request.url_for("admin:view-me-sessions")), status_code=303)

    async def _password_page(
        self, request: Request, form: ChangePasswordForm, *, error: str | None = None, status_code: int = 200
    ) -> Response:
        context: dict[str, Any] = {"form": form, "error": error}
        return await self.templates.TemplateResponse(
            request, "custodian/my_password.html", context, status_code=status_code
        )


def _token(request: Request) -> str:
    token = request.session.get(SESSION_TOKEN_KEY)
    return token if isinstance(token, str) else ""
