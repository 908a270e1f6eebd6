"""The catalog: categories (a tree), tags and products."""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum

from sqlalchemy import CheckConstraint, Column, ForeignKey, Integer, Numeric, String, Table, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from backend.db.base import Base
from backend.db.columns import enum_column, live_index, live_unique
from backend.db.mixins import BigIntId, IdMixin, SoftDeleteMixin, TimestampMixin, VersionMixin
from backend.db.policy import Policy


class ProductStatus(StrEnum):
    DRAFT = "draft"
    ACTIVE = "active"
    ARCHIVED = "archived"


product_tag = Table(
    "product_tag",
    Base.metadata,
    Column("product_id", BigIntId, ForeignKey("product.id", ondelete="CASCADE"), primary_key=True),
    Column("tag_id", BigIntId, ForeignKey("tag.id", ondelete="CASCADE"), primary_key=True, index=True),
)


class Category(IdMixin, TimestampMixin, SoftDeleteMixin, VersionMixin, Base):
    """A product category; categories nest through `parent`."""

    policy = Policy(group="catalog", natural_key="slug")

    name: Mapped[str] = mapped_column(String(120))
    slug: Mapped[str] = mapped_column(String(140))
    parent_id: Mapped[int | None] = mapped_column(
        BigIntId, ForeignKey("category.id", ondelete="RESTRICT"), index=True
    )

    parent: Mapped[Category | None] = relationship(remote_side="Category.id", lazy="raise")

    __table_args__ = (
        live_unique("uq_category_slug", "slug"),
        live_index("ix_category_live_name_id", "name", "id"),
    )

    def __str__(self) -> str:
        return self.name


class Tag(IdMixin, TimestampMixin, SoftDeleteMixin, VersionMixin, Base):
    policy = Policy(group="catalog", natural_key="name")

    name: Mapped[str] = mapped_column(String(60))

    __table_args__ = (live_unique("uq_tag_name", "name"),)

    def __str__(self) -> str:
        return self.name


class Product(IdMixin, TimestampMixin, SoftDeleteMixin, VersionMixin, Base):
    """Something the store sells. Prices are positive; stock never goes negative."""

    policy = Policy(group="catalog", natural_key="sku")

    sku: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="", server_default="")
    price: Mapped[Decimal] = mapped_column(Numeric(12, 2))
    stock: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    status: Mapped[ProductStatus] = mapped_column(
        enum_column(ProductStatus, "product_status"), default=ProductStatus.DRAFT
    )
    category_id: Mapped[int] = mapped_column(
        BigIntId, ForeignKey("category.id", ondelete="RESTRICT"), index=True
    )

    category: Mapped[Category] = relationship(lazy="raise")
    tags: Mapped[list[Tag]] = relationship(
        secondary=product_tag, lazy="raise", order_by=Tag.name, passive_deletes=True
    )

    __table_args__ = (
        live_unique("uq_product_sku", "sku"),
        # One index per way the list can be sorted or filtered, each ending in id for keyset paging.
        live_index("ix_product_live_name_id", "name", "id"),
        live_index("ix_product_live_price_id", "price", "id"),
        live_index("ix_product_live_category_id_id", "category_id", "id"),
        live_index("ix_product_live_status_id", "status", "id"),
        live_index("ix_product_live_stock_id", "stock", "id"),  # the dashboard's low-stock list
        CheckConstraint("price > 0", name="price_positive"),
        CheckConstraint("stock >= 0", name="stock_not_negative"),
    )

    def __str__(self) -> str:
        return f"{self.sku} {self.name}"
