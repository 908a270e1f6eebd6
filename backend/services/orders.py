"""Orders and their items: totals, stock and the rules of what may be ordered.

An order's lines change one at a time (`OrderItemService`, as the order item pages and the CLI do)
or together with the order (`OrderService.update` with `items`, as the order's own form does): the
same rules either way, which live here once: stock taken and given back, closed orders frozen,
archived products refused, the total kept the sum of the live lines.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, ClassVar

from pydantic import BaseModel

from backend.errors import Conflict, ValidationFailed
from backend.models import Customer, Order, OrderItem, OrderStatus, Product, ProductStatus
from backend.schemas.orders import (
    MAX_LINES,
    OrderCreate,
    OrderItemCreate,
    OrderItemInput,
    OrderItemUpdate,
    OrderLineInput,
    OrderUpdate,
)
from backend.services.base import CrudService, validate
from backend.services.catalog import ProductService
from backend.services.restoring import is_restoring

CLOSED = frozenset({OrderStatus.SHIPPED, OrderStatus.CANCELLED})
# The input field an order's lines come in; a problem with one names it `items.<position>.<field>`.
LINES = "items"


def line_key(position: int, name: str) -> str:
    """The error key of field `name` of the line at `position` (from 0) of the input's `items`."""
    return f"{LINES}.{position}.{name}"


def lines_refused(errors: dict[str, list[str]], message: str | None = None) -> ValidationFailed:
    """The refusal of an order's lines: each problem keyed by its line and field, and all of them
    under `items` too ("Line 2: ..."), for a caller that shows the lines as one field."""
    summary = [
        f"Line {int(key.split('.')[1]) + 1}: {text}"
        for key, texts in errors.items()
        if key.startswith(f"{LINES}.")
        for text in texts
    ]
    return ValidationFailed({**errors, LINES: summary}, message)


def closed_refusal(order: Order, service: CrudService[Any, Any, Any]) -> Conflict | None:
    """Why `order`'s lines may not change (it is shipped or cancelled), or None while they may.

    Restoring, a closed order's lines are written as recorded.
    """
    if order.status in CLOSED and not is_restoring(service.uow):
        return Conflict(f"Order #{order.id} is {order.status.value}; its items can no longer change.")
    return None


def unorderable(product: Product, service: CrudService[Any, Any, Any]) -> str | None:
    """Why `product` may not be ordered now (archived), or None; restoring, an archived one may."""
    if product.status is ProductStatus.ARCHIVED and not is_restoring(service.uow):
        return f"{product.sku} is archived and cannot be ordered."
    return None


async def orderable_product(service: CrudService[Any, Any, Any], product_id: int, *, field: str) -> Product:
    """A live product that may be ordered now; restoring, an archived one too (archived since)."""
    product: Product = await service.live(Product, product_id, field=field, label="Product")
    problem = unorderable(product, service)
    if problem:
        raise ValidationFailed({field: [problem]})
    return product


async def recompute_total(service: CrudService[Any, Any, Any], order: Order) -> None:
    """Set the order's total to the sum of its live items."""
    items = await service.uow.repo(OrderItem).list(filters={"order_id": order.id})
    order.total = sum((item.unit_price * item.quantity for item in items), Decimal("0.00"))


def parse_lines(line: type[BaseModel], whole: type[BaseModel], data: Mapping[str, Any]) -> dict[str, Any]:
    """`data` with its `items` parsed one by one as `line`s, so that a problem names its line
    (`items.2.quantity`), with the problems of `whole`'s other fields; `ValidationFailed` if any."""
    lines = data.get(LINES)
    if not isinstance(lines, list) or len(lines) > MAX_LINES:
        return dict(data)  # not a list, or too long: the schema's own message says so
    parsed: list[BaseModel] = []
    errors: dict[str, list[str]] = {}
    for position, item in enumerate(lines):
        try:
            parsed.append(validate(line, item))
        except ValidationFailed as exc:
            errors.update({line_key(position, name): messages for name, messages in exc.errors.items()})
    if errors:
        try:
            validate(whole, {**data, LINES: []})
        except ValidationFailed as exc:
            errors.update(exc.errors)
        raise lines_refused(errors)
    return {**data, LINES: parsed}


