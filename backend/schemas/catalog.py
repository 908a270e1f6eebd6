from __future__ import annotations

from decimal import Decimal

from pydantic import ConfigDict, Field

from backend.models.catalog import ProductStatus
from backend.schemas.base import Input

SLUG_PATTERN = r"^[a-z0-9]+(?:-[a-z0-9]+)*$"
MAX_PRICE = Decimal("9999999999.99")


class _Input(Input):
    model_config = ConfigDict(str_strip_whitespace=True, extra="forbid")


class CategoryCreate(_Input):
    name: str = Field(min_length=1, max_length=120)
    slug: str = Field(min_length=1, max_length=140, pattern=SLUG_PATTERN)
    parent_id: int | None = Field(default=None, gt=0)


class CategoryUpdate(_Input):
    name: str | None = Field(default=None, min_length=1, max_length=120)
    slug: str | None = Field(default=None, min_length=1, max_length=140, pattern=SLUG_PATTERN)
    parent_id: int | None = Field(default=None, gt=0)


class ProductCreate(_Input):
    sku: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    name: str = Field(min_length=1, max_length=200)
    description: str = Field(default="", max_length=20_000)
    price: Decimal = Field(gt=0, le=MAX_PRICE, max_digits=12, decimal_places=2)
    stock: int = Field(default=0, ge=0, le=2_000_000_000)
    status: ProductStatus = ProductStatus.DRAFT
    category_id: int = Field(gt=0)
    tag_ids: list[int] = Field(default_factory=list)


class ProductUpdate(_Input):
    sku: str | None = Field(
        default=None, min_length=1, max_length=64, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$"
    )
    name: str | None = Field(default=None, min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=20_000)
    price: Decimal | None = Field(default=None, gt=0, le=MAX_PRICE, max_digits=12, decimal_places=2)
    stock: int | None = Field(default=None, ge=0, le=2_000_000_000)
    status: ProductStatus | None = None
    category_id: int | None = Field(default=None, gt=0)
    tag_ids: list[int] | None = None
