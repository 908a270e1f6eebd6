"""Users and roles in the admin. The password hash is never shown or edited here."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from sqladmin import action, expose
from sqlalchemy import select
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from wtforms import BooleanField, Form, PasswordField, SelectMultipleField, StringField, TextAreaField
from wtforms.validators import EqualTo, InputRequired, Length, Optional

from admin import outcomes
from admin.auth import current_actor
from admin.controls import RowAction
from admin.forms import StyledForm
from admin.i18n import gettext, lazy_gettext, translated
from admin.params import query_ids
from admin.requests import request_uow
from admin.views.base import ServiceModelView
from backend.auth.passwords import MAX_PASSWORD_LENGTH
from backend.errors import AppError, NotFound, PermissionDenied, ValidationFailed
from backend.models import Permission, Role, User
from backend.services.two_factor import TwoFactorService
from backend.services.users import UserService

SECRET_COLUMNS: list[Any] = [User.password_hash, User.totp_secret]
# Bookkeeping of two-factor sign-in (the last accepted time step): no one's business to read.
HIDDEN_COLUMNS: list[Any] = [*SECRET_COLUMNS, User.totp_last_step]
# How the account-authority rule words a refusal, before the username.
CHANGING = "change the account of"
DELETING = "delete the account of"


class UserCreateForm(StyledForm):
    username = StringField(lazy_gettext("Username"), validators=[InputRequired(), Length(max=150)])
    email = StringField(lazy_gettext("Email"), validators=[Optional(), Length(max=254)])
    password = PasswordField(
        lazy_gettext("Password"), validators=[InputRequired(), Length(max=MAX_PASSWORD_LENGTH)]
    )
    password_confirm = PasswordField(
        lazy_gettext("Password (again)"),
        validators=[InputRequired(), EqualTo("password", message=lazy_gettext("The two passwords differ."))],
    )
    roles = SelectMultipleField(lazy_gettext("Roles"), choices=[], validate_choice=True)
    is_active = BooleanField(lazy_gettext("Active"), default=True)
    is_superuser = BooleanField(lazy_gettext("Superuser (every permission)"))


class UserEditForm(StyledForm):
    email = StringField(lazy_gettext("Email"), validators=[Optional(), Length(max=254)])
    roles = SelectMultipleField(lazy_gettext("Roles"), choices=[], validate_choice=True)
    is_active = BooleanField(lazy_gettext("Active"))
    is_superuser = BooleanField(lazy_gettext("Superuser (every permission)"))


class SetPasswordForm(StyledForm):
    password = PasswordField(
        lazy_gettext("New password"), validators=[InputRequired(), Length(max=MAX_PASSWORD_LENGTH)]
    )
    password_confirm = PasswordField(
        lazy_gettext("New password (again)"),
        validators=[InputRequired(), EqualTo("password", message=lazy_gettext("The two passwords differ."))],
    )


class UserAdmin(ServiceModelView, model=User):
    menu_order = 7
    name = "User"
    name_plural = "Users"
    icon = "fa-solid fa-user"
    category = "Accounts"

    column_list: ClassVar = [
        User.id,
        User.username,
        User.email,
        User.is_active,
        User.is_superuser,
        User.totp_enrolled_at,
        User.roles,
    ]
    column_labels: ClassVar = {User.totp_enrolled_at: "2FA enrolled"}
    # A custom action's codename: resetting someone's second factor changes their account.
    action_permissions: ClassVar[dict[str, str]] = {"reset-two-factor": "change"}
    column_details_exclude_list: ClassVar = HIDDEN_COLUMNS
    column_export_exclude_list: ClassVar = HIDDEN_COLUMNS
    column_searchable_list: ClassVar = [User.username, User.email]
    column_sortable_list: ClassVar = [User.id, User.username]
    column_default_sort: ClassVar = [(User.username, False)]
    form_columns: ClassVar = [User.username, User.email, User.roles, User.is_active, User.is_superuser]
    form_create_rules: ClassVar = [
        "username",
        "email",
        "password",
        "password_confirm",
        "roles",
        "is_active",
        "is_superuser",
    ]
    form_edit_rules: ClassVar = ["email", "roles", "is_active", "is_superuser"]
    details_template = "custodian/user_details.html"

    async def scaffold_form(self, rules: list[str] | None = None) -> type[Form]:
        base = UserCreateForm if rules == self.form_create_rules else UserEditForm
        # SQLAdmin builds the form without the request; its session maker is the request's unit of work.
        async with self.session_maker() as session:
            names = list(await session.scalars(select(Role.name).order_by(Role.name)))

        class BoundForm(base):  # type: ignore[valid-type,misc]  # a per-request subclass with choices
            roles = SelectMultipleField(
                lazy_gettext("Roles"), choices=[(n, n) for n in names], validate_choice=True
            )

        return BoundForm

    async def get_form_data_for_edit(self, obj: Any) -> dict[str, Any]:
        return {
            "email": obj.email,
            "roles": [role.name for role in obj.roles],
            "is_active": obj.is_active,
            "is_superuser": obj.is_superuser,
        }

    # Per-object controls: shown only when the account-authority rule allows them.

    async def check_can_edit(self, request: Request, model: Any) -> bool:
        if not await super().check_can_edit(request, model):
            return False
        return model is None or await self.account_problem(request, model.id) is None

    async def check_can_delete(self, request: Request, model: Any) -> bool:
        if not await super().check_can_delete(request, model):
            return False
        if model.id == current_actor(request).user_id:
            return False  # nobody deletes their own account
        return await self.account_problem(request, model.id, doing=DELETING) is None

    async def allowed_rows(self, request: Request, rows: Sequence[Any], action: RowAction) -> list[bool]:
        # The rule for the whole page, edit and delete alike, asked at once;
        # the per-row hooks then find their answers already asked.
        if action in ("edit", "delete") and rows and self.is_accessible(request):
            doings = [
                doing
                for row_action, doing in (("edit", CHANGING), ("delete", DELETING))
                if self.has_permission(request, row_action)
            ]
            await self.account_problems(request, [row.id for row in rows], doings=doings)
        return await super().allowed_rows(request, rows, action)

    async def account_problem(self, request: Request, user_id: int, *, doing: str = CHANGING) -> str | None:
        """Why the signed-in actor may not `doing` this account (backend rule), or None."""
        return (await self.account_problems(request, [user_id], doings=[doing]))[user_id, doing]

    async def account_problems(
        self, request: Request, user_ids: Sequence[int], *, doings: Sequence[str]
    ) -> dict[tuple[int, str], str | None]:
        """(account id, wording) -> why the signed-in actor may not, or None; remembered for the request.

        What is not yet known is asked in the request's unit of work, one query
        per wording whatever the number of accounts.
        """
        answers: dict[tuple[int, str], str | None] = getattr(request.state, "account_problems", {})
        request.state.account_problems = answers
        missing = {doing: [i for i in user_ids if (i, doing) not in answers] for doing in doings}
        missing = {doing: ids for doing, ids in missing.items() if ids}
        if missing:
            try:
                service = UserService(await request_uow(request))
                for doing, ids in missing.items():
                    found = await service.management_problems(ids, doing=doing)
                    answers.update({(user_id, doing): problem for user_id, problem in found.items()})
            except (PermissionDenied, NotFound) as exc:
                answers.update(
                    {(user_id, doing): exc.message for doing, ids in missing.items() for user_id in ids}
                )
        return answers

    @action(
        "reset-two-factor",
        lazy_gettext("Reset two-factor sign-in"),
        lazy_gettext(
            "Reset the second factor of the selected users? Their sessions end; they set it up again."
        ),
        add_in_list=False,
    )
    async def reset_two_factor(self, request: Request) -> Response:
        """Forget a user's second factor (needs `user.change`, and the account-authority rule)."""
        ids = query_ids(request)
        back = request.url_for("admin:list", identity=self.identity)
        if len(ids) != 1:
            outcomes.refused(request, gettext("Reset the second factor of one user at a time."))
            return RedirectResponse(back, status_code=302)
        try:
            uow = await request_uow(request)
            user = await UserService(uow).reset_two_factor(ids[0])
            await uow.commit()
        except (PermissionDenied, NotFound) as exc:
            status_code = 403 if isinstance(exc, PermissionDenied) else 404
            raise HTTPException(status_code=status_code, detail=exc.message) from exc
        except AppError as exc:
            outcomes.refused(request, exc.message)
        else:
            done = translated(
                "The second factor of %(name)s was reset. Their open sessions have ended.", name=user.username
            )
            outcomes.succeeded(request, done)
        return RedirectResponse(request.url_for("admin:details", identity=self.identity, pk=ids[0]), 302)

    @expose("/set-password/{pk}", methods=["GET", "POST"])
    async def set_password(self, request: Request) -> Response:
        """A separate form for a user's password (needs `user.change`)."""
        if not self.has_permission(request, "edit"):
            raise HTTPException(status_code=403)
        pk = self.parse_identifier(request.path_params["pk"])
        uow = await request_uow(request)
        user = (await uow.session.scalars(self.list_query(request).where(User.id == pk))).first()
        if user is None:
            raise HTTPException(status_code=404)
        problem = await self.account_problem(request, user.id, doing="change the password of")
        if problem:
            raise HTTPException(status_code=403, detail=problem)
        form = SetPasswordForm(await request.form()) if request.method == "POST" else SetPasswordForm()
        context: dict[str, Any] = {"model_view": self, "user": user, "form": form, "error": None}
        if request.method == "POST" and form.validate():
            try:
                await UserService(uow).set_password(pk, form.password.data or "")
                await uow.commit()
            except ValidationFailed as exc:
                form.password.errors = [*form.password.errors, *exc.errors.get("password", [])]
                context["error"] = exc.message
            else:
                done = translated(
                    "The password of %(name)s was set. Their open sessions have ended.", name=user.username
                )
                outcomes.succeeded(request, done)
                return RedirectResponse(request.url_for("admin:details", identity=self.identity, pk=pk), 302)
        status_code = 400 if request.method == "POST" else 200
        return await self.templates.TemplateResponse(
            request, "custodian/set_password.html", context, status_code=status_code
        )


