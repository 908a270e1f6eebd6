"""user locale: the language the admin speaks to each user

A nullable `locale` on users: "en" or "de" when the user chose one on their
account page, empty (NULL) to follow the browser's Accept-Language. Added in
place on both databases (SQLite adds a nullable column without a rebuild).

Revision ID: 0010
Revises: 0009
Created: 2026-12-04 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | Sequence[str] | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("user", sa.Column("locale", sa.String(length=16), nullable=True))


def downgrade() -> None:
    # SQLite (3.35+) drops a column in place, as 0006 does.
    op.drop_column("user", "locale")