@dataclass
class LineChanges:
    """What one save does to an order's lines, by the position each change had in the input."""

    added: list[tuple[int, OrderLineInput]] = field(default_factory=list)
    changed: list[tuple[int, OrderItem, int]] = field(default_factory=list)  # position, line, new quantity
    removed: list[tuple[int, OrderItem]] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.added or self.changed or self.removed)

    def product_ids(self) -> set[int]:
        ids = {line.product_id for _, line in self.added if line.product_id is not None}
        return (
            ids
            | {item.product_id for _, item, _ in self.changed}
            | {item.product_id for _, item in self.removed}
        )

    def stock_moves(self) -> dict[int, list[tuple[int, int]]]:
        """Product id -> (position, stock change) of each change to it: taken is negative."""
        moves: dict[int, list[tuple[int, int]]] = {}
        for position, line in self.added:
            moves.setdefault(line.product_id or 0, []).append((position, -(line.quantity or 0)))
        for position, item, quantity in self.changed:
            moves.setdefault(item.product_id, []).append((position, item.quantity - quantity))
        for position, item in self.removed:
            moves.setdefault(item.product_id, []).append((position, item.quantity))
        return moves


class OrderService(CrudService[Order, OrderCreate, OrderUpdate]):
    """Orders (needs `order.*`). Placing an order takes stock; cancelling gives it back.

    An order is created with its lines, and saved with changes to them (`items`: lines to add,
    quantities to change, lines to remove, by id), each needing its `order_item.*` permission and
    following `OrderItemService`'s rules; all of them or none, checked against the order's version
    once. Restoring a recorded state (`restoring.restoring`), stock is left as the products hold it,
    and any status may be set, a cancelled order's too: the record is written as recorded.
    """

    model = Order
    create_schema = OrderCreate
    update_schema = OrderUpdate

    def parse_create(self, data: OrderCreate | Mapping[str, Any]) -> OrderCreate:
        if isinstance(data, OrderCreate):
            return data
        return validate(OrderCreate, parse_lines(OrderItemInput, OrderCreate, data))

    def parse_update(self, data: OrderUpdate | Mapping[str, Any]) -> OrderUpdate:
        if isinstance(data, OrderUpdate):
            return data
        return validate(OrderUpdate, parse_lines(OrderLineInput, OrderUpdate, data))

    async def build(self, payload: OrderCreate) -> Order:
        await self.live(Customer, payload.customer_id, field="customer_id", label="Customer")
        order = Order(
            customer_id=payload.customer_id,
            status=payload.status,
            placed_at=payload.placed_at or datetime.now(UTC),
            items=[],
            total=Decimal("0.00"),
        )
        lines = [OrderLineInput(product_id=line.product_id, quantity=line.quantity) for line in payload.items]
        changes = LineChanges(added=list(enumerate(lines)))
        if changes:
            OrderItemService(self.uow).require("add")
            await self._make(order, changes, await self._products(changes, {}))
        return order

    async def apply(self, obj: Order, payload: OrderUpdate) -> None:
        fields = payload.model_fields_set
        # Lines first, while the order is as the user saw it; a cancellation below gives back their stock.
        if "items" in fields and payload.items is not None:
            await self.change_lines(obj, payload.items)
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

    async def change_lines(self, order: Order, lines: Sequence[OrderLineInput]) -> None:
        """Add, change and remove `order`'s lines as `lines` say; a line they do not name stays.

        Needs `order_item.add`, `.change` and `.delete` for what it does; a line sent as it is
        changes nothing and needs nothing. Raises `Conflict` for a line removed since (or a closed
        order), `ValidationFailed` keyed `items.<position>.<field>` for every problem of the lines.
        The order is updated (its version checked and moved on) whenever a line changes.
        """
        await self.repo.load(order, "items")
        changes, errors = _sorted_out(order, lines)
        items = OrderItemService(self.uow)
        for action, wanted in (
            ("add", changes.added),
            ("change", changes.changed),
            ("delete", changes.removed),
        ):
            if wanted:
                items.require(action)
        if not (changes or errors):
            return
        closed = closed_refusal(order, self)
        if closed and changes:
            raise closed
        products = await self._products(changes, errors)
        # The order's own row changes with its lines, so its version check covers them all.
        order.updated_at = datetime.now(UTC)
        await self._make(order, changes, products)

    async def _products(self, changes: LineChanges, errors: dict[str, list[str]]) -> dict[int, Product]:
        """The products `changes` move, by id; raises the problems in `errors` with theirs, if any."""
        products = {p.id: p for p in await self.uow.repo(Product).get_many(changes.product_ids())}
        for position, line in changes.added:
            product = products.get(line.product_id or 0)
            problem = (
                f"Product {line.product_id} does not exist."
                if product is None
                else unorderable(product, self)
            )
            if problem:
                errors[line_key(position, "product_id")] = [problem]
        for position, item in [*((p, i) for p, i, _ in changes.changed), *changes.removed]:
            if item.product_id not in products:
                errors[line_key(position, "quantity")] = [f"Product {item.product_id} does not exist."]
        if errors:
            raise lines_refused(errors)
        return products

    async def _make(self, order: Order, changes: LineChanges, products: Mapping[int, Product]) -> None:
        """Make checked `changes`: stock moved (all of it, or every shortage raised at once), lines, total."""
        # A cancelled order holds no stock (cancelling gives it back): one created cancelled takes none.
        if not is_restoring(self.uow) and order.status is not OrderStatus.CANCELLED:
            await self._move_stock(products, changes)
        now = datetime.now(UTC)
        for _, line in changes.added:
            product = products[line.product_id or 0]
            order.items.append(
                OrderItem(product_id=product.id, quantity=line.quantity, unit_price=product.price)
            )
        for _, item, quantity in changes.changed:
            item.quantity = quantity
        for _, item in changes.removed:
            item.deleted_at, item.deleted_by_id = now, self.actor.user_id
        live = [item for item in order.items if item.deleted_at is None]
        order.total = sum((item.unit_price * item.quantity for item in live), Decimal("0.00"))

    async def _move_stock(self, products: Mapping[int, Product], changes: LineChanges) -> None:
        """Take and give back stock for `changes`, product by product (`ProductService.adjust_stock`).

        A product short of stock is refused on each line that takes from it.
        """
        errors: dict[str, list[str]] = {}
        messages: list[str] = []
        for product_id, moves in changes.stock_moves().items():
            try:
                await ProductService(self.uow).adjust_stock(products[product_id], sum(m for _, m in moves))
            except ValidationFailed as exc:
                messages.append(exc.message)
                for position, move in moves:
                    if move < 0:
                        errors[line_key(position, "quantity")] = exc.errors["quantity"]
        if errors:
            raise lines_refused(errors, " ".join(messages))

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
        # The lines as they are in this unit of work: a save may have just changed them.
        await self.repo.load(order, "items")
        live = [item for item in order.items if item.deleted_at is None]
        # A product deleted since still gets its units back, as it gave them.
        ids = {item.product_id for item in live}
        products = {p.id: p for p in await self.uow.repo(Product).get_many(ids, include_deleted=True)}
        for item in live:
            await ProductService(self.uow).adjust_stock(products[item.product_id], item.quantity)


