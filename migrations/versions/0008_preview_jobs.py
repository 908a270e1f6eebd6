"""preview jobs: a job may be the preview of a large import

On PostgreSQL the preview of a file above JOB_THRESHOLD_ROWS runs as a job
of its own kind, "preview". The kind is a VARCHAR with a CHECK constraint on
both databases (backend/db/columns.py, `enum_column`): the constraint is
replaced. SQLite cannot alter a CHECK in place, so batch mode rebuilds the
job table there (it has no triggers to lose); PostgreSQL alters it in place.

Revision ID: 0008
Revises: 0007
Created: 2026-12-03 08:40:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CONSTRAINT = "ck_job_job_kind"


def _kinds(*kinds: str) -> str:
    return "kind IN (" + ", ".join(f"'{kind}'" for kind in kinds) + ")"


def upgrade() -> None:
    with op.batch_alter_table("job", schema=None) as batch_op:
        batch_op.drop_constraint(op.f(CONSTRAINT), type_="check")
        batch_op.create_check_constraint(op.f(CONSTRAINT), _kinds("export", "import", "preview"))


def downgrade() -> None:
    # A preview writes nothing and its upload expires with it: its rows go rather than block the way back.
    op.execute("DELETE FROM job WHERE kind = 'preview'")
    with op.batch_alter_table("job", schema=None) as batch_op:
        batch_op.drop_constraint(op.f(CONSTRAINT), type_="check")
        batch_op.create_check_constraint(op.f(CONSTRAINT), _kinds("export", "import"))
