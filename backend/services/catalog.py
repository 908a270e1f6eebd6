"""Catalog services: categories, tags and products."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from backend.errors import Conflict, ValidationFailed
from backend.models import Category, Product, ProductStatus, Tag
from backend.schemas.catalog import (
    CategoryCreate,
    CategoryUpdate,
    ProductCreate,
    ProductUpdate,
)
from backend.schemas.derived import DerivedInput
from backend.services.base import CrudService


class CategoryService(CrudService[Category, CategoryCreate, CategoryUpdate]):
    """Categories (needs `category.*`). A category with live products or subcategories is not deleted."""

    model = Category
    create_schema = CategoryCreate
    update_schema = CategoryUpdate
    unique_messages: ClassVar[dict[str, str]] = {"slug": "A category with the slug {value} already exists."}

    async def build(self, payload: CategoryCreate) -> Category:
        if payload.parent_id is not None:
            await self.live(Category, payload.parent_id, field="parent_id", label="Category")
        return Category(name=payload.name, slug=payload.slug, parent_id=payload.parent_id)

    async def apply(self, obj: Category, payload: CategoryUpdate) -> None:
        if "parent_id" in payload.model_fields_set:
            await self._check_parent(obj, payload.parent_id)
            obj.parent_id = payload.parent_id
        for field in ("name", "slug"):
            value = getattr(payload, field)
            if field in payload.model_fields_set and value is not None:
                setattr(obj, field, value)

    async def before_delete(self, obj: Category) -> None:
        products = await self.uow.repo(Product).count(filters={"category_id": obj.id})
        if products:
            raise Conflict(
                f"The category {obj.name} still has {products} product{'s' if products != 1 else ''}; "
                "move or delete them first."
            )
        if await self.repo.count(filters={"parent_id": obj.id}):
            raise Conflict(f"The category {obj.name} still has subcategories; move or delete them first.")

    async def _check_parent(self, obj: Category, parent_id: int | None) -> None:
        seen = {obj.id}
        current = parent_id
        while current is not None:
            if current in seen:
                raise ValidationFailed({"parent_id": ["A category cannot be inside itself."]})
            seen.add(current)
            parent = await self.live(Category, current, field="parent_id", label="Category")
            current = parent.parent_id


class TagService(CrudService[Tag, DerivedInput, DerivedInput]):
    """Tags (needs `tag.*`); input derived from the columns, only the unique-name message is its own."""

    model = Tag
    unique_messages: ClassVar[dict[str, str]] = {"name": "A tag named {value} already exists."}


class ProductService(CrudService[Product, ProductCreate, ProductUpdate]):
    """Products (needs `product.*`). Prices are positive and stock never goes negative.

    New products are built by the generic `build` (category and tags must be live), which lets an
    import check and insert them a batch at a time.
    """

    model = Product
    create_schema = ProductCreate
    update_schema = ProductUpdate
    unique_messages: ClassVar[dict[str, str]] = {"sku": "A product with the SKU {value} already exists."}
    check_messages: ClassVar[dict[str, tuple[str, str]]] = {
        "ck_product_price_positive": ("price", "The price must be greater than zero."),
        "ck_product_stock_not_negative": ("stock", "Stock cannot go below zero."),
    }

    async def apply(self, obj: Product, payload: ProductUpdate) -> None:
        fields = payload.model_fields_set
        # Only a new reference must be live: one the product already holds may stay (saving unchanged).
        if "category_id" in fields and payload.category_id not in (None, obj.category_id):
            await self.live(Category, payload.category_id, field="category_id", label="Category")
        if "tag_ids" in fields and payload.tag_ids is not None:
            await self.repo.load(obj, "tags")
            obj.tags = await self.live_collection("tag_ids", payload.tag_ids, held=obj.tags)
        for field in ("sku", "name", "description", "price", "stock", "status", "category_id"):
            value = getattr(payload, field)
            if field in fields and value is not None:
                setattr(obj, field, value)

    async def set_status(self, ids: Sequence[int], status: ProductStatus) -> int:
        """Set the status of several products at once (needs `product.change`); returns how many."""
        self.require("change")
        if not ids:
            raise ValidationFailed({"pks": ["Select at least one product."]})
        # Row by row through the ORM, so each change is versioned (and audited) like an edit.
        products = await self.repo.get_many(ids)
        missing = sorted(set(ids) - {product.id for product in products})
        if missing:
            raise ValidationFailed({"pks": [f"No such product: {', '.join(map(str, missing))}."]})
        async with self.writing():
            for product in products:
                product.status = status
        return len(products)

    async def adjust_stock(self, product: Product, delta: int) -> None:
        """Change stock by `delta`; refuses to go below zero."""
        if product.stock + delta < 0:
            raise ValidationFailed(
                {"quantity": [f"Only {product.stock} of {product.sku} in stock."]},
                f"Not enough stock for {product.sku}.",
            )
        product.stock += delta
