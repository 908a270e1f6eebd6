"""Which service manages which table: used where a table is named at run time (trash, purge)."""

from __future__ import annotations

from typing import Any

from backend.errors import NotFound
from backend.services.base import CrudService
from backend.services.catalog import CategoryService, ProductService, TagService
from backend.services.customers import CustomerService
from backend.services.orders import OrderItemService, OrderService
from backend.services.roles import RoleService
from backend.services.users import UserService

SERVICES: dict[str, type[CrudService[Any, Any, Any]]] = {
    service.model.__tablename__: service
    for service in (
        CategoryService,
        TagService,
        ProductService,
        CustomerService,
        OrderService,
        OrderItemService,
        UserService,
        RoleService,
    )
}


def service_for(table: str) -> type[CrudService[Any, Any, Any]]:
    """The service of `table`; `NotFound` for a name no model has.

    The name often comes from a URL, so the message does not repeat it.
    """
    try:
        return SERVICES[table]
    except KeyError:
        raise NotFound("No such kind of record.") from None


def soft_deletable_tables() -> list[str]:
    return sorted(table for table, service in SERVICES.items() if hasattr(service.model, "deleted_at"))
