"""Orders and their items: totals, stock and the rules of what may be ordered."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, ClassVar

from sqlalchemy.orm import selectinload

from backend.errors import Conflict, ValidationFailed
from backend.models import Customer, Order, OrderItem, OrderStatus, Product, ProductStatus
from backend.schemas.orders import OrderCreate, OrderItemCreate, OrderItemUpdate, OrderUpdate
from backend.services.base import CrudService
from backend.services.catalog import ProductService
from backend.services.restoring import is_restoring

CLOSED = frozenset({OrderStatus.SHIPPED, OrderStatus.CANCELLED})


async def orderable_product(service: CrudService[Any, Any, Any], product_id: int, *, field: str) -> Product:
    """A live product that may be ordered now; restoring, an archived one too (archived since)."""
    product: Product = await service.live(Product, product_id, field=field, label="Product")
    if product.status is ProductStatus.ARCHIVED and not is_restoring(service.uow):
        raise ValidationFailed({field: [f"{product.sku} is archived and cannot be ordered."]})
    return product


async def recompute_total(service: CrudService[Any, Any, Any], order: Order) -> None:
    """Set the order's total to the sum of its live items."""
    items = await service.uow.repo(OrderItem).list(filters={"order_id": order.id})
    order.total = sum((item.unit_price * item.quantity for item in items), Decimal("0.00"))


class OrderService(CrudService[Order, OrderCreate, OrderUpdate]):
    """Orders (needs `order.*`). Placing an order takes stock; cancelling gives it back.

    Restoring a recorded state (`restoring.restoring`), stock is left as the products hold it, and
    any status may be set, a cancelled order's too: the record is written as recorded.
    """

    model = Order
    create_schema = OrderCreate
    update_schema = OrderUpdate

    async def build(self, payload: OrderCreate) -> Order:
        await self.live(Customer, payload.customer_id, field="customer_id", label="Customer")
        products = ProductService(self.uow)
        order = Order(
            customer_id=payload.customer_id,
            status=payload.status,
            placed_at=payload.placed_at or datetime.now(UTC),
            items=[],
            total=Decimal("0.00"),
        )
        for line in payload.items:
            product = await orderable_product(self, line.product_id, field="items")
            if not is_restoring(self.uow):
                await products.adjust_stock(product, -line.quantity)
            order.items.append(
                OrderItem(product_id=product.id, quantity=line.quantity, unit_price=product.price)
            )
        order.total = sum((item.unit_price * item.quantity for item in order.items), Decimal("0.00"))
        return order

    async def apply(self, obj: Order, payload: OrderUpdate) -> None:
        fields = payload.model_fields_set
        # Only a new customer must be live: the order's own may stay even if since deleted.
        if "customer_id" in fields and payload.customer_id not in (None, obj.customer_id):
            await self.live(Customer, payload.customer_id, field="customer_id", label="Customer")
            obj.customer_id = payload.customer_id
        if "placed_at" in fields and payload.placed_at is not None:
            obj.placed_at = payload.placed_at
        if "status" in fields and payload.status is not None and payload.status != obj.status:
            if is_restoring(self.uow):
                obj.status = payload.status
                return
            if obj.status is OrderStatus.CANCELLED:
                raise ValidationFailed({"status": ["A cancelled order cannot be reopened."]})
            if payload.status is OrderStatus.CANCELLED:
                await self._restock(obj)
            obj.status = payload.status

    async def after_soft_delete(self, obj: Order, deleted_at: datetime) -> None:
        """An order's items go with it, stamped with the same time so they come back together."""
        # Row by row through the ORM, so each item's change is audited too.
        for item in await self.uow.repo(OrderItem).list(filters={"order_id": obj.id}):
            item.deleted_at = deleted_at
            item.deleted_by_id = self.actor.user_id

    async def after_restore(self, obj: Order, deleted_at: datetime | None) -> None:
        # Only the items deleted with the order: one deleted before it stays deleted.
        together = await self.uow.repo(OrderItem).list(
            filters={"order_id": obj.id, "deleted_at": deleted_at}, include_deleted=True
        )
        for item in together:
            item.deleted_at = None
            item.deleted_by_id = None

    async def before_purge(self, obj: Order) -> None:
        # Loaded so that each item is purged (and audited) with its order.
        await self.repo.load(obj, "items")

    async def _restock(self, order: Order) -> None:
        products = ProductService(self.uow)
        items = await self.uow.repo(OrderItem).list(
            filters={"order_id": order.id}, options=(selectinload(OrderItem.product),)
        )
        for item in items:
            await products.adjust_stock(item.product, item.quantity)


class OrderItemService(CrudService[OrderItem, OrderItemCreate, OrderItemUpdate]):
    """Order lines (needs `order_item.*`). The unit price is the product's price at the time.

    A line takes its quantity from the product's stock, and only an open order's lines change.
    Restoring a recorded state (`restoring.restoring`), neither: the stock is restored with the
    product, and a shipped order's lines are restored as they were. The order's total is kept the
    sum of its lines either way.
    """

    model = OrderItem
    create_schema = OrderItemCreate
    update_schema = OrderItemUpdate
    label = "order item"
    check_messages: ClassVar[dict[str, tuple[str, str]]] = {
        "ck_order_item_quantity_positive": ("quantity", "The quantity must be at least 1."),
    }

    async def build(self, payload: OrderItemCreate) -> OrderItem:
        order = await self._open_order(payload.order_id)
        product = await orderable_product(self, payload.product_id, field="product_id")
        if not is_restoring(self.uow):
            await ProductService(self.uow).adjust_stock(product, -payload.quantity)
        item = OrderItem(
            order_id=order.id, product_id=product.id, quantity=payload.quantity, unit_price=product.price
        )
        await self.save(item, adding=True)
        await recompute_total(self, order)
        return item

    async def apply(self, obj: OrderItem, payload: OrderItemUpdate) -> None:
        # Saving the same quantity changes nothing, so it is not refused on a closed order.
        if payload.quantity is not None and payload.quantity != obj.quantity:
            order = await self._open_order(obj.order_id)
            if not is_restoring(self.uow):
                product = await self.live(Product, obj.product_id, field="quantity", label="Product")
                await ProductService(self.uow).adjust_stock(product, obj.quantity - payload.quantity)
            obj.quantity = payload.quantity
            await self.save(obj)
            await recompute_total(self, order)

    async def before_delete(self, obj: OrderItem) -> None:
        order = await self._open_order(obj.order_id)
        product = await self.live(Product, obj.product_id, field="quantity", label="Product")
        await ProductService(self.uow).adjust_stock(product, obj.quantity)
        obj.deleted_at = datetime.now(UTC)
        await self.save(obj)
        await recompute_total(self, order)

    async def _open_order(self, order_id: int) -> Order:
        """The live order `order_id`, refused when closed (unless restoring: its lines are as recorded)."""
        order: Order = await self.live(Order, order_id, field="order_id", label="Order")
        if order.status in CLOSED and not is_restoring(self.uow):
            raise Conflict(f"Order #{order.id} is {order.status.value}; its items can no longer change.")
        return order
