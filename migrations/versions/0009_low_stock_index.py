"""low stock index: the dashboard lists live products with the least stock

A partial index over live rows on (stock, id): the dashboard's low-stock
block reads it from stock 0 upwards and stops after ten rows, instead of
scanning every product.

Revision ID: 0009
Revises: 0008
Created: 2026-12-03 09:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | Sequence[str] | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_product_live_stock_id",
        "product",
        ["stock", "id"],
        unique=False,
        postgresql_where=sa.text("deleted_at IS NULL"),
        sqlite_where=sa.text("deleted_at IS NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_product_live_stock_id", table_name="product")