class RoleForm(StyledForm):
    name = StringField(lazy_gettext("Name"), validators=[InputRequired(), Length(max=80)])
    description = TextAreaField(lazy_gettext("Description"), validators=[Optional(), Length(max=2000)])
    permissions = SelectMultipleField("Permissions", choices=[], validate_choice=True)
    # Not a field of the role's schemas: set after the save, through the rule `roles require-2fa` uses.
    requires_two_factor = BooleanField(
        lazy_gettext("Members must sign in with a second factor"),
        description=lazy_gettext("They set one up at their next sign-in if they have none."),
    )


class RoleAdmin(ServiceModelView, model=Role):
    menu_order = 8
    name = "Role"
    name_plural = "Roles"
    icon = "fa-solid fa-user-shield"
    category = "Accounts"
    can_delete = False  # roles are kept; take their permissions away instead

    column_list: ClassVar = [Role.id, Role.name, Role.description, Role.is_builtin, Role.requires_two_factor]
    column_details_list: ClassVar = [
        Role.id,
        Role.name,
        Role.description,
        Role.is_builtin,
        Role.requires_two_factor,
        Role.permissions,
    ]
    column_labels: ClassVar = {Role.requires_two_factor: "2FA required"}
    column_searchable_list: ClassVar = [Role.name]
    column_sortable_list: ClassVar = [Role.id, Role.name]
    column_default_sort: ClassVar = [(Role.name, False)]
    form_columns: ClassVar = [Role.name, Role.description, Role.permissions, Role.requires_two_factor]

    async def scaffold_form(self, rules: list[str] | None = None) -> type[Form]:
        grouped: dict[str, list[tuple[str, str]]] = {}
        # SQLAdmin builds the form without the request; its session maker is the request's unit of work.
        async with self.session_maker() as session:
            codenames = await session.scalars(select(Permission.codename).order_by(Permission.codename))
            for codename in codenames:
                grouped.setdefault(codename.split(".")[0], []).append((codename, codename))

        class BoundRoleForm(RoleForm):
            permissions = SelectMultipleField(
                "Permissions", choices=grouped, validate_choice=True, render_kw={"size": 16}
            )

        return BoundRoleForm

    async def get_form_data_for_edit(self, obj: Any) -> dict[str, Any]:
        return {
            "name": obj.name,
            "description": obj.description,
            "permissions": [p.codename for p in obj.permissions],
            "requires_two_factor": obj.requires_two_factor,
        }

    async def on_model_change(
        self, data: dict[str, Any], model: Any, is_created: bool, request: Request
    ) -> None:
        """The second-factor requirement, in the save's transaction (needs `role.change`; audited
        as a change of the role, as `manage.py roles require-2fa`). Members are asked at their next
        sign-in."""
        if "requires_two_factor" not in data:
            return
        wanted = bool(data["requires_two_factor"])
        if wanted != model.requires_two_factor:
            service = TwoFactorService(await request_uow(request))
            await service.set_role_requirement(model.name, required=wanted)
