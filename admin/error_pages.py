"""4xx pages inside the admin layout, with a sentence saying what is missing.

SQLAdmin answers its own refusals with `HTTPException(403)` and no detail
("Forbidden"). This handler replaces its page: a signed-in user keeps the menu
and reads which permission the action needs ("You need the permission
customer.change to edit customers.") or which record does not exist ("No
customer 99 exists."). A detail written for people by the code that raised it is
shown as it is. No sentence repeats text from the URL that the server did not
recognise: a link could put a phishing line there ("Call 555-0100 to unlock").
"""

from __future__ import annotations

from collections.abc import Callable
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

from sqladmin import BaseView, ModelView
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from admin.auth import current_actor
from admin.authorization import CUSTOM_ACTION_PREFIX, CustodianAuthorization
from admin.errors import status_for
from admin.i18n import gettext, lazy_gettext, noun, translated
from backend.errors import AppError
from backend.values import InvalidValue, parse_id

if TYPE_CHECKING:
    from sqladmin import Admin

TITLES = {
    400: lazy_gettext("Bad request"),
    403: lazy_gettext("Not allowed"),
    404: lazy_gettext("Not found"),
    405: lazy_gettext("Not allowed here"),
    409: lazy_gettext("Conflict"),
}
# SQLAdmin endpoint names -> (authorization action, verb in a sentence, the view flag that can switch it off).
ENDPOINT_ACTIONS: dict[str, tuple[str, str, str | None]] = {
    "list": ("list", "see", None),
    "details": ("details", "see", "can_view_details"),
    "create": ("create", "add", "can_create"),
    "edit": ("edit", "edit", "can_edit"),
    "delete": ("delete", "delete", "can_delete"),
    "export": ("export", "export", "can_export"),
    "import_upload": ("import", "import", None),  # admin/imports.py
    "import_confirm": ("import", "import", None),
}
# Each sentence whole, so a language can order its words (German puts the verb last).
NEED_PERMISSION = {
    "see": lazy_gettext("You need the permission %(codename)s to see %(things)s."),
    "add": lazy_gettext("You need the permission %(codename)s to add %(things)s."),
    "edit": lazy_gettext("You need the permission %(codename)s to edit %(things)s."),
    "delete": lazy_gettext("You need the permission %(codename)s to delete %(things)s."),
    "export": lazy_gettext("You need the permission %(codename)s to export %(things)s."),
    "import": lazy_gettext("You need the permission %(codename)s to import %(things)s."),
}
SWITCHED_OFF = {
    "see": lazy_gettext("%(things)s cannot be seen here."),
    "add": lazy_gettext("%(things)s cannot be added here."),
    "edit": lazy_gettext("%(things)s cannot be edited here."),
    "delete": lazy_gettext("%(things)s cannot be deleted here."),
    "export": lazy_gettext("%(things)s cannot be exported here."),
}
NOT_ALLOWED_RECORD = {
    "see": lazy_gettext("Your roles do not allow you to see this %(thing)s."),
    "add": lazy_gettext("Your roles do not allow you to add this %(thing)s."),
    "edit": lazy_gettext("Your roles do not allow you to edit this %(thing)s."),
    "delete": lazy_gettext("Your roles do not allow you to delete this %(thing)s."),
    "export": lazy_gettext("Your roles do not allow you to export this %(thing)s."),
    "import": lazy_gettext("Your roles do not allow you to import this %(thing)s."),
    "change": lazy_gettext("Your roles do not allow you to change this %(thing)s."),
}
NOT_ALLOWED = {
    "see": lazy_gettext("Your roles do not allow you to see %(things)s."),
    "add": lazy_gettext("Your roles do not allow you to add %(things)s."),
    "edit": lazy_gettext("Your roles do not allow you to edit %(things)s."),
    "delete": lazy_gettext("Your roles do not allow you to delete %(things)s."),
    "export": lazy_gettext("Your roles do not allow you to export %(things)s."),
    "import": lazy_gettext("Your roles do not allow you to import %(things)s."),
    "change": lazy_gettext("Your roles do not allow you to change %(things)s."),
}
# Details other code raises that say nothing a person can act on.
GENERIC_DETAILS = {"No such record.", "Object not found."}
# Methods a sentence may name; any other is text the client chose.
HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def install_error_pages(admin: Admin) -> None:
    """Render SQLAdmin's HTTP errors with templates/sqladmin/error.html and an explanation."""

    async def http_error(request: Request, exc: Exception) -> Response:
        if not isinstance(exc, HTTPException):
            raise TypeError(f"expected an HTTPException, got {type(exc).__name__}")
        if (
            current_actor(request).user_id is None
            and request.method == "GET"
            and "/statics/" not in request.url.path
            and admin.authentication_backend
        ):
            # An address no route matches was never authenticated: look the session up for the menu.
            await admin.authentication_backend.authenticate(request)
        context = {
            "status_code": exc.status_code,
            "title": str(TITLES.get(exc.status_code, _phrase(exc.status_code))),
            "message": explain(admin, request, exc),
            "signed_in": current_actor(request).user_id is not None,
        }
        response = await admin.templates.TemplateResponse(
            request, "sqladmin/error.html", context, status_code=exc.status_code
        )
        for name, value in (exc.headers or {}).items():
            response.headers[name] = value
        return response

    async def refused(request: Request, exc: Exception) -> Response:
        # A service's refusal that reached the route's edge: the same page, at its status.
        if not isinstance(exc, AppError):
            raise TypeError(f"expected an AppError, got {type(exc).__name__}")
        return await http_error(request, HTTPException(status_code=status_for(exc), detail=exc.message))

    admin.admin.add_exception_handler(HTTPException, http_error)
    admin.admin.add_exception_handler(AppError, refused)


