"""jobs: the job table, and procrastinate's queue on PostgreSQL

Long imports and exports run as jobs. Their rows (`job`) exist on both
databases; on PostgreSQL a worker (`manage.py worker`) takes them from
procrastinate's queue, whose schema (tables, types, functions, triggers)
comes from the installed procrastinate package. On SQLite jobs run in the
process that asks for them: there is no queue.

Upgrading procrastinate later means a new revision that applies the
package's migration scripts for the versions in between.

Revision ID: 0007
Revises: 0006
Created: 2026-12-02 15:31:06
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from procrastinate.schema import SchemaManager
from sqlalchemy.util import await_

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

DROP_PROCRASTINATE = r"""
DROP TABLE IF EXISTS procrastinate_events, procrastinate_periodic_defers, procrastinate_jobs,
    procrastinate_workers CASCADE;
DO $$
DECLARE
    found regprocedure;
BEGIN
    FOR found IN
        SELECT p.oid::regprocedure FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
        WHERE p.proname LIKE 'procrastinate\_%' AND n.nspname = current_schema()
    LOOP
        EXECUTE 'DROP FUNCTION ' || found || ' CASCADE';
    END LOOP;
END;
$$;
DROP TYPE IF EXISTS procrastinate_job_to_defer_v1, procrastinate_job_event_type,
    procrastinate_job_status CASCADE;
"""


def _run_script(sql: str) -> None:
    """Run a script of several statements in the migration's transaction.

    SQLAlchemy's asyncpg driver prepares every statement, and a prepared
    statement holds one command; the driver's own `execute` without
    arguments runs a whole script, on the same connection and transaction.
    """
    driver_connection = op.get_bind().connection.driver_connection
    if driver_connection is None:
        raise RuntimeError("the migration's connection has no driver connection")
    await_(driver_connection.execute(sql))


def upgrade() -> None:
    op.create_table(
        "job",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "kind",
            sa.Enum(
                "export", "import", name="job_kind", native_enum=False, create_constraint=True, length=20
            ),
            nullable=False,
        ),
        sa.Column("model", sa.String(length=64), nullable=False),
        sa.Column("format", sa.String(length=10), nullable=False),
        sa.Column("owner_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.Column("owner_name", sa.String(length=150), nullable=False),
        sa.Column("client_address", sa.String(length=64), nullable=True),
        sa.Column(
            "status",
            sa.Enum(
                "queued",
                "running",
                "done",
                "failed",
                name="job_status",
                native_enum=False,
                create_constraint=True,
                length=20,
            ),
            nullable=False,
        ),
        sa.Column("rows_done", sa.Integer(), server_default="0", nullable=False),
        sa.Column("rows_total", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("error", sa.String(length=500), nullable=True),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("file_token", sa.String(length=32), nullable=False),
        sa.Column("result_name", sa.String(length=255), nullable=True),
        sa.Column("result_media_type", sa.String(length=100), nullable=True),
        sa.Column("report", sa.JSON(), nullable=True),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("queue_job_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True),
        sa.ForeignKeyConstraint(
            ["owner_id"], ["user.id"], name=op.f("fk_job_owner_id_user"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_job")),
    )
    with op.batch_alter_table("job", schema=None) as batch_op:
        batch_op.create_index("ix_job_owner_id_id", ["owner_id", "id"], unique=False)

    if op.get_bind().dialect.name == "postgresql":
        _run_script(SchemaManager.get_schema())


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        _run_script(DROP_PROCRASTINATE)

    with op.batch_alter_table("job", schema=None) as batch_op:
        batch_op.drop_index("ix_job_owner_id_id")

    op.drop_table("job")
