"""Server-side login sessions and the login attempts that drive throttling."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from backend.db.base import Base
from backend.db.mixins import BigIntId, IdMixin
from backend.db.policy import Policy
from backend.db.types import UTCDateTime, utcnow


class AuthSession(IdMixin, Base):
    """One signed-in browser. The cookie holds a random token; only its hash is stored.

    A session ends when it is revoked (logout, password change, deactivation,
    role change), when it has been idle too long, or at its absolute expiry.
    """

    policy = Policy(admin=False)

    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(BigIntId, ForeignKey("user.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    client_address: Mapped[str] = mapped_column(String(64), default="", server_default="")
    user_agent: Mapped[str] = mapped_column(String(255), default="", server_default="")
    # Signed in by password only: "code" (asks for the second factor) or "enrol" (policy requires one
    # first). Such a session opens nothing but that page and sign-out, and ends within minutes.
    pending_factor: Mapped[str | None] = mapped_column(String(8))


class LoginAttempt(IdMixin, Base):
    """Every sign-in attempt, kept for throttling and review."""

    policy = Policy(admin=False)

    username: Mapped[str] = mapped_column(String(150))
    client_address: Mapped[str] = mapped_column(String(64))
    succeeded: Mapped[bool] = mapped_column(Boolean)
    attempted_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    __table_args__ = (
        Index("ix_login_attempt_username_attempted_at", "username", "attempted_at"),
        Index("ix_login_attempt_client_address_attempted_at", "client_address", "attempted_at"),
    )
