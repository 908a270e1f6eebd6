"""CustodianAdmin: SQLAdmin's Admin with its security gaps closed.

- every write endpoint (create, edit, delete, custom actions, logout) needs
  POST/DELETE with a valid CSRF token, checked in `authenticate`;
- custom `@action` routes accept POST only, and logout is a POST;
- create, edit and delete go through the services: errors come back as form
  errors next to their fields (400/409), refusals as 403, and nothing else
  is ever shown as exception text;
- delete loads the selected rows in one query through the view's scoped
  query and refuses rows the user cannot see;
- a user without any admin permission gets a clear "no access" page.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from types import MethodType
from typing import Any

from sqladmin import Admin, BaseView, ModelView
from sqladmin.authentication import login_required
from starlette import status
from starlette.applications import Starlette
from starlette.datastructures import URL, FormData
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route
from wtforms import Form

from admin import outcomes
from admin.auth import CustodianAuthentication, current_actor, next_to_keep, safe_next_url
from admin.authorization import CustodianAuthorization
from admin.csrf import SAFE_METHODS, csrf_failure, csrf_token
from admin.error_pages import install_error_pages
from admin.errors import install_error_handlers, status_for
from admin.forms import VERSION_FIELD, missing_version, parse_version
from admin.keyset import ListChanged
from admin.params import query_ids
from admin.relations import bind_form_labels, relation_label
from admin.views.base import ServiceModelView
from backend.config import Settings
from backend.db.session import Database
from backend.errors import AppError, Conflict, NotFound, PermissionDenied, ValidationFailed
from backend.models.user import USERNAME_MAX_LENGTH

TEMPLATES_DIR = Path(__file__).parent / "templates"
STATIC_DIR = Path(__file__).parent / "static"


class CustodianAdmin(Admin):
    def __init__(self, app: Starlette, *, settings: Settings, database: Database) -> None:
        self.database = database
        self.auth = CustodianAuthentication(settings, database)
        super().__init__(
            app,
            session_maker=database.sessions,
            base_url="/admin",
            title="Custodian",
            templates_dir=str(TEMPLATES_DIR),
            authentication_backend=self.auth,
            authorization_backend=CustodianAuthorization(),
            static_files_kwargs={"directory": str(STATIC_DIR)},
        )
        self.templates.env.globals["csrf_token"] = csrf_token
        self.templates.env.globals["current_actor"] = current_actor
        self.templates.env.globals["relation_label"] = relation_label
        for route in self.admin.router.routes:
            if isinstance(route, Route) and route.name == "logout":
                route.methods = {"GET", "HEAD", "POST"}
        install_error_handlers(self.admin)
        install_error_pages(self)

    # Routes -----------------------------------------------------------------

    def _handle_action_decorated_func(
        self, func: MethodType, view: type[BaseView | ModelView], view_instance: BaseView | ModelView
    ) -> None:
        super()._handle_action_decorated_func(func, view, view_instance)
        if hasattr(func, "_action"):
            path = f"/{view_instance.identity}/action/{func._slug}"  # type: ignore[attr-defined]  # set by @action
            for route in self.admin.router.routes:
                if isinstance(route, Route) and route.path == path:
                    route.methods = {"POST"}  # state changes are never GETs

    @login_required
    async def index(self, request: Request) -> Response:
        if not any(view.is_visible(request) and view.is_accessible(request) for view in self.views):
            return await self.templates.TemplateResponse(
                request, "custodian/no_access.html", status_code=status.HTTP_403_FORBIDDEN
            )
        return await self.templates.TemplateResponse(request, "sqladmin/index.html")

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

    @login_required
    async def list(self, request: Request) -> Response:
        """The list page, paged by keyset and counted up to a cap (see admin/keyset.py)."""
        can_list = await self._list(request)
        model_view = self._find_model_view(request.path_params["identity"])
        context: dict[str, Any] = {
            **await model_view.list_context(request),
            "model_view": model_view,
            "can_list": can_list,
            "can_import": False,
        }
        if can_list:
            if not isinstance(model_view, ServiceModelView):
                raise HTTPException(status_code=status.HTTP_404_NOT_FOUND)
            try:
                context["pagination"] = await model_view.keyset_list(request)
            except ListChanged as changed:
                # A new search, filter, sort or page size typed on page 3 starts at the first page.
                return RedirectResponse(changed.first_page, status_code=status.HTTP_302_FOUND)
        return await self.templates.TemplateResponse(request, model_view.list_template, context)

    @login_required
    async def create(self, request: Request) -> Response:
        await self._create(request)
        model_view = self._find_model_view(request.path_params["identity"])
        form_class = await model_view.scaffold_form(model_view._form_create_rules)
        context = {**await model_view.create_context(request), "model_view": model_view}
        template = model_view.create_template
        if request.method in SAFE_METHODS:  # HEAD is a GET without the body
            context["form"] = bind_form_labels(form_class(), request)
            return await self.templates.TemplateResponse(request, template, context)

        form_data = await self._handle_form_data(request)
        form = bind_form_labels(form_class(form_data), request)
        context["form"] = form
        if not form.validate():
            return await self.templates.TemplateResponse(request, template, context, status_code=400)
        try:
            obj = await model_view.insert_model(
                request, self._denormalize_wtform_data(form.data, model_view.model)
            )
        except AppError as exc:
            return await self._form_failure(request, template, context, form, exc)
        outcomes.created(request, model_view, obj)
        url = self.get_save_redirect_url(request=request, form=form_data, obj=obj, model_view=model_view)
        return RedirectResponse(url=url, status_code=status.HTTP_302_FOUND)

    @login_required
    async def edit(self, request: Request) -> Response:
        await self._edit(request)
        model_view = self._find_model_view(request.path_params["identity"])
        model = await model_view.get_object_for_edit(request)
        if model is None:
            raise HTTPException(status_code=status.HTTP_404_NOT_FOUND)
        form_class = await model_view.scaffold_form(model_view._form_edit_rules)
        context = {**await model_view.edit_context(request), "obj": model, "model_view": model_view}
        template = model_view.edit_template
        if request.method in SAFE_METHODS:  # HEAD is a GET without the body
            form = form_class(data=await model_view.get_form_data_for_edit(model))
            context["form"] = bind_form_labels(form, request)
            return await self.templates.TemplateResponse(request, template, context)

        if not isinstance(model_view, ServiceModelView):
            raise HTTPException(status_code=status.HTTP_404_NOT_FOUND)
        form_data = await self._handle_form_data(request, model)
        form = bind_form_labels(form_class(form_data), request)
        context["form"] = form
        submitted_version = form_data.get(VERSION_FIELD)
        # Shown back as sent: a form refused as stale stays refused until it is reloaded.
        context["submitted_version"] = submitted_version if isinstance(submitted_version, str) else ""
        version = parse_version(submitted_version)
        if version is None and hasattr(model_view.model, "version"):
            form.validate()  # field errors too, so the page says everything at once
            conflict = missing_version(model_view.name.lower())
            return await self._form_failure(request, template, context, form, conflict)
        if not form.validate():
            return await self.templates.TemplateResponse(request, template, context, status_code=400)
        data = self._denormalize_wtform_data(await model_view.edited_values(form, model), model)
        data[VERSION_FIELD] = version
        try:
            obj = await model_view.update_model(request, pk=request.path_params["pk"], data=data)
        except AppError as exc:
            return await self._form_failure(request, template, context, form, exc)
        outcomes.saved(request, model_view, obj)
        url = self.get_save_redirect_url(request=request, form=form_data, obj=obj, model_view=model_view)
        return RedirectResponse(url=url, status_code=status.HTTP_302_FOUND)

    @login_required
    async def delete(self, request: Request) -> Response:
        model_view = self._find_model_view(request.path_params["identity"])
        # Permission first: a refused user learns nothing about which rows exist.
        if not model_view.is_accessible(request) or not model_view._can_delete_any(request):
            raise HTTPException(status_code=status.HTTP_403_FORBIDDEN)
        if not isinstance(model_view, ServiceModelView):
            raise HTTPException(status_code=status.HTTP_403_FORBIDDEN)
        pks = query_ids(request)
        found = await model_view.get_objects_for_delete(pks)
        deleted = []
        for pk in pks:
            obj = found.get(pk)
            if obj is None:
                detail = f"No {model_view.name.lower()} {pk} exists. Nothing was deleted."
                raise HTTPException(status_code=status.HTTP_404_NOT_FOUND, detail=detail)
            if not await model_view.check_can_delete(request, obj):
                label = outcomes.record_label(request, model_view, obj)
                detail = f"Your roles do not allow you to delete {label}."
                raise HTTPException(status_code=status.HTTP_403_FORBIDDEN, detail=detail)
            deleted.append(obj)
        try:
            await model_view.delete_models(request, pks)
        except AppError as exc:
            return PlainTextResponse(exc.message, status_code=status_for(exc))
        outcomes.moved_to_trash(request, model_view, deleted)
        url = URL(str(request.url_for("admin:list", identity=model_view.identity)))
        return PlainTextResponse(str(url))

    @login_required
    async def export(self, request: Request) -> Response:
        """CSV of the current filtered list, streamed (needs `<table>.export`)."""
        await self._export(request)
        model_view = self._find_model_view(request.path_params["identity"])
        if request.path_params["export_type"] != "csv" or not isinstance(model_view, ServiceModelView):
            raise HTTPException(status_code=status.HTTP_404_NOT_FOUND)
        return await model_view.export_csv(request)

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
        context = {"error": error, "next": next_url, "username": username}
        return await self.templates.TemplateResponse(
            request, "custodian/login.html", context, status_code=status_code
        )

    async def _form_failure(
        self, request: Request, template: str, context: dict[str, Any], form: Form, exc: AppError
    ) -> Response:
        """Show a service's refusal on the form, keeping what the user typed."""
        if isinstance(exc, PermissionDenied | NotFound):
            raise HTTPException(status_code=status_for(exc), detail=exc.message)
        general: list[str] = []
        field_errors: Mapping[str, list[str]] = {}
        if isinstance(exc, ValidationFailed):
            field_errors = exc.errors
        elif isinstance(exc, Conflict) and exc.field:
            field_errors = {exc.field: [exc.message]}
        else:
            general.append(exc.message)
        for name, messages in field_errors.items():
            field = form._fields.get(name)
            if field is None:
                general.extend(messages)
            else:
                field.errors = [*field.errors, *messages]
        context["error"] = " ".join(general) or exc.message
        return await self.templates.TemplateResponse(request, template, context, status_code=status_for(exc))


def _text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value if isinstance(value, str) else ""
