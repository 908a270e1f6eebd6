"""The store's back office: catalog, customers and orders."""

from __future__ import annotations

from decimal import Decimal
from typing import Any, ClassVar

from sqladmin import action
from sqlalchemy import ColumnElement
from sqlalchemy.orm import selectinload
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from wtforms.validators import InputRequired, NumberRange, Optional

from admin import outcomes
from admin.dashboard import LowStockTable, OrdersPerDayChart, Widget
from admin.filters import ChoiceFilter, DateRangeFilter, LiveForeignKeyFilter, RecentDateFilter
from admin.i18n import gettext, lazy_gettext, translated
from admin.inlines import InlineRows
from admin.params import query_ids
from admin.requests import request_uow
from admin.views.base import ServiceModelView
from backend.errors import AppError, PermissionDenied
from backend.models import Category, Customer, Order, OrderItem, OrderStatus, Product, ProductStatus, Tag
from backend.services.catalog import ProductService
from backend.services.orders import CLOSED

CATALOG = "Catalog"
SALES = "Sales"


def live_only(model: Any) -> Any:
    """An ajax-lookup `where`: deleted rows are never offered in a form."""

    def where(request: Request, term: str) -> ColumnElement[bool]:
        deleted_at: ColumnElement[Any] = model.deleted_at
        return deleted_at.is_(None)

    return where


def lookup(model: Any, *fields: str, order_by: str) -> dict[str, Any]:
    return {"fields": fields, "order_by": order_by, "where": live_only(model), "limit": 20}


class CategoryAdmin(ServiceModelView, model=Category):
    menu_order = 2
    name_plural = "Categories"
    icon = "fa-solid fa-folder-tree"
    category = CATALOG

    column_list: ClassVar = [Category.id, Category.name, Category.slug, Category.parent]
    column_searchable_list: ClassVar = [Category.name, Category.slug]
    column_sortable_list: ClassVar = [Category.id, Category.name]
    column_default_sort: ClassVar = [(Category.name, False)]
    form_columns: ClassVar = [Category.name, Category.slug, Category.parent]
    form_ajax_refs: ClassVar = {"parent": lookup(Category, "name", "slug", order_by="name")}


class TagAdmin(ServiceModelView, model=Tag):
    menu_order = 3
    icon = "fa-solid fa-tag"
    category = CATALOG

    column_list: ClassVar = [Tag.id, Tag.name]
    column_searchable_list: ClassVar = [Tag.name]
    column_sortable_list: ClassVar = [Tag.id]
    form_columns: ClassVar = [Tag.name]


STATUS_ACTIONS = {
    "mark-active": ProductStatus.ACTIVE,
    "mark-draft": ProductStatus.DRAFT,
    "mark-archived": ProductStatus.ARCHIVED,
}
STATUS_DONE = {
    "mark-active": "marked active",
    "mark-draft": "set to draft",
    "mark-archived": "archived",
}


class ProductAdmin(ServiceModelView, model=Product):
    menu_order = 1
    icon = "fa-solid fa-box"
    category = CATALOG
    action_permissions: ClassVar[dict[str, str]] = dict.fromkeys(STATUS_ACTIONS, "change")
    dashboard_widgets: ClassVar[list[Widget]] = [LowStockTable()]

    column_list: ClassVar = [
        Product.id,
        Product.sku,
        Product.name,
        Product.price,
        Product.stock,
        Product.status,
        Product.category,
    ]
    column_details_list: ClassVar = [
        Product.id,
        Product.sku,
        Product.name,
        Product.description,
        Product.price,
        Product.stock,
        Product.status,
        Product.category,
        Product.tags,
        Product.created_at,
        Product.updated_at,
        Product.version,
    ]
    column_searchable_list: ClassVar = [Product.sku, Product.name]
    column_sortable_list: ClassVar = [Product.id, Product.name, Product.price]
    column_default_sort: ClassVar = [(Product.id, True)]
    column_export_list: ClassVar = [
        Product.id,
        Product.sku,
        Product.name,
        Product.price,
        Product.stock,
        Product.status,
        Product.category,
        Product.description,
    ]
    column_filters: ClassVar = [
        ChoiceFilter(Product.status, [(s.value, s.value.title()) for s in ProductStatus], title="Status"),
        LiveForeignKeyFilter(
            Product.category_id,
            Category.name,
            foreign_model=Category,
            title="Category",
            parameter_name="category",
            search_fields=("name", "slug"),
        ),
        RecentDateFilter(Product.created_at, title="Created", parameter_name="created"),
        DateRangeFilter(
            Product.created_at,
            title="Created between",
            parameter_name="created_between",
            parameter_names=("created_from", "created_to"),
        ),
    ]
    form_columns: ClassVar = [
        Product.sku,
        Product.name,
        Product.description,
        Product.price,
        Product.stock,
        Product.status,
        Product.category,
        Product.tags,
    ]
    form_ajax_refs: ClassVar = {
        "category": lookup(Category, "name", "slug", order_by="name"),
        "tags": lookup(Tag, "name", order_by="name"),
    }
    # Checked by the form too, so every problem shows on the first submit.
    form_args: ClassVar = {
        "price": {
            "validators": [InputRequired(), NumberRange(min=Decimal("0.01"), message="Must be more than 0.")]
        },
        "stock": {"validators": [Optional(), NumberRange(min=0, message="Cannot be below 0.")]},
    }

    async def _set_status(self, request: Request, slug: str) -> Response:
        """Set the selected products' status; back to the list with a message saying how many, or why not."""
        back = outcomes.back_to(request, request.url_for("admin:list", identity=self.identity))
        if not request.query_params.get("pks"):
            outcomes.refused(request, gettext("Select at least one product first."))
            return RedirectResponse(back, status_code=302)
        ids = query_ids(request)
        try:
            uow = await request_uow(request)
            count = await ProductService(uow).set_status(ids, STATUS_ACTIONS[slug])
            await uow.commit()
        except PermissionDenied as exc:
            raise HTTPException(status_code=403, detail=exc.message) from exc
        except AppError as exc:
            outcomes.refused(
                request, translated("No status was changed: %(reason)s", reason=gettext(exc.message))
            )
            return RedirectResponse(back, status_code=302)
        outcomes.bulk_done(request, self, count, STATUS_DONE[slug])
        return RedirectResponse(back, status_code=302)

    @action(
        "mark-active",
        lazy_gettext("Mark active"),
        lazy_gettext("Mark the selected products active?"),
        add_in_detail=False,
    )
    async def mark_active(self, request: Request) -> Response:
        return await self._set_status(request, "mark-active")

    @action(
        "mark-draft",
        lazy_gettext("Mark draft"),
        lazy_gettext("Mark the selected products as drafts?"),
        add_in_detail=False,
    )
    async def mark_draft(self, request: Request) -> Response:
        return await self._set_status(request, "mark-draft")

    @action(
        "mark-archived",
        lazy_gettext("Archive"),
        lazy_gettext("Archive the selected products?"),
        add_in_detail=False,
    )
    async def mark_archived(self, request: Request) -> Response:
        return await self._set_status(request, "mark-archived")


