"""Sign-in for the admin: SQLAdmin's AuthenticationBackend over server-side sessions.

Starlette's session cookie is signed but readable and cannot be revoked, so
it carries only a random session token (and the CSRF token); the user, their
roles and permissions are looked up in the database on every request, and a
revoked or expired session is refused at once.

A session signed in by password only, with a second factor due (a code, or
enrolment that policy requires), is held here, in the one place every admin
route passes: it reaches its factor's page (admin/two_factor.py) and sign-out,
nothing else. A GET elsewhere is sent to that page; anything else is a 403.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote, urlsplit

from sqladmin.authentication import AuthenticationBackend
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

# Re-exported: the views import who acts from here, as they did before admin/actors.py existed.
from admin.actors import ANONYMOUS as ANONYMOUS
from admin.actors import current_actor as current_actor
from admin.csrf import csrf_failure, rotate_csrf_token
from admin.requests import acting_as, unit_for_session_lookup
from backend.config import Settings
from backend.db.session import Database
from backend.db.uow import UnitOfWork, unit_of_work
from backend.services.auth import CODE, AuthService, LoginOutcome, SessionState

SESSION_COOKIE = "custodian_session"
SESSION_TOKEN_KEY = "sid"  # noqa: S105 - a key name, not a secret
MAX_NEXT_LENGTH = 2000
MAX_DECODE_ROUNDS = 4
# The page each pending factor may open (admin/two_factor.py), by route name.
FACTOR_ROUTES = {"code": "admin:view-two-factor-code", "enrol": "admin:view-two-factor-enrol"}


def _(message: str) -> str:
    """Marks a sentence for the catalog (babel.cfg); the error page shows it translated."""
    return message


FINISH_SIGN_IN = _("Finish signing in first: enter the code from your authenticator app, or sign out.")
FINISH_ENROLMENT = _("Finish signing in first: set up two-factor sign-in, or sign out.")
SIGN_IN_EXPIRED = _("Your sign-in expired before the second step was done. Sign in again.")


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def start_session(request: Request, token: str) -> None:
    """Keep `token` as this browser's session, with a new CSRF token (after each sign-in step)."""
    request.session[SESSION_TOKEN_KEY] = token
    rotate_csrf_token(request)


def pending_sign_in(request: Request) -> SessionState | None:
    """This request's session when only its password was given (set by `authenticate`), else None."""
    state = getattr(request.state, "pending_sign_in", None)
    return state if isinstance(state, SessionState) else None


def safe_next_url(request: Request, candidate: str | None) -> str:
    """`candidate` if it is a path inside the admin, else the admin index (no open redirect)."""
    admin_root = str(request.url_for("admin:index"))
    return admin_next_path(candidate, admin_path=urlsplit(admin_root).path) or admin_root


def next_to_keep(request: Request, candidate: str | None) -> str:
    """`candidate` if sign-in may follow it, else "": the sign-in page never echoes a hostile URL."""
    admin_path = urlsplit(str(request.url_for("admin:index"))).path
    return admin_next_path(candidate, admin_path=admin_path) or ""


def admin_next_path(candidate: str | None, *, admin_path: str) -> str | None:
    """`candidate` when it is a same-origin path inside `admin_path`, as a browser would resolve it.

    The path is judged after percent-decoding (repeatedly: `%252e` too) and
    refused with any dot segment, empty segment, backslash or control
    character, since browsers resolve `%2e%2e`, `\\` and stripped tabs into
    a path elsewhere. Sign-in and sign-out pages are refused as targets.
    """
    if not candidate or len(candidate) > MAX_NEXT_LENGTH or not candidate.startswith("/"):
        return None
    if _has_unsafe_character(candidate):
        return None
    parts = urlsplit(candidate)
    if parts.scheme or parts.netloc:
        return None
    path = parts.path
    for _ in range(MAX_DECODE_ROUNDS):
        decoded = unquote(path)
        if decoded == path:
            break
        path = decoded
    else:
        return None  # still encoded after several rounds: nobody writes links like that
    segments = path.split("/")[1:]
    if _has_unsafe_character(path) or "" in segments[:-1] or {".", ".."} & set(segments):
        return None
    if not (path + "/").startswith(admin_path) or {"login", "logout"} & set(segments):
        return None
    return candidate


def _has_unsafe_character(text: str) -> bool:
    return any(char == "\\" or ord(char) < 32 or ord(char) == 127 for char in text)


