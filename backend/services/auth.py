"""Signing in and out, and turning a session token back into an `Actor`."""

from __future__ import annotations

import hashlib
import math
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from backend.auth.actor import Actor
from backend.auth.passwords import MAX_PASSWORD_LENGTH, hasher_for, password_too_long
from backend.db.audit import event_entry
from backend.db.uow import UnitOfWork
from backend.models import AuditEntry, AuthSession, LoginAttempt, User
from backend.repositories.auth import AuthSessionRepository, LoginAttemptRepository

# The audit entries of signing in and out: events of a session, not changes to anything.
SESSION_EVENTS = ("login", "login_failed", "login_refused", "logout")
BAD_CREDENTIALS = "Please enter a correct username and password. Both fields may be case-sensitive."
PASSWORD_TOO_LONG = (
    f"Please enter a correct username and password. A password has at most {MAX_PASSWORD_LENGTH} characters."
)
# Writing last_seen_at on every request would double the statements per page.
TOUCH_INTERVAL = timedelta(seconds=60)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class LoginOutcome:
    """The result of a sign-in attempt. The caller commits either way: failures are recorded."""

    token: str | None
    user_id: int | None
    message: str
    throttled: bool = False

    @property
    def ok(self) -> bool:
        return self.token is not None


class AuthService:
    """Sign-in, sign-out and session checks. Needs no permission: it is how actors come to be."""

    def __init__(self, uow: UnitOfWork) -> None:
        self.uow = uow
        self.settings = uow.settings
        self.sessions = uow.repo(AuthSessionRepository)
        self.attempts = uow.repo(LoginAttemptRepository)
        self.touched = False  # whether authenticate() wrote last_seen_at (the caller commits)

    async def login(
        self, username: str, password: str, *, client_address: str, user_agent: str = ""
    ) -> LoginOutcome:
        """Check credentials, record the attempt, and open a session on success.

        Unknown users and wrong passwords get the same message and cost the
        same time. Too many recent failures for the username or the address
        refuse the attempt before the password is looked at. A password over
        `MAX_PASSWORD_LENGTH` is a failed attempt, refused before any user is
        looked up or anything is hashed.
        """
        now = datetime.now(UTC)
        username = username.strip()[:150]
        client_address = client_address[:64]

        someone = Actor(user_id=None, username=username or "anonymous", client_address=client_address)
        throttled = await self._throttle_message(username, client_address, now)
        if throttled:
            # Audited, but not counted as a failure: no password was tried, and counting refusals
            # would let anyone who keeps knocking keep an account (or an address) locked for good.
            self._record(someone, "login_refused", object_repr=username)
            return LoginOutcome(None, None, throttled, throttled=True)

        if password_too_long(password):
            self.attempts.stage(
                LoginAttempt(username=username, client_address=client_address, succeeded=False)
            )
            self._record(someone, "login_failed", object_repr=username)
            return LoginOutcome(None, None, PASSWORD_TOO_LONG)

        user = await self.uow.repo(User).get_by(username=username)
        hasher = hasher_for(self.settings)
        if user is None:
            hasher.spend_verification_time(password)
            verified, new_hash = False, None
        else:
            verified, new_hash = hasher.verify_and_update(password, user.password_hash)

        if user is None or not verified or not user.is_active:
            self.attempts.stage(
                LoginAttempt(username=username, client_address=client_address, succeeded=False)
            )
            self._record(someone, "login_failed", object_id=user.id if user else "", object_repr=username)
            return LoginOutcome(None, None, BAD_CREDENTIALS)

        # From here on the user acts: a hash upgrade is recorded as theirs.
        actor = Actor(user_id=user.id, username=user.username, client_address=client_address)
        self.uow.audit_as(actor)
        self._record(actor, "login", object_id=user.id, object_repr=user.username)

        # A sign-in is not an edit of the account: no version bump, so concurrent
        # sign-ins (or an admin editing the user meanwhile) never collide.
        values: dict[str, object] = {"last_login_at": now}
        if new_hash is not None:
            values["password_hash"] = new_hash
            self._record(
                actor,
                "update",
                object_id=user.id,
                object_repr=user.username,
                changes={"password_hash": ["[redacted]", "[redacted]"]},
            )
        await self.uow.repo(User).set_columns(user.id, **values)
        token = secrets.token_urlsafe(32)
        self.sessions.stage(
            AuthSession(
                token_hash=hash_token(token),
                user_id=user.id,
                created_at=now,
                last_seen_at=now,
                expires_at=now + timedelta(hours=self.settings.session_absolute_timeout_hours),
                client_address=client_address,
                user_agent=user_agent[:255],
            )
        )
        self.attempts.stage(LoginAttempt(username=username, client_address=client_address, succeeded=True))
        await self.uow.flush()
        return LoginOutcome(token, user.id, "Signed in.")

    async def authenticate(self, token: str, *, client_address: str | None = None) -> Actor | None:
        """The actor for a session token, or None if the session is unknown or over.

        A session is over once revoked, idle longer than the idle timeout, past
        its absolute expiry, or when its user is inactive or deleted. The unit
        of work may be read-only: a due `last_seen_at` touch switches it to
        writing (the caller commits when `touched`).
        """
        if not token:
            return None
        found = await self.sessions.find(hash_token(token))
        if found is None:
            return None
        now = datetime.now(UTC)
        auth_session, user = found.session, found.user
        idle_limit = timedelta(minutes=self.settings.session_idle_timeout_minutes)
        if (
            auth_session.revoked_at is not None
            or auth_session.expires_at <= now
            or auth_session.last_seen_at + idle_limit <= now
            or not user.is_active
            or user.deleted_at is not None
        ):
            return None
        actor = Actor(
            user_id=user.id,
            username=user.username,
            is_superuser=user.is_superuser,
            permissions=found.permissions,
            client_address=client_address,
        )
        if now - auth_session.last_seen_at >= TOUCH_INTERVAL:
            session_id = auth_session.id
            # Most requests only read; the occasional touch takes the write lock.
            await self.uow.begin_writing()
            # The write transaction starts after the read: the UPDATE checks again that the session is open.
            if not await self.sessions.touch(session_id, now):
                return None
            self.touched = True
        return actor

    async def logout(self, token: str, *, client_address: str | None = None) -> None:
        """End the session: the same cookie is refused from now on."""
        if not token:
            return
        found = await self.sessions.find(hash_token(token))
        was_open = found is not None and found.session.revoked_at is None
        await self.sessions.revoke(hash_token(token), datetime.now(UTC))
        if found is not None and was_open:
            user = found.user
            actor = Actor(user_id=user.id, username=user.username, client_address=client_address)
            self._record(actor, "logout", object_id=user.id, object_repr=user.username)

    async def _throttle_message(self, username: str, client_address: str, now: datetime) -> str | None:
        window = timedelta(minutes=self.settings.login_throttle_window_minutes)
        since = now - window
        by_user, by_address = await self.attempts.count_failures(
            username=username, client_address=client_address, since=since
        )
        if (
            by_user < self.settings.login_max_failures_per_user
            and by_address < self.settings.login_max_failures_per_address
        ):
            return None
        oldest = await self.attempts.oldest_failure(
            username=username, client_address=client_address, since=since
        )
        wait = (oldest + window - now) if oldest else window
        minutes = max(1, math.ceil(wait.total_seconds() / 60))
        return (
            f"Too many failed sign-in attempts. Try again in {minutes} minute{'s' if minutes != 1 else ''}."
        )

    def _record(
        self,
        actor: Actor,
        action: str,
        *,
        object_id: object = "",
        object_repr: str = "",
        changes: dict[str, Any] | None = None,
    ) -> None:
        """An audit entry about a user that is not a row change (sign-in, sign-out, refusal)."""
        entry = event_entry(
            actor, action=action, model="user", object_id=object_id, object_repr=object_repr, changes=changes
        )
        self.uow.repo(AuditEntry).stage(entry)
