from __future__ import annotations

from pydantic import ConfigDict, Field, field_validator

from backend.schemas.base import Input
from backend.schemas.user import _check_email


class CustomerCreate(Input):
    model_config = ConfigDict(str_strip_whitespace=True, extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    email: str = Field(min_length=3, max_length=254)
    phone: str = Field(default="", max_length=50, pattern=r"^[0-9+() .-]*$")
    address: str = Field(default="", max_length=2000)

    _email = field_validator("email")(_check_email)


class CustomerUpdate(Input):
    model_config = ConfigDict(str_strip_whitespace=True, extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=200)
    email: str | None = Field(default=None, min_length=3, max_length=254)
    phone: str | None = Field(default=None, max_length=50, pattern=r"^[0-9+() .-]*$")
    address: str | None = Field(default=None, max_length=2000)

    _email = field_validator("email")(_check_email)