class CustodianAuthentication(AuthenticationBackend):
    """Authenticates each admin request from its session token, and checks CSRF on writes."""

    def __init__(self, settings: Settings, database: Database) -> None:
        super().__init__(
            secret_key=settings.secret_key,
            session_cookie=SESSION_COOKIE,
            max_age=settings.session_absolute_timeout_hours * 3600,
            same_site="lax",
            https_only=settings.is_production,
        )
        self.database = database

    async def sign_in(self, request: Request, username: str, password: str) -> LoginOutcome:
        """Check the credentials; on success rotate the session and store the new token.

        The new session may be pending a second factor (`outcome.pending_factor`): then it opens
        only that factor's page until `start_session` replaces its token.
        """
        async with unit_of_work(self.database, ANONYMOUS) as uow:
            outcome = await AuthService(uow).login(
                username,
                password,
                client_address=client_address(request),
                user_agent=request.headers.get("user-agent", ""),
            )
            await uow.commit()
        if outcome.ok and outcome.token is not None:
            # A fresh session: nothing from before sign-in survives (no fixation).
            request.session.clear()
            start_session(request, outcome.token)
        return outcome

    async def login(self, request: Request) -> Response | bool:
        form = await request.form()
        username, password = form.get("username"), form.get("password")
        if not isinstance(username, str) or not isinstance(password, str):
            return False
        return (await self.sign_in(request, username, password)).ok

    async def logout(self, request: Request) -> Response | bool:
        token = request.session.get(SESSION_TOKEN_KEY)
        if isinstance(token, str):
            async with unit_of_work(self.database, current_actor(request)) as uow:
                await AuthService(uow).logout(token, client_address=client_address(request))
                await uow.commit()
        request.session.clear()
        rotate_csrf_token(request)
        return True

    async def authenticate(self, request: Request) -> Response | bool:
        token = request.session.get(SESSION_TOKEN_KEY)
        state = await self._resolve(request, token) if isinstance(token, str) else None
        if state is None:
            request.session.pop(SESSION_TOKEN_KEY, None)
            return self._to_login(request)
        if state.pending_factor is not None:
            refusal = self._hold_pending(request, state)
            if refusal is not None:
                return refusal
        else:
            request.state.actor = state.actor
            acting_as(request, state.actor)
        problem = await csrf_failure(request)
        if problem:
            # Raised, not returned: the admin's error page shows it inside the layout, and the
            # delete modal reads the sentence from it.
            raise HTTPException(status_code=403, detail=problem)
        return True

    async def _resolve(self, request: Request, token: str) -> SessionState | None:
        """What the session token stands for, read on the primary.

        In the request's own unit of work when the request only reads, from the primary: one
        connection and one transaction for the whole page (a pool checkout, a BEGIN and a ROLLBACK
        fewer). Otherwise in a short unit of its own: sign-in never reads a replica, and a writing
        unit opened this early would hold SQLite's write lock through the whole request.
        """
        unit = await unit_for_session_lookup(request)
        if unit is not None:
            return await self._resolve_in(unit, request, token)
        async with unit_of_work(self.database, ANONYMOUS, writes=False) as uow:
            return await self._resolve_in(uow, request, token)

    @staticmethod
    async def _resolve_in(uow: UnitOfWork, request: Request, token: str) -> SessionState | None:
        service = AuthService(uow)
        state = await service.resolve(token, client_address=client_address(request))
        if service.touched:
            await uow.commit()  # the session's stamp, and nothing else: this unit has done nothing yet
            uow.back_to_reading()  # what follows in a request's unit only reads (no SQLite write lock)
        return state

    async def get_user_id(self, request: Request) -> Any:
        return current_actor(request).user_id

    def _hold_pending(self, request: Request, state: SessionState) -> Response | None:
        """None when this request is the pending factor's own page; else where it goes instead.

        Its actor stays anonymous, so nothing that asks for permissions finds any.
        """
        if state.challenge_expired:
            request.session.pop(SESSION_TOKEN_KEY, None)
            if request.method in {"GET", "HEAD"}:
                return self._to_login(request)
            raise HTTPException(status_code=403, detail=SIGN_IN_EXPIRED)
        route = FACTOR_ROUTES.get(state.pending_factor or "", FACTOR_ROUTES[CODE])
        factor_page = request.url_for(route)
        if request.url.path == factor_page.path:
            request.state.pending_sign_in = state
            return None
        if request.method not in {"GET", "HEAD"}:
            detail = FINISH_SIGN_IN if state.pending_factor == CODE else FINISH_ENROLMENT
            raise HTTPException(status_code=403, detail=detail)
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        if next_to_keep(request, target):
            factor_page = factor_page.include_query_params(next=target)
        return RedirectResponse(factor_page, status_code=302)

    def _to_login(self, request: Request) -> Response:
        login_url = request.url_for("admin:login")
        if request.method == "GET":
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            login_url = login_url.include_query_params(next=target)
        return RedirectResponse(login_url, status_code=302)
