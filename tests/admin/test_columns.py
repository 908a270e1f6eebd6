"""What a view declares about its columns, read from SQLAdmin's public attributes (admin/columns.py)."""

from __future__ import annotations

from typing import Any, ClassVar

from markupsafe import Markup
from sqladmin import ModelView
from starlette.requests import Request

from admin.columns import CellFormatter, ViewColumns, columns_of, name_of
from backend.models import Order, Product, Tag


def _name_only(obj: Any, attribute: Any) -> str:
    return f"{name_of(attribute)}!"


def _with_request(obj: Any, attribute: Any, request: Request) -> str:
    return f"{name_of(attribute)} for {request.method}"


class ProductColumns(ModelView, model=Product):
    column_list: ClassVar = [Product.id, "sku", Product.category, Product.tags]
    column_export_list: ClassVar = [Product.sku, Product.price]
    column_searchable_list: ClassVar = [Product.sku, "name"]
    column_sortable_list: ClassVar = [Product.id, "price"]
    column_default_sort: ClassVar = [(Product.price, True), (Product.id, False)]
    column_labels: ClassVar = {Product.sku: "SKU code", "price": "Price (EUR)"}
    column_formatters: ClassVar = {Product.sku: _name_only, "name": _with_request}


class OrderColumns(ModelView, model=Order):
    column_default_sort: ClassVar = "placed_at"


class TagColumns(ModelView, model=Tag):
    pass


def _request() -> Request:
    return Request({"type": "http", "method": "GET", "path": "/", "headers": [], "query_string": b""})


def test_names_come_from_columns_and_attributes_alike() -> None:
    columns = ViewColumns.of(ProductColumns())
    assert columns.list == ("id", "sku", "category", "tags")
    assert columns.export == ("sku", "price")
    assert columns.searchable == ("sku", "name")
    assert columns.sortable == frozenset({"id", "price"})
    assert columns.listed_relations() == ["category", "tags"]
    assert {"category", "tags"} <= columns.relations and "sku" not in columns.relations


def test_the_default_sort_is_the_first_declared_or_the_primary_key() -> None:
    assert ViewColumns.of(ProductColumns()).default_sort == ("price", True)
    assert ViewColumns.of(OrderColumns()).default_sort == ("placed_at", False)
    assert ViewColumns.of(TagColumns()).default_sort == ("id", False)


def test_labels_fall_back_to_the_name() -> None:
    columns = ViewColumns.of(ProductColumns())
    assert columns.label("sku") == "SKU code"
    assert columns.label("price") == "Price (EUR)"
    assert columns.label("stock") == "stock"


def test_a_formatter_gets_the_request_only_when_it_takes_three_arguments() -> None:
    columns = ViewColumns.of(ProductColumns())
    sku, name = columns.list_formatters["sku"], columns.list_formatters["name"]
    assert (sku.takes_request, name.takes_request) == (False, True)
    assert sku(object(), "sku", _request()) == "sku!"
    assert name(object(), "name", _request()) == "name for GET"
    assert CellFormatter.of(lambda *parts: len(parts)).takes_request  # *args takes it too
    assert not CellFormatter.of(len).takes_request  # a builtin: no signature to read


class Flag(int):
    pass


class NumberedTags(ModelView, model=Tag):
    column_type_formatters: ClassVar = {int: lambda value: f"#{value}"}


def test_plain_values_go_through_the_type_formatters() -> None:
    columns = ViewColumns.of(TagColumns())
    assert columns.shown_value(None) == Markup("")
    assert "fa-check" in columns.shown_value(True)
    assert columns.shown_value("text") == "text"
    numbered = ViewColumns.of(NumberedTags())
    assert numbered.shown_value(3) == "#3"
    assert numbered.shown_value(Flag(4)) == "#4"  # a subclass without a formatter of its own: its base's
    assert numbered.shown_value(None) is None  # the view's formatters replace SQLAdmin's defaults


def test_a_view_reads_its_declarations_once() -> None:
    view = TagColumns()
    assert columns_of(view) is columns_of(view)
    assert columns_of(TagColumns()) is not columns_of(view)
