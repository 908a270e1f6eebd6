"""Every model, imported so Alembic and permission sync see the whole schema."""

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
