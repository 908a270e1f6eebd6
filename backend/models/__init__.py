"""Every model, discovered: importing this package imports each of its modules.

A new module here (`backend/models/supplier.py`) is seen by Alembic,
permission sync and the admin's start-up check without editing this file.
The names below are re-exported for `from backend.models import X`; a
discovered model is added to the package namespace (and `__all__`, which the
shell uses) too.
"""

import importlib
import pkgutil

from backend.db.base import Base
from backend.models.audit import AuditEntry
from backend.models.auth import AuthSession, LoginAttempt
from backend.models.catalog import Category, Product, ProductStatus, Tag, product_tag
from backend.models.customers import Customer
from backend.models.orders import Order, OrderItem, OrderStatus
from backend.models.rbac import Permission, Role, role_permission, user_role
from backend.models.user import User

__all__ = [
    "AuditEntry",
    "AuthSession",
    "Category",
    "Customer",
    "LoginAttempt",
    "Order",
    "OrderItem",
    "OrderStatus",
    "Permission",
    "Product",
    "ProductStatus",
    "Role",
    "Tag",
    "User",
    "product_tag",
    "role_permission",
    "user_role",
]


def _discover() -> None:
    for module in pkgutil.walk_packages(__path__, prefix=f"{__name__}."):
        importlib.import_module(module.name)
    for mapper in Base.registry.mappers:
        model = mapper.class_
        if model.__module__.startswith(f"{__name__}.") and model.__name__ not in globals():
            globals()[model.__name__] = model
            __all__.append(model.__name__)


def mapped_models() -> list[type[Base]]:
    """Every mapped model class (the package's and any mapped since), in table-name order."""
    return sorted((mapper.class_ for mapper in Base.registry.mappers), key=lambda model: model.__tablename__)


_discover()
