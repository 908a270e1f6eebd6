"""Staff accounts that sign in to the admin."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import BigInteger, Boolean, String, false, true
from sqlalchemy.orm import Mapped, mapped_column, relationship

from backend.db.base import Base
from backend.db.columns import live_unique
from backend.db.mixins import IdMixin, SoftDeleteMixin, TimestampMixin, VersionMixin
from backend.db.policy import Policy
from backend.db.types import UTCDateTime
from backend.models.rbac import user_role

if TYPE_CHECKING:
    from backend.models.rbac import Role

USERNAME_MAX_LENGTH = 150
EMAIL_MAX_LENGTH = 254
LOCALE_MAX_LENGTH = 16


class User(IdMixin, TimestampMixin, SoftDeleteMixin, VersionMixin, Base):
    """A person who signs in. The password is only ever stored as a hash."""

    policy = Policy(group="accounts", secret={"password_hash", "totp_secret"})

    username: Mapped[str] = mapped_column(String(USERNAME_MAX_LENGTH))
    email: Mapped[str] = mapped_column(String(EMAIL_MAX_LENGTH), default="", server_default="")
    password_hash: Mapped[str] = mapped_column(String(255), default="", server_default="")
    is_active: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    is_superuser: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # The language the admin speaks to this user; None follows the browser (Accept-Language).
    locale: Mapped[str | None] = mapped_column(String(LOCALE_MAX_LENGTH))

    # Two-factor sign-in (backend/services/two_factor.py): the TOTP secret encrypted with a key derived
    # from SECRET_KEY, when enrolment was confirmed, and the last time step accepted (no code twice).
    totp_secret: Mapped[str | None] = mapped_column(String(255))
    totp_enrolled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    totp_last_step: Mapped[int | None] = mapped_column(BigInteger)

    roles: Mapped[list[Role]] = relationship(secondary=user_role, lazy="raise", passive_deletes=True)

    __table_args__ = (
        # Unique among live accounts only: a soft-deleted user frees the name.
        live_unique("uq_user_username", "username"),
    )

    def __str__(self) -> str:
        return self.username
