"""Queries for sign-in: sessions with their user and permissions, login attempts."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, bindparam, func, select, update

from backend.models import AuthSession, LoginAttempt, Permission, User
from backend.repositories.base import Repository
from backend.repositories.users import with_role_permissions


@dataclass(frozen=True)
class SessionWithUser:
    session: AuthSession
    user: User
    permissions: frozenset[str]


@dataclass(frozen=True, slots=True)
class SessionRow:
    """What the check of every request reads of a session: whether it is open, and since when used."""

    id: int
    revoked_at: datetime | None
    pending_factor: str | None
    expires_at: datetime
    last_seen_at: datetime


@dataclass(frozen=True, slots=True)
class SessionUserRow:
    """What the check of every request reads of the session's user: who, and whether they may act."""

    id: int
    username: str
    is_active: bool
    deleted_at: datetime | None
    is_superuser: bool


@dataclass(frozen=True)
class SessionLookup:
    session: SessionRow
    user: SessionUserRow
    permissions: frozenset[str]


# Built once: every request runs it. Plain columns rather than entities: no ORM objects to load, track and
# collect for a read whose result is a few values.
_LOOKUP = with_role_permissions(
    select(
        AuthSession.id,
        AuthSession.revoked_at,
        AuthSession.pending_factor,
        AuthSession.expires_at,
        AuthSession.last_seen_at,
        User.id,
        User.username,
        User.is_active,
        User.deleted_at,
        User.is_superuser,
        Permission.codename,
    ).join(User, User.id == AuthSession.user_id)
).where(AuthSession.token_hash == bindparam("token_hash"))


class AuthSessionRepository(Repository[AuthSession]):
    model = AuthSession

    async def lookup(self, token_hash: str) -> SessionLookup | None:
        """The session for `token_hash`, its user and their permission codenames, as plain values, in one
        query: what each request's session check needs (`find` loads the entities, for writes)."""
        rows = (await self.session.execute(_LOOKUP, {"token_hash": token_hash})).all()
        if not rows:
            return None
        first = rows[0]
        return SessionLookup(
            session=SessionRow(first[0], first[1], first[2], first[3], first[4]),
            user=SessionUserRow(first[5], first[6], bool(first[7]), first[8], bool(first[9])),
            permissions=frozenset(row[10] for row in rows if row[10] is not None),
        )

    async def find(self, token_hash: str) -> SessionWithUser | None:
        """The session for `token_hash` with its user and permission codenames, in one query."""
        sessions = select(AuthSession, User, Permission.codename).join(User, User.id == AuthSession.user_id)
        stmt = with_role_permissions(sessions).where(AuthSession.token_hash == token_hash)
        rows = (await self.session.execute(stmt)).all()
        if not rows:
            return None
        session, user = rows[0][0], rows[0][1]
        codenames = frozenset(row[2] for row in rows if row[2] is not None)
        return SessionWithUser(session=session, user=user, permissions=codenames)

    async def touch(self, session_id: int, now: datetime) -> bool:
        """Record that the session was used at `now`; False when it is no longer open (nothing written).

        Checked in the UPDATE itself, not from an earlier read: a session revoked,
        expired or whose user was deactivated or deleted since stays ended.
        """
        user_is_live = (
            select(User.id)
            .where(User.id == AuthSession.user_id, User.is_active.is_(True), User.deleted_at.is_(None))
            .exists()
        )
        result = await self.session.execute(
            update(AuthSession)
            .where(
                AuthSession.id == session_id,
                AuthSession.revoked_at.is_(None),
                AuthSession.expires_at > now,
                user_is_live,
            )
            .values(last_seen_at=now)
            .execution_options(synchronize_session=False)
        )
        return int(getattr(result, "rowcount", 0) or 0) == 1

    async def revoke(self, token_hash: str, now: datetime) -> None:
        await self.session.execute(
            update(AuthSession)
            .where(AuthSession.token_hash == token_hash, AuthSession.revoked_at.is_(None))
            .values(revoked_at=now)
        )

    async def revoke_for_user(self, user_id: int, now: datetime) -> int:
        """End every open session of a user; returns how many were open."""
        result = await self.session.execute(
            update(AuthSession)
            .where(AuthSession.user_id == user_id, AuthSession.revoked_at.is_(None))
            .values(revoked_at=now)
            .execution_options(synchronize_session=False)
        )
        return int(getattr(result, "rowcount", 0) or 0)


class LoginAttemptRepository(Repository[LoginAttempt]):
    model = LoginAttempt

    async def count_failures(self, *, username: str, client_address: str, since: datetime) -> tuple[int, int]:
        """Failed attempts since `since`: (for this username, from this address), in one query."""
        failed = and_(LoginAttempt.succeeded.is_(False), LoginAttempt.attempted_at >= since)
        by_user = select(func.count()).where(failed, LoginAttempt.username == username).scalar_subquery()
        by_address = (
            select(func.count())
            .where(failed, LoginAttempt.client_address == client_address)
            .scalar_subquery()
        )
        row = (await self.session.execute(select(by_user, by_address))).one()
        return int(row[0]), int(row[1])

    async def oldest_failure(self, *, username: str, client_address: str, since: datetime) -> datetime | None:
        stmt = select(func.min(LoginAttempt.attempted_at)).where(
            LoginAttempt.succeeded.is_(False),
            LoginAttempt.attempted_at >= since,
            (LoginAttempt.username == username) | (LoginAttempt.client_address == client_address),
        )
        value = (await self.session.execute(stmt)).scalar_one_or_none()
        return value if isinstance(value, datetime) else None
