"""User accounts: creation, changes, passwords, deactivation.

Nobody raises their own privileges, and nobody manages an account that holds
more than they do (backend/auth/authority.py).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from datetime import UTC, datetime
from typing import ClassVar

from sqlalchemy.orm import selectinload

from backend.auth.authority import Account, authority_problem, require_authority
from backend.auth.passwords import hasher_for, password_problems
from backend.auth.permissions import is_purge
from backend.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from backend.models import Role, User
from backend.repositories.auth import AuthSessionRepository
from backend.repositories.users import UserRepository
from backend.schemas.user import UserCreate, UserUpdate
from backend.services.base import CrudService
from backend.services.two_factor import RESET, TwoFactorService

# The languages an account may choose for the admin; None follows the browser.
LANGUAGES = ("en", "de")


class UserService(CrudService[User, UserCreate, UserUpdate]):
    """Manage users (needs `user.*`).

    Nobody changes, deletes, restores or purges an account, sets its
    password or ends its sessions when it holds a permission they lack (so
    only a superuser manages a superuser); everyone may manage their own
    account within the other rules. Only a superuser may create a superuser,
    grant superuser status, or give a role that holds a purge permission;
    nobody may give a role holding permissions they lack themselves. A
    password change, deactivation, deletion or change of roles ends the
    user's open sessions. Refusals raise `PermissionDenied` naming what is
    lacking.
    """

    model = User
    create_schema = UserCreate
    update_schema = UserUpdate
    unique_messages: ClassVar[dict[str, str]] = {"username": "A user named {value} already exists."}

    async def build(self, payload: UserCreate) -> User:
        if payload.is_superuser:
            self.actor.require_superuser("create a superuser")
        self._check_password(payload.password, username=payload.username)
        roles = await self._roles_to_assign(payload.roles)
        if await self.repo.exists(username=payload.username):
            raise Conflict(f"A user named {payload.username} already exists.", field="username")
        return User(
            username=payload.username,
            email=payload.email,
            password_hash=hasher_for(self.uow.settings).hash(payload.password),
            is_active=payload.is_active,
            is_superuser=payload.is_superuser,
            roles=roles,
        )

    async def apply(self, obj: User, payload: UserUpdate) -> None:
        fields = payload.model_fields_set
        await self._require_authority(obj, doing="change the account of")
        if "is_superuser" in fields and payload.is_superuser != obj.is_superuser:
            self.actor.require_superuser("grant or remove superuser status")
        if "is_active" in fields and payload.is_active is False and obj.id == self.actor.user_id:
            raise PermissionDenied("You cannot deactivate your own account.")
        end_sessions = False
        if "roles" in fields and payload.roles is not None:
            new_roles = await self._roles_to_assign(payload.roles)
            current = await self._current_roles(obj)
            if {r.id for r in new_roles} != {r.id for r in current}:
                obj.roles = new_roles
                end_sessions = True
        for field in ("email", "is_active", "is_superuser"):
            value = getattr(payload, field)
            if field in fields and value is not None:
                setattr(obj, field, value)
        if "is_active" in fields and payload.is_active is False:
            end_sessions = True
        if end_sessions:
            await self._end_sessions(obj)

    async def before_delete(self, obj: User) -> None:
        if obj.id == self.actor.user_id:
            raise PermissionDenied("You cannot delete your own account.")
        await self._require_authority(obj, doing="delete the account of")
        await self._end_sessions(obj)

    async def after_restore(self, obj: User, deleted_at: datetime | None) -> None:
        await self._require_authority(obj, doing="restore the account of")

    async def before_purge(self, obj: User) -> None:
        await self._require_authority(obj, doing="purge the account of")

    async def set_password(self, user_id: object, password: str) -> User:
        """Set a new password (needs `user.change`) and end the user's sessions."""
        self.require("change")
        user = await self._get_live(user_id)
        await self._require_authority(user, doing="change the password of")
        self._check_password(password, username=user.username)
        async with self.writing(user):
            user.password_hash = hasher_for(self.uow.settings).hash(password)
            await self._end_sessions(user)
        return user

    async def change_own_password(self, password: str) -> User:
        """Set the actor's own new password (no permission: their own account) and end all their sessions.

        The same policy as `set_password`; the caller has checked the current password
        (backend/services/account.py) and opens the session to keep afterwards. Raises
        `ValidationFailed` (field `password`) for a password the policy refuses, `PermissionDenied`
        for an actor that is not a user, `NotFound` when their account is gone.
        """
        if self.actor.user_id is None:
            raise PermissionDenied("Only a signed-in user changes their own password.")
        user = await self._get_live(self.actor.user_id)
        self._check_password(password, username=user.username)
        async with self.writing(user):
            user.password_hash = hasher_for(self.uow.settings).hash(password)
            await self._end_sessions(user)
        return user

    async def reset_two_factor(self, user_id: object) -> User:
        """Forget the user's second factors: app, recovery codes, passkeys (needs `user.change`); end
        their sessions.

        Under the account-authority rule (never for an account holding more than the actor).
        The user sets it up again at their next sign-in when policy requires it. Audited as
        `two_factor_reset` (no secret in it). Raises `Conflict` when none is set up.
        """
        self.require("change")
        user = await self._get_live(user_id)
        await self._require_authority(user, doing="reset the second factor of")
        factors = TwoFactorService(self.uow)
        if not await factors.has_second_factor(user):
            raise Conflict(f"{user.username} has no second factor to reset.")
        await factors.forget_every_factor(user)
        await self._end_sessions(user)
        factors.record(user, RESET)
        return user

    async def deactivate(self, user_id: object) -> User:
        """Mark the user inactive (needs `user.change`): they can no longer sign in."""
        return await self.update(user_id, {"is_active": False})

    async def preferred_locale(self) -> str | None:
        """The language the actor chose for the admin, or None (their browser's): their own, no permission."""
        if self.actor.user_id is None:
            return None
        user = await self.repo.get(self.actor.user_id)
        return user.locale if user is not None else None

    async def choose_locale(self, locale: str | None) -> User:
        """Set the language the admin speaks to the actor: one of `LANGUAGES`, or None for the browser's.

        Everyone signed in chooses their own (no permission needed); the change is audited like any
        change of the account. Raises `ValidationFailed` for another language, `PermissionDenied`
        for an actor that is not a user, `NotFound` when their account is gone.
        """
        if locale is not None and locale not in LANGUAGES:
            choices = ", ".join(LANGUAGES)
            raise ValidationFailed({"locale": [f"Choose one of {choices}, or none for the browser's."]})
        if self.actor.user_id is None:
            raise PermissionDenied("Only a signed-in user chooses a language.")
        user = await self._get_live(self.actor.user_id)
        if user.locale != locale:
            async with self.writing(user):
                user.locale = locale
        return user

    async def management_problem(
        self, user_id: object, *, doing: str = "change the account of"
    ) -> str | None:
        """Why the actor may not manage this account (see the class), or None (needs `user.view`).

        The rule the writes apply, asked beforehand: the admin shows no control
        that would be refused. Raises `NotFound` for an unknown user.
        """
        self.require("view")
        user_id = self._id(user_id)
        if user_id == self.actor.user_id or self.actor.is_superuser:
            return None  # the rule allows these whatever the account holds: no need to load it
        return authority_problem(self.actor, await self._account(user_id), doing=doing)

    async def management_problems(
        self, user_ids: Iterable[object], *, doing: str = "change the account of"
    ) -> dict[int, str | None]:
        """`management_problem` for many accounts in one query: each id -> why not, or None.

        For a page of users (live or deleted): the admin asks once per page,
        not once per row. An unknown id is answered with why it cannot be managed.
        """
        self.require("view")
        wanted = {self._id(user_id) for user_id in user_ids}
        if self.actor.is_superuser:
            others: set[int] = set()
        else:
            others = wanted - {self.actor.user_id}
        accounts = await self._accounts(others) if others else {}
        answers: dict[int, str | None] = {}
        for user_id in wanted:
            if user_id not in others:
                answers[user_id] = None  # the rule allows these whatever the account holds
            elif user_id in accounts:
                answers[user_id] = authority_problem(self.actor, accounts[user_id], doing=doing)
            else:
                answers[user_id] = f"User {user_id} does not exist."
        return answers

    async def get_by_username(self, username: str) -> User:
        self.require("view")
        user = await self.repo.get_by(username=username.strip())
        if user is None:
            raise ValidationFailed({"username": [f"No user named {username}."]}, f"No user named {username}.")
        return user

    async def list_with_roles(self) -> list[User]:
        self.require("view")
        return await self.repo.list(order_by=(User.username,), options=(selectinload(User.roles),))

    # Helpers ----------------------------------------------------------------

    def _check_password(self, password: str, *, username: str) -> None:
        problems = password_problems(
            password, username=username, min_length=self.uow.settings.password_min_length
        )
        if problems:
            raise ValidationFailed({"password": problems}, "The password is not acceptable.")

    async def _roles_to_assign(self, names: Sequence[str]) -> list[Role]:
        wanted = sorted({name.strip() for name in names if name.strip()})
        if not wanted:
            return []
        roles = await self.uow.repo(Role).list(
            where=[Role.name.in_(wanted)], options=(selectinload(Role.permissions),)
        )
        missing = sorted(set(wanted) - {role.name for role in roles})
        if missing:
            raise ValidationFailed({"roles": [f"No such role: {', '.join(missing)}."]})
        if not self.actor.is_superuser:
            for role in roles:
                codenames = {permission.codename for permission in role.permissions}
                if any(is_purge(codename) for codename in codenames):
                    raise PermissionDenied(
                        f"Only a superuser can give the role {role.name}: it can purge records."
                    )
                lacking = sorted(codename for codename in codenames if not self.actor.has_perm(codename))
                if lacking:
                    raise PermissionDenied(
                        f"You cannot give the role {role.name}: "
                        f"it holds permissions you lack ({', '.join(lacking)})."
                    )
        return roles

    async def _require_authority(self, user: User, *, doing: str) -> None:
        if user.id == self.actor.user_id or self.actor.is_superuser:
            return  # the rule allows these whatever the account holds: no need to load it
        require_authority(self.actor, await self._account(user.id), doing=doing)

    async def _account(self, user_id: int) -> Account:
        account = (await self._accounts({user_id})).get(user_id)
        if account is None:
            raise NotFound(f"User {user_id} does not exist.")
        return account

    async def _accounts(self, user_ids: Collection[int]) -> dict[int, Account]:
        """The accounts (live or deleted) with the permissions their roles give, in one query."""
        grants = await self.uow.repo(UserRepository).grants(user_ids)
        return {
            user_id: Account(
                user_id=user_id,
                username=held.username,
                is_superuser=held.is_superuser,
                permissions=held.permissions,
            )
            for user_id, held in grants.items()
        }

    async def _current_roles(self, user: User) -> list[Role]:
        # Loaded explicitly: replacing an unloaded collection would lazy-load it.
        await self.repo.load(user, "roles")
        return list(user.roles)

    async def _end_sessions(self, user: User) -> None:
        await self.uow.repo(AuthSessionRepository).revoke_for_user(user.id, datetime.now(UTC))
