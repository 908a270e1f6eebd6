"""Orders and their items. An order's total is the sum of its items, kept by OrderService."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from enum import StrEnum

from sqlalchemy import CheckConstraint, ForeignKey, Integer, Numeric
from sqlalchemy.orm import Mapped, mapped_column, relationship

from backend.db.base import Base
from backend.db.columns import enum_column, live_index
from backend.db.mixins import BigIntId, IdMixin, SoftDeleteMixin, TimestampMixin, VersionMixin
from backend.db.policy import Policy
from backend.db.types import UTCDateTime, utcnow
from backend.models.catalog import Product
from backend.models.customers import Customer


class OrderStatus(StrEnum):
    PENDING = "pending"
    PAID = "paid"
    SHIPPED = "shipped"
    CANCELLED = "cancelled"


class Order(IdMixin, TimestampMixin, SoftDeleteMixin, VersionMixin, Base):
    # An order's history shows its items' entries too: child table -> its key to the order.
    policy = Policy(history_children={"order_item": "order_id"})

    customer_id: Mapped[int] = mapped_column(
        BigIntId, ForeignKey("customer.id", ondelete="RESTRICT"), index=True
    )
    status: Mapped[OrderStatus] = mapped_column(
        enum_column(OrderStatus, "order_status"), default=OrderStatus.PENDING
    )
    placed_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    total: Mapped[Decimal] = mapped_column(Numeric(12, 2), default=Decimal("0.00"), server_default="0")

    customer: Mapped[Customer] = relationship(lazy="raise")
    items: Mapped[list[OrderItem]] = relationship(
        back_populates="order", lazy="raise", cascade="all, delete-orphan", order_by="OrderItem.id"
    )

    __table_args__ = (
        CheckConstraint("total >= 0", name="total_not_negative"),
        live_index("ix_order_live_placed_at_id", "placed_at", "id"),
        live_index("ix_order_live_total_id", "total", "id"),
        live_index("ix_order_live_status_id", "status", "id"),
    )

    def __str__(self) -> str:
        return f"Order #{self.id}"


class OrderItem(IdMixin, TimestampMixin, SoftDeleteMixin, VersionMixin, Base):
    """One line of an order; `unit_price` is the product's price when it was ordered."""

    order_id: Mapped[int] = mapped_column(BigIntId, ForeignKey("order.id", ondelete="CASCADE"), index=True)
    product_id: Mapped[int] = mapped_column(
        BigIntId, ForeignKey("product.id", ondelete="RESTRICT"), index=True
    )
    quantity: Mapped[int] = mapped_column(Integer)
    unit_price: Mapped[Decimal] = mapped_column(Numeric(12, 2))

    order: Mapped[Order] = relationship(back_populates="items", lazy="raise")
    product: Mapped[Product] = relationship(lazy="raise")

    __table_args__ = (
        CheckConstraint("quantity > 0", name="quantity_positive"),
        CheckConstraint("unit_price >= 0", name="unit_price_not_negative"),
    )

    @property
    def line_total(self) -> Decimal:
        return self.unit_price * self.quantity

    def __str__(self) -> str:
        return f"Order #{self.order_id}: {self.quantity} x product {self.product_id}"
