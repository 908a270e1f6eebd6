"""import id on audit entries

Every change an import writes carries the import's id, so an auditor can
list what one file did. Added in place (no table rebuild on SQLite), which
keeps the append-only triggers of 0004.

Revision ID: 0006
Revises: 0005
Created: 2026-12-02 15:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("audit_entry", sa.Column("import_id", sa.String(length=36), nullable=True))
    op.create_index(op.f("ix_audit_entry_import_id"), "audit_entry", ["import_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_audit_entry_import_id"), table_name="audit_entry")
    # SQLite (3.35+) drops a column in place; a batch rebuild would lose the append-only triggers.
    op.drop_column("audit_entry", "import_id")
