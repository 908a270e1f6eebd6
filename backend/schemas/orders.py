from __future__ import annotations

from datetime import datetime

from pydantic import AwareDatetime, ConfigDict, Field

from backend.models.orders import OrderStatus
from backend.schemas.base import Input
from backend.values import ID_MAX

# The most lines one save may name: an order's form, a file's row, a CLI call.
MAX_LINES = 500


class OrderItemInput(Input):
    model_config = ConfigDict(extra="forbid")

    product_id: int = Field(gt=0, le=ID_MAX)
    quantity: int = Field(gt=0, le=1_000_000)


class OrderLineInput(Input):
    """One line of an order's edit: a new line (no `id`), or an existing one by `id` with its new
    quantity, or `remove`d. A line the input does not name is left as it is."""

    model_config = ConfigDict(extra="forbid")

    id: int | None = Field(default=None, gt=0, le=ID_MAX)
    product_id: int | None = Field(default=None, gt=0, le=ID_MAX)
    quantity: int | None = Field(default=None, gt=0, le=1_000_000)
    remove: bool = False


class OrderCreate(Input):
    model_config = ConfigDict(extra="forbid")

    customer_id: int = Field(gt=0)
    status: OrderStatus = OrderStatus.PENDING
    placed_at: AwareDatetime | None = None
    items: list[OrderItemInput] = Field(default_factory=list, max_length=MAX_LINES)


class OrderUpdate(Input):
    model_config = ConfigDict(extra="forbid")

    customer_id: int | None = Field(default=None, gt=0)
    status: OrderStatus | None = None
    placed_at: datetime | None = None
    items: list[OrderLineInput] | None = Field(default=None, max_length=MAX_LINES)


class OrderItemCreate(Input):
    model_config = ConfigDict(extra="forbid")

    order_id: int = Field(gt=0)
    product_id: int = Field(gt=0)
    quantity: int = Field(gt=0, le=1_000_000)


class OrderItemUpdate(Input):
    model_config = ConfigDict(extra="forbid")

    quantity: int | None = Field(default=None, gt=0, le=1_000_000)
