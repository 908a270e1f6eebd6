"""foundation: user table

The `user` table comes first because every soft-deletable table refers to it
(`deleted_by_id`). Usernames are unique among live (not soft-deleted) rows.

Revision ID: 0001
Revises:
Created: 2026-11-21
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIGINT_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
LIVE_ROWS = sa.text("deleted_at IS NULL")


def upgrade() -> None:
    op.create_table(
        "user",
        sa.Column("id", BIGINT_ID, nullable=False),
        sa.Column("username", sa.String(length=150), nullable=False),
        sa.Column("email", sa.String(length=254), server_default="", nullable=False),
        sa.Column("password_hash", sa.String(length=255), server_default="", nullable=False),
        sa.Column("is_active", sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.Column("is_superuser", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("last_login_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("deleted_by_id", BIGINT_ID, nullable=True),
        sa.Column("version", sa.Integer(), server_default="1", nullable=False),
        sa.ForeignKeyConstraint(
            ["deleted_by_id"], ["user.id"], name=op.f("fk_user_deleted_by_id_user"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_user")),
    )
    op.create_index(op.f("ix_user_deleted_at"), "user", ["deleted_at"])
    op.create_index(op.f("ix_user_deleted_by_id"), "user", ["deleted_by_id"])
    op.create_index(
        "uq_user_username",
        "user",
        ["username"],
        unique=True,
        postgresql_where=LIVE_ROWS,
        sqlite_where=LIVE_ROWS,
    )


def downgrade() -> None:
    op.drop_index("uq_user_username", table_name="user")
    op.drop_index(op.f("ix_user_deleted_by_id"), table_name="user")
    op.drop_index(op.f("ix_user_deleted_at"), table_name="user")
    op.drop_table("user")