class CustomerAdmin(ServiceModelView, model=Customer):
    """Email, phone and address are shown only to holders of `customer.view_pii`."""

    menu_order = 6
    icon = "fa-solid fa-address-card"
    category = SALES

    column_list: ClassVar = [Customer.id, Customer.name, Customer.email, Customer.phone]
    column_details_list: ClassVar = [
        Customer.id,
        Customer.name,
        Customer.email,
        Customer.phone,
        Customer.address,
        Customer.created_at,
        Customer.version,
    ]
    column_searchable_list: ClassVar = [Customer.name]
    column_sortable_list: ClassVar = [Customer.id, Customer.name]
    column_default_sort: ClassVar = [(Customer.name, False)]
    column_export_list: ClassVar = [
        Customer.id,
        Customer.name,
        Customer.email,
        Customer.phone,
        Customer.address,
    ]
    form_columns: ClassVar = [Customer.name, Customer.email, Customer.phone, Customer.address]


class OrderAdmin(ServiceModelView, model=Order):
    menu_order = 4
    icon = "fa-solid fa-receipt"
    category = SALES
    dashboard_widgets: ClassVar[list[Widget]] = [OrdersPerDayChart()]

    column_list: ClassVar = [Order.id, Order.customer, Order.status, Order.placed_at, Order.total]
    column_details_list: ClassVar = [
        Order.id,
        Order.customer,
        Order.status,
        Order.placed_at,
        Order.total,
        Order.version,
    ]
    details_template = "custodian/order_details.html"
    column_sortable_list: ClassVar = [Order.id, Order.placed_at, Order.total]
    column_default_sort: ClassVar = [(Order.placed_at, True)]
    column_export_list: ClassVar = [Order.id, Order.customer, Order.status, Order.placed_at, Order.total]
    show_facets = True  # orders per status beside the status filter, counted up to a cap
    column_filters: ClassVar = [
        ChoiceFilter(Order.status, [(s.value, s.value.title()) for s in OrderStatus], title="Status"),
        RecentDateFilter(Order.placed_at, title="Placed", parameter_name="placed"),
        DateRangeFilter(
            Order.placed_at,
            title="Placed between",
            parameter_name="placed_between",
            parameter_names=("placed_from", "placed_to"),
        ),
    ]
    form_columns: ClassVar = [Order.customer, Order.status, Order.placed_at]
    form_ajax_refs: ClassVar = {"customer": lookup(Customer, "name", order_by="name")}
    # Its lines in the same form; the product lookup is OrderItemAdmin's. A closed order's are read-only.
    inlines: ClassVar = [
        InlineRows(
            OrderItem,
            relation="items",
            fields=("product", "quantity"),
            changeable=("quantity",),
            shown=("unit_price", "line_total"),
            frozen_when=lambda order: order.status in CLOSED,
        )
    ]

    def details_query(self, request: Request) -> Any:
        return (
            super().details_query(request).options(selectinload(Order.items).selectinload(OrderItem.product))
        )


class OrderItemAdmin(ServiceModelView, model=OrderItem):
    menu_order = 5
    name = "Order item"
    icon = "fa-solid fa-list"
    category = SALES

    column_list: ClassVar = [
        OrderItem.id,
        OrderItem.order,
        OrderItem.product,
        OrderItem.quantity,
        OrderItem.unit_price,
    ]
    column_sortable_list: ClassVar = [OrderItem.id]
    form_columns: ClassVar = [OrderItem.order, OrderItem.product, OrderItem.quantity]
    form_ajax_refs: ClassVar = {
        "order": {"fields": ("id",), "order_by": "id", "where": live_only(Order), "limit": 20},
        "product": lookup(Product, "sku", "name", order_by="sku"),
    }
    form_edit_rules: ClassVar = ["quantity"]
