from __future__ import annotations

from datetime import datetime

from pydantic import AwareDatetime, ConfigDict, Field

from backend.models.orders import OrderStatus
from backend.schemas.base import Input


class OrderItemInput(Input):
    model_config = ConfigDict(extra="forbid")

    product_id: int = Field(gt=0)
    quantity: int = Field(gt=0, le=1_000_000)


class OrderCreate(Input):
    model_config = ConfigDict(extra="forbid")

    customer_id: int = Field(gt=0)
    status: OrderStatus = OrderStatus.PENDING
    placed_at: AwareDatetime | None = None
    items: list[OrderItemInput] = Field(default_factory=list, max_length=500)


class OrderUpdate(Input):
    model_config = ConfigDict(extra="forbid")

    customer_id: int | None = Field(default=None, gt=0)
    status: OrderStatus | None = None
    placed_at: datetime | None = None


class OrderItemCreate(Input):
    model_config = ConfigDict(extra="forbid")

    order_id: int = Field(gt=0)
    product_id: int = Field(gt=0)
    quantity: int = Field(gt=0, le=1_000_000)


class OrderItemUpdate(Input):
    model_config = ConfigDict(extra="forbid")

    quantity: int | None = Field(default=None, gt=0, le=1_000_000)
