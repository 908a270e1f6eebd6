from __future__ import annotations

from pydantic import ConfigDict, Field

from backend.schemas.base import Input

ROLE_NAME_PATTERN = r"^[\w .-]+$"


class RoleCreate(Input):
    model_config = ConfigDict(str_strip_whitespace=True, extra="forbid")

    name: str = Field(min_length=1, max_length=80, pattern=ROLE_NAME_PATTERN)
    description: str = Field(default="", max_length=2000)
    permissions: list[str] = Field(default_factory=list, description="Permission codenames")


class RoleUpdate(Input):
    model_config = ConfigDict(str_strip_whitespace=True, extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=80, pattern=ROLE_NAME_PATTERN)
    description: str | None = Field(default=None, max_length=2000)
    permissions: list[str] | None = Field(default=None, description="Permission codenames")
