"""Customers. Email and phone are personal data: shown only with `customer.view_pii`."""

from __future__ import annotations

from sqlalchemy import String, Text
from sqlalchemy.orm import Mapped, mapped_column

from backend.db.base import Base
from backend.db.columns import live_index, live_unique
from backend.db.mixins import IdMixin, SoftDeleteMixin, TimestampMixin, VersionMixin
from backend.db.policy import Policy


class Customer(IdMixin, TimestampMixin, SoftDeleteMixin, VersionMixin, Base):
    # Personal data: shown only with `customer.view_pii` (declaring it creates that permission).
    policy = Policy(pii={"email", "phone", "address"}, natural_key="email")

    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str] = mapped_column(String(254))
    phone: Mapped[str] = mapped_column(String(50), default="", server_default="")
    address: Mapped[str] = mapped_column(Text, default="", server_default="")

    __table_args__ = (
        live_unique("uq_customer_email", "email"),
        live_index("ix_customer_live_name_id", "name", "id"),
    )

    def __str__(self) -> str:
        return self.name
