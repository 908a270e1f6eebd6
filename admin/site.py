"""CustodianAdmin: SQLAdmin's Admin with its security gaps closed.

- every write endpoint (create, edit, delete, custom actions, logout) needs
  POST/DELETE with a valid CSRF token, checked in `authenticate`;
- custom `@action` routes accept POST only, and logout is a POST;
- create and edit are SQLAdmin's own routes; the views write through the
  services (admin/writes.py) and record a refusal, which is shown next to its
  fields with its own status (400/409), or as a 403/404 page; nothing else is
  ever shown as exception text (admin/refusals.py);
- SQLAdmin's reads run in the request's unit of work (admin/requests.py);
- delete loads the selected rows in one query through the view's scoped
  query, refuses rows the user cannot see, and deletes all or none;
- a user without any admin permission gets a clear "no access" page.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqladmin import Admin, BaseView, ModelView
from sqladmin.authentication import login_required
from starlette import status
from starlette.applications import Starlette
from starlette.datastructures import URL, FormData
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from admin import i18n, outcomes, refusals
from admin.auth import current_actor, next_to_keep, safe_next_url
from admin.authorization import CustodianAuthorization
from admin.csrf import SAFE_METHODS, csrf_failure, csrf_token
from admin.dashboard import dashboard_blocks, history_tables
from admin.error_pages import install_error_pages
from admin.errors import install_error_handlers, status_for
from admin.filter_sidebar import filter_sidebar_links
from admin.formatting import LOCALISED_FORMATTERS, day, moment, number, row_count
from admin.i18n import LanguageAwareAuthentication, LanguageMiddleware, translated
from admin.kept_markup import kept_markup
from admin.list_header import sort_header_cells
from admin.menu import sidebar_menu
from admin.palette import CommandPalette
from admin.params import query_ids
from admin.relations import bind_form_labels, masked_ajax_loaders, relation_label
from admin.requests import RequestSessions
from admin.sqladmin_adapter import action_route_prefix, speak_the_page_language
from admin.urls import remember_route_paths, template_url_for
from admin.views.base import ServiceModelView
from backend.config import Environment, Settings
from backend.db.session import Database
from backend.errors import AppError, NotFound, PermissionDenied
from backend.models.user import USERNAME_MAX_LENGTH
from backend.services import masking

TEMPLATES_DIR = Path(__file__).parent / "templates"
STATIC_DIR = Path(__file__).parent / "static"


FAVICON_URL = "/admin/statics/favicon.svg"


@dataclass(frozen=True)
class EnvironmentBadge:
    """Which environment a page belongs to, on every page: red for production, so nobody edits it by
    mistake; the name, or `ENVIRONMENT_LABEL` ("staging") where the operator set one."""

    label: str
    css: str

    @classmethod
    def of(cls, settings: Settings) -> EnvironmentBadge:
        colours = {Environment.PRODUCTION: "bg-red-lt", Environment.TEST: "bg-purple-lt"}
        label = settings.environment_label or settings.environment.value
        return cls(label=label, css=colours.get(settings.environment, "bg-green-lt"))


class CustodianAdmin(Admin):
    def __init__(self, app: Starlette, *, settings: Settings, database: Database) -> None:
        self.database = database
        self.auth = LanguageAwareAuthentication(settings, database)
        super().__init__(
            app,
            # SQLAdmin's reads take the request's unit-of-work session.
            session_maker=RequestSessions(database),  # type: ignore[arg-type]  # an async_sessionmaker stand-in
            base_url="/admin",
            title="Custodian",
            templates_dir=str(TEMPLATES_DIR),
            authentication_backend=self.auth,
            authorization_backend=CustodianAuthorization(),
            static_files_kwargs={"directory": str(STATIC_DIR)},
            favicon_url=FAVICON_URL,
            middlewares=[Middleware(LanguageMiddleware, cookie_path="/admin")],
        )
        remember_route_paths(app.router)  # SQLAdmin's `request.url_for` calls walk every route
        i18n.install(self.templates.env)
        speak_the_page_language(self.templates.env)
        self.templates.env.auto_reload = settings.templates_auto_reload
        self.templates.env.globals["url_for"] = template_url_for  # the same, with paths remembered
        self.templates.env.globals["csrf_token"] = csrf_token
        self.templates.env.globals["sidebar_menu"] = sidebar_menu  # the menu, rendered once per state
        self.templates.env.globals["current_actor"] = current_actor
        self.templates.env.globals["relation_label"] = relation_label
        self.templates.env.globals["prepare_form"] = prepare_form
        self.templates.env.globals["filter_sidebar_links"] = filter_sidebar_links
        self.templates.env.globals["sort_header_cells"] = sort_header_cells
        self.templates.env.globals["kept_markup"] = kept_markup  # per-host parts, rendered once
        self.templates.env.globals["environment_badge"] = EnvironmentBadge.of(settings)
        self.templates.env.filters["moment"] = moment
        self.templates.env.filters["number"] = number
        self.templates.env.filters["day"] = day
        self.templates.env.filters["row_count"] = row_count
        for route in self.admin.router.routes:
            if isinstance(route, Route) and route.name == "logout":
                route.methods = {"GET", "HEAD", "POST"}
        # Code with a request and no view reaches the admin from its app (admin.controls.admin_of).
        self.admin.state.admin = self
        install_error_handlers(self.admin)
        install_error_pages(self)
        refusals.install_log_filter()
        # The top bar's launcher (admin/palette.py) belongs to the admin, not to any one view module.
        self.add_view(CommandPalette)

    def add_view(self, view: type[ModelView] | type[BaseView]) -> None:
        i18n.localise_names(view)
        super().add_view(view)

    def add_model_view(self, view: type[ModelView]) -> None:
        # Amounts in lists and on details pages as the reader's language writes them (admin/formatting.py).
        for attribute in ("column_type_formatters", "column_type_formatters_detail"):
            setattr(view, attribute, {**getattr(view, attribute), **LOCALISED_FORMATTERS})
        super().add_model_view(view)
        # `@action` routes are registered for GET; they change data, so they take POST only.
        prefix = action_route_prefix(view.identity)
        for route in self.admin.router.routes:
            if isinstance(route, Route) and route.name.startswith(prefix):
                route.methods = {"POST"}

    def model_view(self, identity: str) -> ModelView:
        """The model view at `identity`; 404 when there is none."""
        for view in self.views:
            if isinstance(view, ModelView) and view.identity == identity:
                return view
        raise HTTPException(status_code=status.HTTP_404_NOT_FOUND)

    # Routes -----------------------------------------------------------------

    @login_required
    async def index(self, request: Request) -> Response:
        if not any(view.is_visible(request) and view.is_accessible(request) for view in self.views):
            return await self.templates.TemplateResponse(
                request, "custodian/no_access.html", status_code=status.HTTP_403_FORBIDDEN
            )
        context = {
            "blocks": await dashboard_blocks(request, self.views),
            "history_tables": history_tables(request, self.views),
        }
        return await self.templates.TemplateResponse(request, "custodian/dashboard.html", context)

    async def login(self, request: Request) -> Response:
        next_url = next_to_keep(request, request.query_params.get("next"))
        if request.method in SAFE_METHODS:  # HEAD is a GET without the body
            return await self._login_page(request, next_url=next_url)
        form = await request.form()
        next_url = next_to_keep(request, _text(form, "next"))
        problem = await csrf_failure(request)
        if problem:
            return await self._login_page(request, next_url=next_url, error=problem, status_code=403)
        username = _text(form, "username")[:USERNAME_MAX_LENGTH]  # shown again on failure
        outcome = await self.auth.sign_in(request, username, _text(form, "password"))
        if outcome.ok:
            return RedirectResponse(safe_next_url(request, next_url), status_code=status.HTTP_302_FOUND)
        code = status.HTTP_429_TOO_MANY_REQUESTS if outcome.throttled else status.HTTP_400_BAD_REQUEST
        return await self._login_page(
            request, next_url=next_url, error=outcome.message, username=username, status_code=code
        )

    async def logout(self, request: Request) -> Response:
        if request.method != "POST":
            return await self.templates.TemplateResponse(request, "custodian/logout.html")
        problem = await csrf_failure(request)
        if problem:
            raise HTTPException(status_code=status.HTTP_403_FORBIDDEN, detail=problem)
        await self.auth.logout(request)
        return RedirectResponse(request.url_for("admin:login"), status_code=status.HTTP_302_FOUND)

    async def create(self, request: Request) -> Response:
        return _with_refusal(request, await super().create(_head_as_get(request)))

    async def edit(self, request: Request) -> Response:
        return _with_refusal(request, await super().edit(_head_as_get(request)))

    @login_required
    async def delete(self, request: Request) -> Response:
        model_view = self.model_view(request.path_params["identity"])
        # Permission first: a refused user learns nothing about which rows exist.
        allowed = model_view.can_delete and model_view.has_permission(request, "delete")
        if not model_view.is_accessible(request) or not allowed:
            raise HTTPException(status_code=status.HTTP_403_FORBIDDEN)
        if not isinstance(model_view, ServiceModelView):
            raise HTTPException(status_code=status.HTTP_403_FORBIDDEN)
        pks = query_ids(request)
        found = await model_view.get_objects_for_delete(pks)
        deleted = []
        for pk in pks:
            obj = found.get(pk)
            if obj is None:
                detail = translated(
                    "No %(name)s %(id)s exists. Nothing was deleted.", name=i18n.noun(model_view.name), id=pk
                )
                raise HTTPException(status_code=status.HTTP_404_NOT_FOUND, detail=detail)
            if not await model_view.check_can_delete(request, obj):
                label = outcomes.record_label(request, model_view, obj)
                detail = translated("Your roles do not allow you to delete %(label)s.", label=label)
                raise HTTPException(status_code=status.HTTP_403_FORBIDDEN, detail=detail)
            deleted.append(obj)
        try:
            await model_view.delete_models(request, pks)
        except AppError as exc:
            # The list page shows this text in its delete dialog: in the reader's language.
            return PlainTextResponse(i18n.gettext(exc.message), status_code=status_for(exc))
        outcomes.moved_to_trash(request, model_view, deleted)
        url = URL(str(request.url_for("admin:list", identity=model_view.identity)))
        return PlainTextResponse(str(url))

    @login_required
    async def ajax_lookup(self, request: Request) -> Response:
        """The form's related-record lookup, labelled through the masking rule (admin/relations.py)."""
        model_view = self.model_view(request.path_params["identity"])
        if not model_view.is_accessible(request):
            raise HTTPException(status_code=status.HTTP_403_FORBIDDEN)
        # The lookup serves the create and edit forms: listing alone opens no search of the related model.
        can_create = model_view.can_create and await model_view.check_can_create(request)
        if not (can_create or (model_view.can_edit and model_view.has_permission(request, "edit"))):
            raise HTTPException(status_code=status.HTTP_403_FORBIDDEN)
        name, term = request.query_params.get("name"), request.query_params.get("term")
        loader = masked_ajax_loaders(model_view).get(name or "")
        if not term or loader is None:
            raise HTTPException(status_code=status.HTTP_400_BAD_REQUEST)
        # A search of the related model is a view of it, as Django's autocomplete rules too.
        related = f"{masking.table_of(loader.model)}.view"
        if not current_actor(request).has_perm(related):
            detail = translated(
                "You need the permission %(codename)s to search these records.", codename=related
            )
            raise HTTPException(status_code=status.HTTP_403_FORBIDDEN, detail=detail)
        found = await loader.get_list(request, term)
        return JSONResponse({"results": [loader.format(match) for match in found]})

    # Helpers ------------------------------------------------------------------

    async def _login_page(
        self,
        request: Request,
        *,
        next_url: str,
        error: str | None = None,
        username: str = "",
        status_code: int = 200,
    ) -> Response:
        # A fixed sentence from the sign-in service is shown in the reader's language (admin/locale/names.py).
        context = {"error": i18n.gettext(error) if error else None, "next": next_url, "username": username}
        return await self.templates.TemplateResponse(
            request, "custodian/login.html", context, status_code=status_code
        )


