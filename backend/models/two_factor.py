"""Recovery codes: the way in when the authenticator app is lost. The TOTP secret lives on `User`."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String
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
