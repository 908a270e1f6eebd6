"""Signing in and out, and turning a session token back into an `Actor`."""

from __future__ import annotations

import hashlib
import math
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import update

from backend.auth.actor import Actor
from backend.auth.passwords import MAX_PASSWORD_LENGTH, hasher_for, password_too_long
from backend.db.audit import event_entry
from backend.db.uow import UnitOfWork
from backend.errors import PermissionDenied
from backend.models import AuditEntry, AuthSession, LoginAttempt, User
from backend.repositories.auth import AuthSessionRepository, LoginAttemptRepository
from backend.services import two_factor
from backend.services.passkeys import NOT_VERIFIED, Ceremony, PasskeyService, RelyingParty
from backend.services.two_factor import TwoFactorService, challenge_expiry

# The audit entries of signing in and out: events of a session, not changes to anything.
SESSION_EVENTS = ("login", "login_failed", "login_refused", "logout", *two_factor.EVENTS)
# A password-only session's second step: the code of an enrolled user, or enrolment the policy requires.
CODE, ENROL = "code", "enrol"
CHALLENGE_OVER = "Your sign-in expired before it was finished. Sign in again."
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
    # Set when only the password was checked: the session opens nothing until this factor is done.
    pending_factor: str | None = None

    @property
    def ok(self) -> bool:
        return self.token is not None


