"""Stock SQLAdmin over the same data: the baseline the benchmark compares against.

No authentication and no customisation beyond the columns and a category
filter: what a team gets from `ModelView` out of the box (exact COUNT on every
page, OFFSET paging, `CAST(col AS VARCHAR) ILIKE` search, `ForeignKeyFilter`).
"""

from __future__ import annotations

from typing import ClassVar

from sqladmin import Admin, ModelView
from sqladmin.filters import ForeignKeyFilter
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from backend.config import get_settings
from backend.db.session import create_engine
from backend.models import Category, Product


class StockProductAdmin(ModelView, model=Product):
    column_list: ClassVar = [
        Product.id,
        Product.sku,
        Product.name,
        Product.price,
        Product.stock,
        Product.status,
        Product.category,
    ]
    column_searchable_list: ClassVar = [Product.sku, Product.name]
    column_sortable_list: ClassVar = [Product.id, Product.name, Product.price]
    column_default_sort: ClassVar = [(Product.id, True)]
    # SQLAdmin's own foreign-key filter, under the parameter our list uses (`?category=<id>`).
    column_filters: ClassVar = [
        ForeignKeyFilter(Product.category_id, Category.name, title="Category", parameter_name="category")
    ]


async def _health(_request: Request) -> Response:
    return JSONResponse({"status": "ok"})


def create_app() -> Starlette:
    app = Starlette(routes=[Route("/health", _health)])
    admin = Admin(app, create_engine(get_settings()))
    admin.add_view(StockProductAdmin)
    return app
