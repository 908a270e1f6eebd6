"""The base of every service input schema."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, field_validator

NUL_MESSAGE = "Text cannot contain the NUL character."


class Input(BaseModel):
    """Unknown fields are refused, and no text holds a NUL character.

    PostgreSQL cannot store NUL in text, and SQLite would keep it where no one
    can see it; the admin refuses it in URLs and forms too (admin/input_guard.py).
    """

    model_config = ConfigDict(extra="forbid")

    @field_validator("*", mode="before")
    @classmethod
    def _refuse_nul(cls, value: Any) -> Any:
        # Plain text and numbers first: this runs for every field of every row an import validates.
        if type(value) is str:
            if "\x00" in value:
                raise ValueError(NUL_MESSAGE)
            return value
        if value is None or type(value) in _NO_TEXT:
            return value
        if _holds_nul(value):
            raise ValueError(NUL_MESSAGE)
        return value


_NO_TEXT = frozenset({int, float, bool, Decimal})


def _holds_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, list | tuple | set | frozenset):
        return any(_holds_nul(item) for item in value)
    if isinstance(value, dict):
        return any(_holds_nul(key) or _holds_nul(item) for key, item in value.items())
    return False