@dataclass(frozen=True)
class SessionState:
    """What a session token stands for. A pending session's actor holds no permission at all."""

    actor: Actor
    pending_factor: str | None = None  # CODE or ENROL while only the password was given
    challenge_expired: bool = False  # pending, and past the few minutes it had


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

        factor = await self._factor_due(user)
        if factor is None:
            self._record(actor, "login", object_id=user.id, object_repr=user.username)
        # A sign-in is not an edit of the account: no version bump, so concurrent
        # sign-ins (or an admin editing the user meanwhile) never collide.
        values: dict[str, object] = {} if factor else {"last_login_at": now}
        if new_hash is not None:
            values["password_hash"] = new_hash
            self._record(
                actor,
                "update",
                object_id=user.id,
                object_repr=user.username,
                changes={"password_hash": ["[redacted]", "[redacted]"]},
            )
        if values:
            await self.uow.repo(User).set_columns(user.id, **values)
        token = self.open_session(
            user.id, now=now, client_address=client_address, user_agent=user_agent, pending_factor=factor
        )
        self.attempts.stage(LoginAttempt(username=username, client_address=client_address, succeeded=True))
        await self.uow.flush()
        return LoginOutcome(token, user.id, "Signed in.", pending_factor=factor)

    async def pass_second_factor(self, token: str, code: str, *, client_address: str) -> LoginOutcome:
        """The second step of signing in: `code` (TOTP or recovery) for a session pending CODE.

        On success the session gets a new token (returned) and opens the admin. A wrong or reused
        code is a failed attempt, counted toward the throttling of the username and the address;
        while throttled no code is looked at. Raises `ValidationFailed` for input that is no code,
        `PermissionDenied` when the session is not waiting for a code (over, or never was).
        """

        async def accepted(_auth_session: AuthSession, user: User) -> bool:
            return await TwoFactorService(self.uow).check(user, code) is not None

        return await self._second_step(token, client_address, accepted, refusal=two_factor.WRONG_CODE)

    async def finish_enrolment(
        self, token: str, form_token: str, code: str, *, client_address: str
    ) -> tuple[LoginOutcome, list[str]]:
        """The second step for a session pending ENROL: confirm the set-up, then open the admin.

        Returns the signed-in outcome (a new token) and the recovery codes to show once. Raises
        as `TwoFactorService.confirm_enrolment` does (nothing stored), and `PermissionDenied` when
        the session is not waiting for enrolment.
        """
        auth_session, user = await self._pending(token, ENROL)
        someone = Actor(user_id=user.id, username=user.username, client_address=client_address[:64])
        self.uow.audit_as(someone)
        codes = await TwoFactorService(self.uow).confirm_enrolment(user.id, form_token, code)
        outcome = await self._complete(
            auth_session, user, now=datetime.now(UTC), client_address=client_address[:64]
        )
        return outcome, codes

    async def passkey_options(self, token: str, rp: RelyingParty) -> Ceremony:
        """Options for the second step with a passkey, for a session pending CODE: the user's own
        passkeys only, the challenge bound to this session. Raises `PermissionDenied` when the
        session is not waiting for a code, `Conflict` when the user has no passkey."""
        auth_session, user = await self._pending(token, CODE)
        return await PasskeyService(self.uow).authentication_options(
            user, session_key=str(auth_session.id), rp=rp
        )

    async def pass_passkey(
        self, token: str, challenge_token: str, credential: object, *, rp: RelyingParty, client_address: str
    ) -> LoginOutcome:
        """The second step with a passkey: as `pass_second_factor`, with the browser's answer to
        `passkey_options`. A refused answer is a failed attempt (throttled like a wrong code);
        raises `ValidationFailed` for an expired or foreign challenge or no answer at all."""

        async def accepted(auth_session: AuthSession, user: User) -> bool:
            return await PasskeyService(self.uow).verify_assertion(
                user, challenge_token, credential, session_key=str(auth_session.id), rp=rp
            )

        return await self._second_step(token, client_address, accepted, refusal=NOT_VERIFIED)

    async def _second_step(
        self,
        token: str,
        client_address: str,
        accepted: Callable[[AuthSession, User], Awaitable[bool]],
        *,
        refusal: str,
    ) -> LoginOutcome:
        """The second step of a session pending CODE, whatever the factor: throttled before
        `accepted` is asked, a refusal counted like a wrong password, success a new session."""
        auth_session, user = await self._pending(token, CODE)
        now = datetime.now(UTC)
        client_address = client_address[:64]
        someone = Actor(user_id=user.id, username=user.username, client_address=client_address)
        self.uow.audit_as(someone)
        throttled = await self._throttle_message(user.username, client_address, now)
        if throttled:
            self._record(someone, "login_refused", object_id=user.id, object_repr=user.username)
            return LoginOutcome(None, user.id, throttled, throttled=True, pending_factor=CODE)
        if not await accepted(auth_session, user):
            self.count_failed_code(user.username, client_address)
            await self.uow.flush()
            return LoginOutcome(None, user.id, refusal, pending_factor=CODE)
        return await self._complete(auth_session, user, now=now, client_address=client_address)

    async def resolve(self, token: str, *, client_address: str | None = None) -> SessionState | None:
        """What the session token stands for, or None when it is unknown or over.

        A pending session (password only) is answered with its factor and an actor without
        permissions, also once its few minutes are over (`challenge_expired`), so the caller can
        say so. Otherwise as `authenticate`.
        """
        if not token:
            return None
        found = await self.sessions.lookup(hash_token(token))  # plain values: every request runs it
        if found is None:
            return None
        auth_session, user = found.session, found.user
        if auth_session.revoked_at is not None or not user.is_active or user.deleted_at is not None:
            return None
        now = datetime.now(UTC)
        if auth_session.pending_factor is not None:
            nobody_yet = Actor(user_id=user.id, username=user.username, client_address=client_address)
            expired = auth_session.expires_at <= now
            return SessionState(nobody_yet, auth_session.pending_factor, challenge_expired=expired)
        idle_limit = timedelta(minutes=self.settings.session_idle_timeout_minutes)
        if auth_session.expires_at <= now or auth_session.last_seen_at + idle_limit <= now:
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
        return SessionState(actor)

    async def authenticate(self, token: str, *, client_address: str | None = None) -> Actor | None:
        """The actor for a session token, or None if the session is unknown, over or pending.

        A session is over once revoked, idle longer than the idle timeout, past
        its absolute expiry, or when its user is inactive or deleted; a session
        signed in by password only (a second factor due) is no actor's yet. The
        unit of work may be read-only: a due `last_seen_at` touch switches it to
        writing (the caller commits when `touched`).
        """
        state = await self.resolve(token, client_address=client_address)
        return state.actor if state is not None and state.pending_factor is None else None

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

    async def code_throttled(self, username: str, client_address: str) -> str | None:
        """Why a code may not be tried now (too many failures, as for passwords), or None."""
        return await self._throttle_message(username, client_address[:64], datetime.now(UTC))

    def count_failed_code(self, username: str, client_address: str) -> None:
        """A wrong second-factor code is a failed sign-in attempt: it counts toward throttling."""
        failed = LoginAttempt(username=username, client_address=client_address[:64], succeeded=False)
        self.attempts.stage(failed)

    async def _factor_due(self, user: User) -> str | None:
        if await TwoFactorService(self.uow).has_second_factor(user):  # TOTP or a passkey
            return CODE
        return ENROL if await TwoFactorService(self.uow).required_for(user) else None

    async def _pending(self, token: str, factor: str) -> tuple[AuthSession, User]:
        found = await self.sessions.find(hash_token(token)) if token else None
        if found is None:
            raise PermissionDenied(CHALLENGE_OVER)
        auth_session, user = found.session, found.user
        if (
            auth_session.pending_factor != factor
            or auth_session.revoked_at is not None
            or auth_session.expires_at <= datetime.now(UTC)
            or not user.is_active
            or user.deleted_at is not None
        ):
            raise PermissionDenied(CHALLENGE_OVER)
        return auth_session, user

    async def _complete(
        self, auth_session: AuthSession, user: User, *, now: datetime, client_address: str
    ) -> LoginOutcome:
        """Open the admin to a pending session, under a new token (the old one, seen before the
        second factor, is worth nothing from now on)."""
        token = secrets.token_urlsafe(32)
        result = await self.uow.session.execute(
            update(AuthSession)
            .where(
                AuthSession.id == auth_session.id,
                AuthSession.pending_factor.is_not(None),
                AuthSession.revoked_at.is_(None),
            )
            .values(
                token_hash=hash_token(token),
                pending_factor=None,
                last_seen_at=now,
                expires_at=self._session_end(now),
            )
            .execution_options(synchronize_session=False)
        )
        if int(getattr(result, "rowcount", 0) or 0) != 1:
            raise PermissionDenied(CHALLENGE_OVER)
        await self.uow.repo(User).set_columns(user.id, last_login_at=now)
        actor = Actor(user_id=user.id, username=user.username, client_address=client_address)
        self._record(actor, "login", object_id=user.id, object_repr=user.username)
        return LoginOutcome(token, user.id, "Signed in.")

    def open_session(
        self,
        user_id: int,
        *,
        now: datetime,
        client_address: str,
        user_agent: str,
        pending_factor: str | None = None,
    ) -> str:
        """Stage a new session of the user and return its token (only the token's hash is kept).
        A session pending a factor ends within minutes; any other at the absolute timeout."""
        token = secrets.token_urlsafe(32)
        self.sessions.stage(
            AuthSession(
                token_hash=hash_token(token),
                user_id=user_id,
                created_at=now,
                last_seen_at=now,
                expires_at=challenge_expiry(now, pending_factor)
                if pending_factor
                else self._session_end(now),
                client_address=client_address[:64],
                user_agent=user_agent[:255],
                pending_factor=pending_factor,
            )
        )
        return token

    def _session_end(self, now: datetime) -> datetime:
        return now + timedelta(hours=self.settings.session_absolute_timeout_hours)

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
