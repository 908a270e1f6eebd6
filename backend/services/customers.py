"""Customers (personal data: the admin masks it for roles without `customer.view_pii`)."""

from __future__ import annotations

from typing import ClassVar

from backend.models import Customer
from backend.schemas.customers import CustomerCreate, CustomerUpdate
from backend.services.base import CrudService


class CustomerService(CrudService[Customer, CustomerCreate, CustomerUpdate]):
    """Customers (needs `customer.*`)."""

    model = Customer
    create_schema = CustomerCreate
    update_schema = CustomerUpdate
    unique_messages: ClassVar[dict[str, str]] = {"email": "A customer with the email {value} already exists."}
