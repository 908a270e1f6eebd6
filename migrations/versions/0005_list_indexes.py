"""list indexes and trigram search

Every way a list can be sorted or filtered gets a partial index over live
rows, ending in `id` for keyset paging. On PostgreSQL, trigram (pg_trgm) GIN
indexes make substring search (ILIKE '%term%') an index scan; they are
PostgreSQL-only and kept out of autogenerate's comparison (migrations/env.py).

Revision ID: 0005
Revises: 0004
Created: 2026-11-22 00:08:37.285636
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

TRIGRAM_INDEXES = (("product", "name"), ("product", "sku"), ("customer", "name"), ("category", "name"))

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("category", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_category_name"))
        batch_op.create_index(
            "ix_category_live_name_id",
            ["name", "id"],
            unique=False,
            postgresql_where=sa.text("deleted_at IS NULL"),
            sqlite_where=sa.text("deleted_at IS NULL"),
        )

    with op.batch_alter_table("customer", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_customer_name"))
        batch_op.create_index(
            "ix_customer_live_name_id",
            ["name", "id"],
            unique=False,
            postgresql_where=sa.text("deleted_at IS NULL"),
            sqlite_where=sa.text("deleted_at IS NULL"),
        )

    with op.batch_alter_table("order", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_order_placed_at"))
        batch_op.drop_index(batch_op.f("ix_order_status"))
        batch_op.drop_index(batch_op.f("ix_order_total"))
        batch_op.create_index(
            "ix_order_live_placed_at_id",
            ["placed_at", "id"],
            unique=False,
            postgresql_where=sa.text("deleted_at IS NULL"),
            sqlite_where=sa.text("deleted_at IS NULL"),
        )
        batch_op.create_index(
            "ix_order_live_status_id",
            ["status", "id"],
            unique=False,
            postgresql_where=sa.text("deleted_at IS NULL"),
            sqlite_where=sa.text("deleted_at IS NULL"),
        )
        batch_op.create_index(
            "ix_order_live_total_id",
            ["total", "id"],
            unique=False,
            postgresql_where=sa.text("deleted_at IS NULL"),
            sqlite_where=sa.text("deleted_at IS NULL"),
        )

    with op.batch_alter_table("product", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_product_name"))
        batch_op.drop_index(batch_op.f("ix_product_price"))
        batch_op.drop_index(batch_op.f("ix_product_status"))
        batch_op.create_index(
            "ix_product_live_category_id_id",
            ["category_id", "id"],
            unique=False,
            postgresql_where=sa.text("deleted_at IS NULL"),
            sqlite_where=sa.text("deleted_at IS NULL"),
        )
        batch_op.create_index(
            "ix_product_live_name_id",
            ["name", "id"],
            unique=False,
            postgresql_where=sa.text("deleted_at IS NULL"),
            sqlite_where=sa.text("deleted_at IS NULL"),
        )
        batch_op.create_index(
            "ix_product_live_price_id",
            ["price", "id"],
            unique=False,
            postgresql_where=sa.text("deleted_at IS NULL"),
            sqlite_where=sa.text("deleted_at IS NULL"),
        )
        batch_op.create_index(
            "ix_product_live_status_id",
            ["status", "id"],
            unique=False,
            postgresql_where=sa.text("deleted_at IS NULL"),
            sqlite_where=sa.text("deleted_at IS NULL"),
        )

    if op.get_bind().dialect.name == "postgresql":
        op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        for table, column in TRIGRAM_INDEXES:
            op.execute(
                f'CREATE INDEX ix_{table}_{column}_trgm ON "{table}" USING gin ({column} gin_trgm_ops) '
                "WHERE deleted_at IS NULL"
            )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table, column in TRIGRAM_INDEXES:
            op.execute(f"DROP INDEX IF EXISTS ix_{table}_{column}_trgm")
    with op.batch_alter_table("product", schema=None) as batch_op:
        batch_op.drop_index(
            "ix_product_live_status_id",
            postgresql_where=sa.text("deleted_at IS NULL"),
            sqlite_where=sa.text("deleted_at IS NULL"),
        )
        batch_op.drop_index(
            "ix_product_live_price_id",
            postgresql_where=sa.text("deleted_at IS NULL"),
            sqlite_where=sa.text("deleted_at IS NULL"),
        )
        batch_op.drop_index(
            "ix_product_live_name_id",
            postgresql_where=sa.text("deleted_at IS NULL"),
            sqlite_where=sa.text("deleted_at IS NULL"),
        )
        batch_op.drop_index(
            "ix_product_live_category_id_id",
            postgresql_where=sa.text("deleted_at IS NULL"),
            sqlite_where=sa.text("deleted_at IS NULL"),
        )
        batch_op.create_index(batch_op.f("ix_product_status"), ["status"], unique=False)
        batch_op.create_index(batch_op.f("ix_product_price"), ["price"], unique=False)
        batch_op.create_index(batch_op.f("ix_product_name"), ["name"], unique=False)

    with op.batch_alter_table("order", schema=None) as batch_op:
        batch_op.drop_index(
            "ix_order_live_total_id",
            postgresql_where=sa.text("deleted_at IS NULL"),
            sqlite_where=sa.text("deleted_at IS NULL"),
        )
        batch_op.drop_index(
            "ix_order_live_status_id",
            postgresql_where=sa.text("deleted_at IS NULL"),
            sqlite_where=sa.text("deleted_at IS NULL"),
        )
        batch_op.drop_index(
            "ix_order_live_placed_at_id",
            postgresql_where=sa.text("deleted_at IS NULL"),
            sqlite_where=sa.text("deleted_at IS NULL"),
        )
        batch_op.create_index(batch_op.f("ix_order_status"), ["status"], unique=False)
        batch_op.create_index(batch_op.f("ix_order_total"), ["total"], unique=False)
        batch_op.create_index(batch_op.f("ix_order_placed_at"), ["placed_at"], unique=False)

    with op.batch_alter_table("customer", schema=None) as batch_op:
        batch_op.drop_index(
            "ix_customer_live_name_id",
            postgresql_where=sa.text("deleted_at IS NULL"),
            sqlite_where=sa.text("deleted_at IS NULL"),
        )
        batch_op.create_index(batch_op.f("ix_customer_name"), ["name"], unique=False)

    with op.batch_alter_table("category", schema=None) as batch_op:
        batch_op.drop_index(
            "ix_category_live_name_id",
            postgresql_where=sa.text("deleted_at IS NULL"),
            sqlite_where=sa.text("deleted_at IS NULL"),
        )
        batch_op.create_index(batch_op.f("ix_category_name"), ["name"], unique=False)
