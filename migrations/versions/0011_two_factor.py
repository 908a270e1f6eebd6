"""two factor: TOTP on users, recovery codes, a per-role requirement, half-signed-in sessions

- `user.totp_secret` (the TOTP secret, encrypted with a key derived from SECRET_KEY),
  `user.totp_enrolled_at` and `user.totp_last_step` (the last accepted time step: no code twice);
- `recovery_code`: ten single-use codes per enrolled user, stored as keyed hashes;
- `role.requires_two_factor`: holders of the role must enrol;
- `auth_session.pending_factor`: "code" or "enrol" while only the password was given.

Columns are added in place on both databases (nullable, or with a server default); SQLite adds
such columns without a rebuild.

Revision ID: 0011
Revises: 0010
Created: 2026-12-06 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | Sequence[str] | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("user", sa.Column("totp_secret", sa.String(length=255), nullable=True))
    op.add_column("user", sa.Column("totp_enrolled_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("user", sa.Column("totp_last_step", sa.BigInteger(), nullable=True))
    op.add_column(
        "role", sa.Column("requires_two_factor", sa.Boolean(), server_default=sa.false(), nullable=False)
    )
    op.add_column("auth_session", sa.Column("pending_factor", sa.String(length=8), nullable=True))
    op.create_table(
        "recovery_code",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("user_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("code_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"], ["user.id"], name=op.f("fk_recovery_code_user_id_user"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_recovery_code")),
    )
    with op.batch_alter_table("recovery_code", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_recovery_code_user_id"), ["user_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("recovery_code", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_recovery_code_user_id"))
    op.drop_table("recovery_code")
    # SQLite (3.35+) drops a column in place, as 0010 does.
    op.drop_column("auth_session", "pending_factor")
    op.drop_column("role", "requires_two_factor")
    op.drop_column("user", "totp_last_step")
    op.drop_column("user", "totp_enrolled_at")
    op.drop_column("user", "totp_secret")