def explain(admin: Admin, request: Request, exc: HTTPException) -> str:
    """One sentence for the person at the screen: what was refused or missing, and why."""
    detail = str(exc.detail or "")
    if detail and detail != _phrase(exc.status_code) and detail not in GENERIC_DETAILS:
        return gettext(detail)  # written for people where it was raised (a fixed one has a translation)
    view = _view_of(admin, request)
    if exc.status_code == 403:
        return _refusal(admin, request, view)
    if exc.status_code == 404:
        return _missing(request, view)
    if exc.status_code == 405:
        method = request.method if request.method in HTTP_METHODS else "such"
        return translated("This address does not accept %(method)s requests.", method=method)
    if exc.status_code == 400:
        return gettext("The request could not be understood. Check the address and try again.")
    return _phrase(exc.status_code) + "."


def _refusal(admin: Admin, request: Request, view: BaseView | ModelView | None) -> str:
    actor = current_actor(request)
    if actor.user_id is None:
        return gettext("Sign in to open this page.")
    backend = admin.authorization_backend
    if isinstance(view, ModelView):
        action, verb, flag = _model_action(request, view)
        things = noun(view.name_plural)
        if flag is not None and not getattr(view, flag):
            return _sentence(
                SWITCHED_OFF, verb, f"{view.name_plural} cannot be {_past(verb)} here.", things=things
            )
        codename = (
            backend.codename_for(view.identity, action)
            if isinstance(backend, CustodianAuthorization)
            else None
        )
        if codename and not actor.has_perm(codename):
            english = f"You need the permission {codename} to {verb} {things}."
            return _sentence(NEED_PERMISSION, verb, english, codename=codename, things=things)
        if "pk" in request.path_params:
            thing = noun(view.name)
            english = f"Your roles do not allow you to {verb} this {thing}."
            return _sentence(NOT_ALLOWED_RECORD, verb, english, thing=thing)
        return _sentence(NOT_ALLOWED, verb, f"Your roles do not allow you to {verb} {things}.", things=things)
    if isinstance(view, BaseView):
        required = getattr(view, "required_permission", None)
        if isinstance(required, str) and not actor.has_perm(required):
            return translated(
                "You need the permission %(codename)s to open the %(page)s.",
                codename=required,
                page=noun(view.name),
            )
    return gettext("Your roles do not allow this.")


def _sentence(sentences: dict[str, str], verb: str, english: str, **values: str) -> str:
    """The sentence for `verb` in the user's language; a custom action's verb has none: English."""
    sentence = sentences.get(verb)
    return str(sentence) % values if sentence is not None else english


def _missing(request: Request, view: BaseView | ModelView | None) -> str:
    if isinstance(view, ModelView):
        record_id = _record_id(request)
        if record_id is not None:
            return translated("No %(thing)s %(id)s exists.", thing=noun(view.name), id=record_id)
        if _endpoint_name(request) == "export":
            return translated("%(things)s cannot be exported in this format.", things=view.name_plural)
        return translated("No such %(thing)s exists.", thing=noun(view.name))
    return gettext("There is no page at this address.")


def _record_id(request: Request) -> int | None:
    """The id in the path, once it parses as one; None for text no record could have as its id.

    Only a parsed id is named in a sentence: other text in the URL is never repeated.
    """
    try:
        return parse_id(str(request.path_params.get("pk", "")))
    except InvalidValue:
        return None


def _model_action(request: Request, view: ModelView) -> tuple[str, str, str | None]:
    name = _endpoint_name(request)
    if name in ENDPOINT_ACTIONS:
        return ENDPOINT_ACTIONS[name]
    slug = request.url.path.rstrip("/").rsplit("/", 1)[-1]
    if f"/{view.identity}/action/" in request.url.path:
        label = slug.replace("-", " ")
        return f"{CUSTOM_ACTION_PREFIX}{slug}", f"use “{label}” on", None
    return "edit", "change", None


def _view_of(admin: Admin, request: Request) -> BaseView | ModelView | None:
    identity = request.path_params.get("identity")
    if isinstance(identity, str):
        return next((view for view in admin.views if view.identity == identity), None)
    # A view's own route (`@expose`, `@action`) is a bound method of the view.
    owner = getattr(request.scope.get("endpoint"), "__self__", None)
    return owner if isinstance(owner, BaseView | ModelView) else None


def _endpoint_name(request: Request) -> str:
    endpoint: Callable[..., Any] | None = request.scope.get("endpoint")
    return str(getattr(endpoint, "__name__", ""))


def _past(verb: str) -> str:
    return {"see": "seen", "add": "added", "edit": "edited", "delete": "deleted", "export": "exported"}.get(
        verb, verb
    )


def _phrase(status_code: int) -> str:
    try:
        return HTTPStatus(status_code).phrase
    except ValueError:
        return "Error"
