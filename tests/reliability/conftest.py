"""The admin and service fixtures, shared with these cross-cutting tests."""

from tests.admin.conftest import app, new_client
from tests.backend.services.conftest import system_uow, uow_as

__all__ = ["app", "new_client", "system_uow", "uow_as"]
