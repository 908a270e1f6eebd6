"""`manage.py purge`: delete old soft-deleted records for good."""

from __future__ import annotations

import click

from backend.cli.context import in_unit_of_work, run
from backend.cli.output import say
from backend.db.uow import UnitOfWork
from backend.services.purge import PurgeReport, purge_candidates, purge_records


@click.command()
@click.option(
    "--older-than", "days", required=True, type=click.IntRange(0, 36_500), help="Deleted over DAYS days ago."
)
@click.option("--model", help="Only this model, by table name (e.g. product).")
@click.option("--dry-run", is_flag=True, help="Only count what would be purged.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def purge(days: int, model: str | None, dry_run: bool, yes: bool) -> None:
    """Delete for good the records soft-deleted more than DAYS days ago (audited)."""
    candidates = run(
        in_unit_of_work(lambda uow: purge_candidates(uow, older_than_days=days, model=model), writes=False)
    )
    total = sum(len(ids) for ids in candidates.values())
    for table, ids in candidates.items():
        say(f"  {table}: {len(ids)}")
    if not total:
        say("Nothing to purge.")
        return
    if dry_run:
        say(f"Would purge {total} record{'s' if total != 1 else ''} (dry run: nothing changed).")
        return
    if not yes:
        click.confirm(f"Purge {total} record{'s' if total != 1 else ''} for good?", abort=True)

    async def work(uow: UnitOfWork) -> PurgeReport:
        return await purge_records(uow, candidates)

    report = run(in_unit_of_work(work))
    say(f"Purged {report.total} record{'s' if report.total != 1 else ''}.")
    for table, object_id, reason in report.kept:
        say(f"  kept {table} {object_id}: {reason}")
