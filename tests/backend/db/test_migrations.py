from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect
from sqlalchemy.engine import Connection

import backend.models  # noqa: F401  - the full schema
from backend.db import migrations
from backend.db.base import Base
from backend.db.session import create_engine
from backend.errors import MigrationError
from tests.databases import make_settings

FAILING_REVISION = '''
"""a revision that fails halfway"""
import sqlalchemy as sa
from alembic import op

revision = "9999"
down_revision = "{head}"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table("half_done", sa.Column("id", sa.Integer, primary_key=True))
    op.execute("INSERT INTO half_done (id) VALUES (1)")
    op.execute("SELECT * FROM no_such_table")


def downgrade():
    op.drop_table("half_done")
'''


async def _table_names(url: str) -> set[str]:
    engine = create_engine(make_settings(url))
    try:
        async with engine.connect() as connection:
            return set(await connection.run_sync(lambda c: inspect(c).get_table_names()))
    finally:
        await engine.dispose()


def _copy_migrations(tmp_path: Path) -> Path:
    target = tmp_path / "migrations"
    shutil.copytree(migrations.MIGRATIONS_DIR, target, ignore=shutil.ignore_patterns("__pycache__"))
    return target


async def test_upgrade_downgrade_upgrade(fresh_url: str) -> None:
    config = migrations.alembic_config(make_settings(fresh_url))
    heads = migrations.head_revisions(config)

    await migrations.upgrade(config)
    state = await migrations.status(config)
    assert state.at_head and set(state.current) == set(heads)
    assert {"user", "alembic_version"} <= await _table_names(fresh_url)

    await migrations.downgrade(config, "base")
    state = await migrations.status(config)
    assert state.current == ()
    assert all(not rev.applied for rev in state.revisions)
    assert await _table_names(fresh_url) <= {"alembic_version"}

    await migrations.upgrade(config)
    assert (await migrations.status(config)).at_head


async def test_models_and_migrations_agree(migrated_url: str) -> None:
    engine = create_engine(make_settings(migrated_url))

    def diff(connection: Connection) -> list[object]:
        opts = {"compare_type": True, "include_object": migrations.include_object}
        context = MigrationContext.configure(connection, opts=opts)
        return list(compare_metadata(context, Base.metadata))

    try:
        async with engine.connect() as connection:
            differences = await connection.run_sync(diff)
    finally:
        await engine.dispose()
    assert differences == [], "run 'manage.py makemigrations': models and migrations differ"


async def test_a_failing_revision_leaves_nothing_behind(fresh_url: str, tmp_path: Path) -> None:
    script_location = _copy_migrations(tmp_path)
    head = migrations.head_revisions(migrations.alembic_config_without_settings())[0]
    (script_location / "versions" / "9999_failing.py").write_text(
        textwrap.dedent(FAILING_REVISION.format(head=head))
    )
    config = migrations.alembic_config(make_settings(fresh_url), script_location=script_location)

    with pytest.raises(Exception, match="no_such_table"):
        await migrations.upgrade(config)

    # Not even the revisions before the failing one were kept: one transaction.
    assert await _table_names(fresh_url) <= {"alembic_version"}
    assert (await migrations.status(config)).current == ()


async def test_unknown_revision_is_a_clear_error(fresh_url: str) -> None:
    config = migrations.alembic_config(make_settings(fresh_url))
    with pytest.raises(MigrationError, match="nope"):
        await migrations.upgrade(config, "nope")


async def test_makemigrations_numbers_revisions(migrated_url: str, tmp_path: Path) -> None:
    script_location = _copy_migrations(tmp_path)
    config = migrations.alembic_config(make_settings(migrated_url), script_location=script_location)
    existing = len(list((script_location / "versions").glob("*.py")))

    path = await migrations.make_migration(config, "nothing changed")

    assert path.parent == script_location / "versions"
    assert path.name == f"{existing + 1:04d}_nothing_changed.py"
    body = path.read_text()
    upgrade_body = body.split("def upgrade() -> None:")[1].split("def downgrade")[0]
    assert "op." not in upgrade_body  # models match the schema: nothing to do
    assert "pass" in upgrade_body
