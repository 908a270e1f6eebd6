from __future__ import annotations

from pydantic import ConfigDict, Field, field_validator

from backend.auth.passwords import MAX_PASSWORD_LENGTH
from backend.models.user import EMAIL_MAX_LENGTH, USERNAME_MAX_LENGTH
from backend.schemas.base import Input

USERNAME_PATTERN = r"^[\w.@+-]+$"


def _check_email(value: str | None) -> str | None:
    if value and ("@" not in value or value.startswith("@") or value.endswith("@") or " " in value):
        raise ValueError("Enter a valid email address.")
    return value


class UserCreate(Input):
    model_config = ConfigDict(str_strip_whitespace=True, extra="forbid")

    username: str = Field(min_length=1, max_length=USERNAME_MAX_LENGTH, pattern=USERNAME_PATTERN)
    email: str = Field(default="", max_length=EMAIL_MAX_LENGTH)
    password: str = Field(min_length=1, max_length=MAX_PASSWORD_LENGTH)
    is_active: bool = True
    is_superuser: bool = False
    roles: list[str] = Field(default_factory=list, description="Role names")

    _email = field_validator("email")(_check_email)


class UserUpdate(Input):
    model_config = ConfigDict(str_strip_whitespace=True, extra="forbid")

    email: str | None = Field(default=None, max_length=EMAIL_MAX_LENGTH)
    is_active: bool | None = None
    is_superuser: bool | None = None
    roles: list[str] | None = Field(default=None, description="Role names")

    _email = field_validator("email")(_check_email)
