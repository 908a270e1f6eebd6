"""`manage.py dumpdata` and `manage.py loaddata`: several models' rows in one JSON fixture.

The format and the loading rules are the service's (backend/services/exchange/fixtures.py);
these commands parse arguments and print.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click

from backend.cli.context import in_unit_of_work, run
from backend.cli.files import destination, print_row_errors
from backend.cli.output import say
from backend.db.uow import UnitOfWork
from backend.errors import AppError
from backend.services.exchange.fixture_loading import FixtureProgress, FixtureReport, load_fixture
from backend.services.exchange.fixtures import dump_fixture, fixture_models, read_fixture
from backend.services.exchange.importing import file_hash


@click.command()
@click.argument("models", nargs=-1, metavar="[MODEL]...")
@click.option(
    "-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="Write to FILE, not stdout."
)
def dumpdata(models: tuple[str, ...], output: Path | None) -> None:
    """Write the live rows of MODELs as a JSON fixture, each model after those it refers to.

    Without MODEL: every model but users and roles, whose passwords and
    permissions do not travel in files (each database gets its roles from
    `migrate`; name them to dump what does travel). A model that names
    another's records by id (an order's customer) needs that model in the
    fixture too.
    """
    chosen = fixture_models(models)
    counts: dict[str, int] = {}

    def dumped(table: str, rows: int) -> None:
        counts[table] = rows
        if sys.stderr.isatty():
            click.echo(f"  {table}: {rows:,} rows", err=True)

    async def work(uow: UnitOfWork) -> None:
        chunks = dump_fixture(uow, chosen, dumped=dumped)
        first = await anext(chunks)  # a refusal is raised here, before the file is created
        with destination(output) as sink:
            sink.write(first)
            async for chunk in chunks:
                sink.write(chunk)

    started_at = time.perf_counter()
    run(in_unit_of_work(work, writes=False))
    elapsed = time.perf_counter() - started_at
    where = str(output) if output is not None else "standard output"
    summary = ", ".join(f"{table} {rows:,}" for table, rows in counts.items()) or "no models"
    click.echo(f"Dumped {sum(counts.values()):,} rows ({summary}) to {where} in {elapsed:.1f} s", err=True)


@click.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def loaddata(file: Path) -> None:
    """Load a fixture from dumpdata through the services, in one transaction: every row or none.

    Rows are matched by natural key (by content for orders and their items),
    so loading the same fixture twice changes nothing. A fixture is a snapshot:
    rows are restored as recorded (validated and audited, no stock taken again).
    """
    data = file.read_bytes()
    parts = read_fixture(data)
    digest = file_hash(data)
    started_at = time.perf_counter()
    with _progress(sum(len(part.rows) for part in parts)) as progress:

        async def work(uow: UnitOfWork) -> FixtureReport:
            return await load_fixture(uow, parts, file_name=file.name, file_hash=digest, progress=progress)

        report = run(in_unit_of_work(work))
    elapsed = time.perf_counter() - started_at
    for load in report.models:
        totals = load.totals
        counted = f"{totals['new']:,} new, {totals['changed']:,} changed, {totals['unchanged']:,} unchanged"
        say(f"  {load.table}: {counted}" + (f", {totals['error']:,} with errors" if totals["error"] else ""))
    for table in report.not_tried:
        say(f"  {table}: not tried (an earlier model has errors)")
    if not report.written:
        for load in report.models:
            print_row_errors(load.error_rows, model=load.table)
        errors = report.error_count
        raise AppError(f"Nothing was loaded: {errors:,} row{'s' if errors != 1 else ''} with errors.")
    say(f"Loaded {file.name} in {elapsed:.1f} s.")


@contextmanager
def _progress(total: int) -> Iterator[FixtureProgress | None]:
    """One bar on stderr over every model's rows (each model reports its own count); none off a terminal."""
    if not sys.stderr.isatty():
        yield None
        return
    done: dict[str, int] = {}
    with click.progressbar(length=max(total, 1), label="Loading", file=sys.stderr) as bar:

        def update(table: str, rows_done: int, _rows: int) -> None:
            # The second pass over a model counts from 0 again: only new ground moves the bar.
            step = rows_done - done.get(table, 0)
            if step > 0:
                done[table] = rows_done
                bar.update(step)

        yield update