def _sorted_out(order: Order, lines: Sequence[OrderLineInput]) -> tuple[LineChanges, dict[str, list[str]]]:
    """`lines` as changes to `order`'s loaded lines, and the problems found without the database.

    A line named that is not `order`'s is a problem of its line; one removed since is a `Conflict`
    with the order's state (a 409, as a stale version is), whatever else the input holds.
    """
    held = {item.id: item for item in order.items}
    changes, errors, seen = LineChanges(), {}, set()
    for position, line in enumerate(lines):
        if line.id is None:
            missing = [name for name in ("product_id", "quantity") if getattr(line, name) is None]
            for name in missing:
                errors[line_key(position, name)] = ["A new line needs a product and a quantity."]
            if not (missing or line.remove):  # a new line removed before it was saved is no change
                changes.added.append((position, line))
            continue
        item = held.get(line.id)
        if item is None or line.id in seen:
            problem = "This line is named twice." if item else f"Order #{order.id} has no line {line.id}."
            errors[line_key(position, "id")] = [problem]
        elif item.deleted_at is not None:
            raise Conflict(
                f"Line {line.id} of order #{order.id} was removed since you opened it. Nothing was saved; "
                "reload the order to see its lines now, then make your change again."
            )
        elif line.product_id not in (None, item.product_id):
            errors[line_key(position, "product_id")] = [
                "A line's product cannot change: remove it and add one."
            ]
        elif line.remove:
            changes.removed.append((position, item))
        elif line.quantity is not None and line.quantity != item.quantity:
            changes.changed.append((position, item, line.quantity))
        seen.add(line.id)
    return changes, errors


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
        closed = closed_refusal(order, self)
        if closed:
            raise closed
        return order
