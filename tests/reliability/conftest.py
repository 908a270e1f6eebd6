"""The admin and service fixtures, shared with these cross-cutting tests, and a PgBouncer."""

from collections.abc import Iterator

import pytest

from tests.admin.conftest import app, new_client
from tests.backend.services.conftest import system_uow, uow_as
from tests.pgbouncer import PgBouncer, running_pgbouncer

__all__ = ["app", "new_client", "pgbouncer", "system_uow", "uow_as"]


@pytest.fixture(scope="session")
def pgbouncer() -> Iterator[PgBouncer]:
    """A PgBouncer in transaction pooling mode for the run (per xdist worker), stopped at the end."""
    with running_pgbouncer() as bouncer:
        yield bouncer
