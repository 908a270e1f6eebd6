"""Self-service for the signed-in user: their own password and their own sessions.

No permission is needed: each user acts on their own account only, through the
session they are using now, named by its token. A session that is over, not
theirs, or signed in by password only (a second factor due) is refused with
`PermissionDenied`. Every change is audited in the caller's transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import ColumnElement, and_, update

from backend.auth.actor import Actor
from backend.auth.passwords import hasher_for, password_too_long
from backend.db.audit import event_entry
from backend.db.uow import UnitOfWork
from backend.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from backend.models import AuditEntry, AuthSession, User
from backend.repositories.auth import AuthSessionRepository
from backend.services.auth import AuthService, hash_token
from backend.services.users import UserService

# The audit actions (at most 20 characters, the column's width); events of the user's account.
# (S105: names and sentences about passwords, not passwords.)
PASSWORD_CHANGED = "password_changed"  # noqa: S105
PASSWORD_FAILED = "password_failed"  # noqa: S105 - a wrong current password: counted like a failed sign-in
PASSWORD_REFUSED = "password_refused"  # noqa: S105 - not tried: too many failures
SESSION_ENDED = "session_ended"
SESSIONS_ENDED = "sessions_ended"
EVENTS = (PASSWORD_CHANGED, PASSWORD_FAILED, PASSWORD_REFUSED, SESSION_ENDED, SESSIONS_ENDED)

# Fixed sentences (the admin shows them translated: admin/views/my_account_security.py marks each).
SESSION_OVER = "Your session has ended. Sign in again."
WRONG_PASSWORD = "Your current password is not right."  # noqa: S105
SAME_PASSWORD = "Choose a new password, not the current one."  # noqa: S105
PASSWORD_CHANGED_MESSAGE = "Your password was changed. Your other sessions have ended."  # noqa: S105
NO_SUCH_SESSION = "You have no such open session. It may have ended already."
THIS_SESSION = "That is the session you are using now. Sign out to end it."


@dataclass(frozen=True)
class OwnSession:
    """One open session of the user, as they may see it (never its token)."""

    id: int
    created_at: datetime
    last_seen_at: datetime
    client_address: str
    user_agent: str
    current: bool  # the session these details were asked from


@dataclass(frozen=True)
class PasswordChange:
    """The result of a password change. The caller commits either way: failures are recorded."""

    token: str | None  # the session's new token, on success
    message: str
    throttled: bool = False

    @property
    def ok(self) -> bool:
        return self.token is not None


class AccountService:
    """The actor's own password and sessions, through the session they use (`token`)."""

    def __init__(self, uow: UnitOfWork) -> None:
        self.uow = uow
        self.settings = uow.settings
        self.sessions = uow.repo(AuthSessionRepository)

    @property
    def actor(self) -> Actor:
        return self.uow.actor

    async def change_password(
        self, token: str, current_password: str, new_password: str, *, client_address: str
    ) -> PasswordChange:
        """Check the current password, then set the new one and keep only this browser signed in.

        A wrong current password is a failed sign-in attempt: it counts toward the throttling
        of the username and the address (as `AuthService.login`), and while throttled no password
        is looked at. The new password follows the policy of `UserService.set_password`. On success
        every session of the user ends, this one too, and this browser goes on under a new
        session (the returned token). Raises `ValidationFailed` (field `password`) for a new
        password refused, `PermissionDenied` when `token` is no open session of the actor.
        """
        current, user = await self._current(token)
        client_address = client_address[:64]
        auth = AuthService(self.uow)
        throttled = await auth.code_throttled(user.username, client_address)
        if throttled:
            self._record(user, PASSWORD_REFUSED)
            await self.uow.flush()
            return PasswordChange(None, throttled, throttled=True)
        verified = False
        if not password_too_long(current_password):
            verified, _ = hasher_for(self.settings).verify_and_update(current_password, user.password_hash)
        if not verified:
            auth.count_failed_code(user.username, client_address)
            self._record(user, PASSWORD_FAILED)
            await self.uow.flush()
            return PasswordChange(None, WRONG_PASSWORD)
        if new_password == current_password:
            raise ValidationFailed({"password": [SAME_PASSWORD]}, "The password is not acceptable.")
        await UserService(self.uow).change_own_password(new_password)  # ends every session of the user
        new_token = AuthService(self.uow).open_session(
            user.id, now=datetime.now(UTC), client_address=client_address, user_agent=current.user_agent
        )
        self._record(user, PASSWORD_CHANGED, changes={"by": "its owner"})
        await self.uow.flush()
        return PasswordChange(new_token, PASSWORD_CHANGED_MESSAGE)

    async def open_sessions(self, token: str) -> list[OwnSession]:
        """The actor's open sessions (not ended, not expired, not half signed in), latest used first.

        Raises `PermissionDenied` when `token` is no open session of the actor.
        """
        current, user = await self._current(token)
        now = datetime.now(UTC)
        rows = await self.sessions.list(
            where=[self._open(user.id, now)],
            order_by=(AuthSession.last_seen_at.desc(), AuthSession.id.desc()),
        )
        return [
            OwnSession(
                id=row.id,
                created_at=row.created_at,
                last_seen_at=row.last_seen_at,
                client_address=row.client_address,
                user_agent=row.user_agent,
                current=row.id == current.id,
            )
            for row in rows
        ]

    async def end_session(self, token: str, session_id: int) -> None:
        """End one other open session of the actor.

        Raises `Conflict` for the session in use (sign-out ends that one), `NotFound` for a
        session that is not the actor's or not open (nothing is ended), `PermissionDenied`
        when `token` is no open session of the actor.
        """
        current, user = await self._current(token)
        if session_id == current.id:
            raise Conflict(THIS_SESSION)
        now = datetime.now(UTC)
        ended = await self._revoke(and_(self._open(user.id, now), AuthSession.id == session_id), now)
        if ended != 1:
            raise NotFound(NO_SUCH_SESSION)
        self._record(user, SESSION_ENDED, changes={"session": session_id})
        await self.uow.flush()

    async def end_other_sessions(self, token: str) -> int:
        """End every session of the actor but the one in use, half signed-in ones too; how many.

        Raises `PermissionDenied` when `token` is no open session of the actor.
        """
        current, user = await self._current(token)
        now = datetime.now(UTC)
        others = and_(
            AuthSession.user_id == user.id,
            AuthSession.id != current.id,
            AuthSession.revoked_at.is_(None),
            AuthSession.expires_at > now,
        )
        ended = await self._revoke(others, now)
        if ended:
            self._record(user, SESSIONS_ENDED, changes={"sessions": ended})
            await self.uow.flush()
        return ended

    # Helpers -------------------------------------------------------------------------------------

    async def _current(self, token: str) -> tuple[AuthSession, User]:
        """The actor's session in use and their account; `PermissionDenied` unless both are open."""
        found = await self.sessions.find(hash_token(token)) if token else None
        if found is None or self.actor.user_id is None:
            raise PermissionDenied(SESSION_OVER)
        auth_session, user = found.session, found.user
        now = datetime.now(UTC)
        idle_limit = timedelta(minutes=self.settings.session_idle_timeout_minutes)
        if (
            user.id != self.actor.user_id
            or auth_session.revoked_at is not None
            or auth_session.pending_factor is not None
            or auth_session.expires_at <= now
            or auth_session.last_seen_at + idle_limit <= now
            or not user.is_active
            or user.deleted_at is not None
        ):
            raise PermissionDenied(SESSION_OVER)
        return auth_session, user

    def _open(self, user_id: int, now: datetime) -> ColumnElement[bool]:
        """The user's sessions that open the admin now (the rule of `AuthService.resolve`)."""
        idle_since = now - timedelta(minutes=self.settings.session_idle_timeout_minutes)
        return and_(
            AuthSession.user_id == user_id,
            AuthSession.revoked_at.is_(None),
            AuthSession.pending_factor.is_(None),
            AuthSession.expires_at > now,
            AuthSession.last_seen_at > idle_since,
        )

    async def _revoke(self, which: ColumnElement[bool], now: datetime) -> int:
        result = await self.uow.session.execute(
            update(AuthSession)
            .where(which)
            .values(revoked_at=now)
            .execution_options(synchronize_session=False)
        )
        return int(getattr(result, "rowcount", 0) or 0)

    def _record(self, user: User, action: str, *, changes: dict[str, object] | None = None) -> None:
        entry = event_entry(
            self.actor,
            action=action,
            model="user",
            object_id=user.id,
            object_repr=user.username,
            changes=changes,
        )
        self.uow.repo(AuditEntry).stage(entry)
