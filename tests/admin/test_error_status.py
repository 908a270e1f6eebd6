"""One mapping from a service's refusal to an HTTP status, used by every admin route."""

from __future__ import annotations

import pytest

from admin.errors import status_for
from backend.errors import AppError, Conflict, NotFound, PermissionDenied, ValidationFailed


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (PermissionDenied("no"), 403),
        (NotFound("gone"), 404),
        (Conflict("changed since you opened it"), 409),
        (Conflict("the SKU is taken", field="sku"), 400),  # shown next to its field, like a bad value
        (ValidationFailed({"price": ["Must be more than 0."]}), 400),
        (AppError("anything else"), 400),
    ],
)
def test_each_refusal_has_one_status(error: AppError, status: int) -> None:
    assert status_for(error) == status
