"""How the app's engine talks to PostgreSQL through PgBouncer in transaction pooling mode.

PgBouncer 1.18 (Debian 12's) predates its support for named prepared
statements: in transaction mode each transaction may run on another server
connection, so a statement that asyncpg prepared under a name on one of them
is unknown on the next ("prepared statement ... does not exist"), and two
clients may pick the same numbered name ("... already exists"). SQLAlchemy's
documented asyncpg recipe (the dialect's "Prepared Statement Name with
PGBouncer" section) fixes both:

- every statement is prepared under a unique name (`prepared_statement_name_func`);
- no statement is reused from a cache, neither asyncpg's (`statement_cache_size=0`)
  nor SQLAlchemy's (`prepared_statement_cache_size=0`): a cached statement would
  be looked for on a server connection that never saw it;
- `NullPool`: PgBouncer is the pool. A second pool in the app would keep client
  connections that a PgBouncer restart leaves dead, and prepared statements that
  pile up; a new connection to a nearby PgBouncer forks no server process.

PgBouncer itself must run `DISCARD ALL` whenever a server connection goes back
to its pool (`server_reset_query = DISCARD ALL`, `server_reset_query_always = 1`),
which drops those one-off statements on the server. Migrations and the job queue
connect directly (`Settings.direct_url`).
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.engine import URL

from backend.config import DatabasePooler, Settings


def unique_statement_name() -> str:
    return f"__asyncpg_{uuid.uuid4().hex}__"


def through_pgbouncer(settings: Settings) -> bool:
    return settings.database_pooler is DatabasePooler.PGBOUNCER


def pgbouncer_url(url: URL) -> URL:
    """`url` with SQLAlchemy's own prepared statement cache off."""
    return url.update_query_dict({"prepared_statement_cache_size": "0"})


def pgbouncer_connect_args(connect_args: dict[str, Any]) -> dict[str, Any]:
    """asyncpg's connect arguments for transaction pooling: unique statement names, no statement cache."""
    return {
        **connect_args,
        "statement_cache_size": 0,
        "prepared_statement_name_func": unique_statement_name,
    }
