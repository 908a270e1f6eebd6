"""Schema and health commands: migrate, makemigrations, downgrade, showmigrations, check."""

from __future__ import annotations

import re

import click

from backend.cli.accounts import print_sync_report
from backend.cli.context import current_settings, in_unit_of_work, run
from backend.cli.output import as_json, say
from backend.config import load_settings
from backend.db import migrations
from backend.db.session import Database
from backend.errors import ConfigurationError
from backend.services.health import (
    Check,
    HealthReport,
    database_checks,
    missing_database_file,
    settings_check,
)
from backend.services.permissions import sync_permissions


@click.command()
@click.argument("revision", default="head")
def migrate(revision: str) -> None:
    """Apply migrations up to REVISION (default: the latest)."""
    config = migrations.alembic_config(current_settings())

    async def apply() -> tuple[migrations.MigrationStatus, migrations.MigrationStatus]:
        before = await migrations.status(config)
        await migrations.upgrade(config, revision)
        return before, await migrations.status(config)

    before, after = run(apply())
    was_applied = {r.id for r in before.revisions if r.applied}
    newly = [r for r in after.revisions if r.applied and r.id not in was_applied]
    if not newly:
        say("No migrations to apply.")
    for rev in newly:
        say(f"  Applied {rev.id} {rev.message}")
    say(f"Database is at {', '.join(after.current) or 'base'}.")
    if after.at_head:
        print_sync_report(run(in_unit_of_work(sync_permissions)))


@click.command()
@click.option("-m", "--message", required=True, help="What the migration does, in a few words.")
def makemigrations(message: str) -> None:
    """Autogenerate a migration from the models (review it before committing)."""
    config = migrations.alembic_config(current_settings())
    path = run(migrations.make_migration(config, message))
    say(f"Created {path}")
    say("Review it, then run 'python manage.py migrate'.")


class _StepsBackCommand(click.Command):
    """Takes `-1`, `-2`... as the REVISION argument, not as unknown options.

    Click reads any word starting with '-' as an option; the argument is moved
    behind a `--` so the documented `downgrade -1 --yes` parses as written.
    """

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if "--" not in args:
            steps = [arg for arg in args if re.fullmatch(r"-\d+", arg)]
            if steps:
                args = [arg for arg in args if arg not in steps] + ["--", *steps]
        return super().parse_args(ctx, args)


@click.command(cls=_StepsBackCommand)
@click.argument("revision")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def downgrade(revision: str, yes: bool) -> None:
    """Roll the schema back to REVISION ('-1' for one step, 'base' for all)."""
    settings = current_settings()
    config = migrations.alembic_config(settings)
    migrations.check_revision(config, revision)
    if not yes:
        click.confirm(
            f"Roll back {settings.safe_database_url} to {revision}? Data in dropped tables is lost",
            abort=True,
        )

    async def roll_back() -> migrations.MigrationStatus:
        await migrations.downgrade(config, revision)
        return await migrations.status(config)

    after = run(roll_back())
    say(f"Database is at {', '.join(after.current) or 'base'}.")


@click.command()
def showmigrations() -> None:
    """List every migration, marked [X] applied or [ ] pending."""
    state = run(migrations.status(migrations.alembic_config(current_settings())))
    for rev in state.revisions:
        say(f" [{'X' if rev.applied else ' '}] {rev.id} {rev.message}")
    pending = len(state.pending)
    say(f"{pending} pending." if pending else "Up to date.")


@click.command()
@click.option("--json", "as_json_output", is_flag=True, help="Print the report as JSON.")
def check(as_json_output: bool) -> None:
    """Check settings, database, migrations and read replicas; exit 1 when unhealthy."""
    report = run(_health_report())
    if as_json_output:
        as_json(report.as_dict())
    else:
        for item in report.checks:
            say(f"{'ok  ' if item.ok else 'FAIL'} {item.name}: {item.detail}")
        say("Healthy." if report.healthy else f"Unhealthy: {report.reason}")
    if not report.healthy:
        raise click.exceptions.Exit(1)


async def _health_report() -> HealthReport:
    try:
        settings = load_settings()
    except ConfigurationError as exc:
        return HealthReport([Check("settings", False, exc.message)])
    missing = missing_database_file(settings)
    if missing is not None:  # building the engine would create the file and its folder
        return HealthReport([settings_check(settings), missing])
    database = Database(settings)
    try:
        checks = [settings_check(settings), *await database_checks(settings, database.engine)]
        # A replica that is down is a failed check here, though the app still serves from the primary.
        checks += [Check(status.name, status.ok, status.detail) for status in await database.replicas.check()]
        return HealthReport(checks)
    finally:
        await database.dispose()


COMMANDS = (migrate, makemigrations, downgrade, showmigrations, check)
