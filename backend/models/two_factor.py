"""Recovery codes (the way in when the app is lost) and passkeys. The TOTP secret lives on `User`."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from backend.db.base import Base
from backend.db.mixins import BigIntId, IdMixin
from backend.db.policy import Policy
from backend.db.types import UTCDateTime, utcnow


class RecoveryCode(IdMixin, Base):
    """One single-use recovery code, stored as a keyed hash; ten are issued at enrolment, shown once."""

    policy = Policy(admin=False, secret={"code_hash"})

    user_id: Mapped[int] = mapped_column(BigIntId, ForeignKey("user.id", ondelete="CASCADE"), index=True)
    code_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class Passkey(IdMixin, Base):
    """A WebAuthn credential a user registered as a second factor (backend/services/passkeys.py).

    Only the public half is kept: the private key never leaves the authenticator. `sign_count` is
    the authenticator's counter at the last use (a clone shows itself by going backwards).
    """

    policy = Policy(admin=False, secret={"credential_id", "public_key"})
    __table_args__ = (UniqueConstraint("user_id", "name"),)

    user_id: Mapped[int] = mapped_column(BigIntId, ForeignKey("user.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    # base64url of the raw id (at most 1023 bytes by the spec, so at most 1364 characters)
    credential_id: Mapped[str] = mapped_column(String(1400), unique=True)
    public_key: Mapped[bytes] = mapped_column(LargeBinary())  # COSE_Key, as the authenticator sent it
    sign_count: Mapped[int] = mapped_column(BigInteger(), default=0)
    transports: Mapped[str] = mapped_column(String(200), default="")  # comma-separated hints
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