def _text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value if isinstance(value, str) else ""


def _with_refusal(request: Request, response: Response) -> Response:
    """SQLAdmin's create or edit response, as the view's write left it.

    The Response `after_model_change` returned replaces SQLAdmin's redirect;
    a form shown again after a refusal gets the refusal's status, and a
    refusal about the record itself (403, 404) is the error page.
    """
    after: Response | None = getattr(request.state, "custodian_after_change", None)
    if after is not None:
        return after
    refusal = refusals.recorded(request)
    if refusal is None or response.status_code != status.HTTP_400_BAD_REQUEST:
        return response
    if isinstance(refusal.error, PermissionDenied | NotFound):
        raise HTTPException(status_code=refusal.status_code, detail=refusal.error.message)
    response.status_code = refusal.status_code
    return response


def prepare_form(form: Any, request: Request) -> str | None:
    """Ready a create or edit form to render (a template global): related records labelled for the
    request's actor, a recorded refusal's errors placed on their fields. Returns the sentence to show.
    """
    bind_form_labels(form, request)
    for field in form:
        field.label.text = i18n.gettext(field.label.text)
    return refusals.place_refusal(form, request)


def _head_as_get(request: Request) -> Request:
    """HEAD answered as the GET it stands for: SQLAdmin's form routes treat any other method as a submit.

    The server leaves the body out of a HEAD response by itself.
    """
    if request.method != "HEAD":
        return request
    return Request({**request.scope, "method": "GET"}, request.receive)
