"""`manage.py seed`: demo data, or bulk products for benchmarks."""

from __future__ import annotations

import sys
import time

import click

from backend.cli.context import in_unit_of_work, run
from backend.cli.output import say
from backend.db.uow import UnitOfWork
from backend.services.bulk_seed import seed_bulk_products
from backend.services.seed import SeedReport, seed_demo


@click.command()
@click.option("--demo", is_flag=True, help="Demo back office with one login per role (idempotent).")
@click.option(
    "--products", type=click.IntRange(1, 50_000_000), help="Also insert N generated products (bulk)."
)
@click.option("--batch-size", default=10_000, show_default=True, type=click.IntRange(100, 1_000_000))
@click.option("--force", is_flag=True, help="Allow seeding when ENVIRONMENT=production.")
@click.option("--no-audit", is_flag=True, help="Leave the demo data out of the audit trail.")
def seed(demo: bool, products: int | None, batch_size: int, force: bool, no_audit: bool) -> None:
    """Load demo data (--demo) and/or N bulk products for benchmarks (--products N)."""
    if not demo and not products:
        raise click.UsageError("Pass --demo, --products N, or both.")
    if demo:
        report: SeedReport = run(in_unit_of_work(lambda uow: seed_demo(uow, force=force), audit=not no_audit))
        created = ", ".join(f"{n} {what}" for what, n in report.created.items()) or "nothing new"
        say(f"Demo data ready ({created}).")
        say("Demo logins (local use only):")
        for username, password, role in report.logins:
            say(f"  {username:<8} / {password:<22} {role}")
    if products:
        _seed_products(products, batch_size=batch_size, force=force)


def _seed_products(count: int, *, batch_size: int, force: bool) -> None:
    bar = click.progressbar(length=count, label="Seeding products", file=sys.stderr)
    with bar:

        async def work(uow: UnitOfWork) -> int:
            return await seed_bulk_products(
                uow, count, batch_size=batch_size, force=force, progress=bar.update
            )

        started = time.perf_counter()
        inserted = run(in_unit_of_work(work))
        elapsed = time.perf_counter() - started
    say(f"Inserted {inserted:,} products in {elapsed:.1f} s ({inserted / elapsed:,.0f} rows/s).")
