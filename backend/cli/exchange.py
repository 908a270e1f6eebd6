"""`manage.py export` and `manage.py import`: one model's rows to and from CSV, XLSX or JSON files.

Both go through the exchange services the admin uses (backend/services/exchange),
as the system actor: an export is the model's live rows as the admin would
write them, an import passes every row through the model's service and is
audited under one import id. Progress goes to stderr, only on a terminal.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path

import click

from backend.cli.context import current_settings, in_unit_of_work, run
from backend.cli.files import destination, print_row_errors, progress_bar
from backend.cli.fixtures import dumpdata, loaddata
from backend.cli.output import say
from backend.db.uow import UnitOfWork
from backend.errors import AppError
from backend.services.exchange.exporting import export_file
from backend.services.exchange.importing import (
    ImportReport,
    confirm_import,
    file_hash,
    preview_import,
)
from backend.services.exchange.reading import FORMATS, BadFile, ImportLimits, read_table
from backend.services.exchange.selection import count_matching, filter_criteria, model_named, records

TICK_ROWS = 1000  # rows between two moves of the progress bar


@click.command()
@click.argument("model_name", metavar="MODEL")
@click.option(
    "--format",
    "format_",
    type=click.Choice(FORMATS),
    help="File format (default: the output file's extension, else csv).",
)
@click.option(
    "--filter",
    "filters",
    multiple=True,
    metavar="FIELD=VALUE",
    help="Only rows whose FIELD (name or header) is VALUE; a related record by its key or id. Repeatable.",
)
@click.option(
    "-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="Write to FILE, not stdout."
)
def export(model_name: str, format_: str | None, filters: tuple[str, ...], output: Path | None) -> None:
    """Write MODEL's live rows (e.g. product) as CSV, XLSX or JSON, as the admin's export does."""
    format_ = format_ or _format_of(output)
    if output is None and format_ == "xlsx" and sys.stdout.isatty():
        raise click.UsageError("An XLSX file is not text: write it with -o FILE, or redirect the output.")
    pairs = [_filter_pair(text) for text in filters]
    model = model_named(model_name)
    show_progress = sys.stderr.isatty()

    async def work(uow: UnitOfWork) -> int:
        criteria = filter_criteria(model, uow.actor, pairs)
        total = await count_matching(uow, model, criteria) if show_progress else 0
        written = _Written()
        chunks = await export_file(uow, model, format_, criteria=criteria, rows_done=written.told)
        with destination(output) as sink, progress_bar(total, "Exporting", show_progress) as tick:
            written.tick = tick
            async for chunk in chunks:
                sink.write(chunk)
        return written.count

    started_at = time.perf_counter()
    count = run(in_unit_of_work(work, writes=False))
    elapsed = time.perf_counter() - started_at
    where = str(output) if output is not None else "standard output"
    click.echo(
        f"Exported {records(model, count)} to {where} in {elapsed:.1f} s "
        f"({count / max(elapsed, 1e-6):,.0f} rows/s)",
        err=True,
    )


@click.command("import")
@click.argument("model_name", metavar="MODEL")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--dry-run", is_flag=True, help="Check every row and report; write nothing.")
@click.option(
    "--key", metavar="FIELD", help="Match rows to records by FIELD: id, or the natural key (e.g. sku)."
)
@click.option("--skip-errors", is_flag=True, help="Import the good rows even when others have errors.")
def import_(model_name: str, file: Path, dry_run: bool, key: str | None, skip_errors: bool) -> None:
    """Import FILE (CSV, XLSX or JSON) into MODEL through its service: all rows or none (audited)."""
    model = model_named(model_name)
    limits = ImportLimits.from_settings(current_settings())
    data = _read_limited(file, limits.max_bytes)
    table = read_table(data, filename=file.name, limits=limits)
    digest = file_hash(data)
    show_progress = sys.stderr.isatty()

    async def work(uow: UnitOfWork) -> ImportReport:
        with progress_bar(len(table.rows), "Checking" if dry_run else "Importing", show_progress) as tick:
            done = 0

            def progress(rows_done: int, _total: int) -> None:
                nonlocal done
                tick(rows_done - done)
                done = rows_done

            if dry_run:
                return await preview_import(
                    uow, model, table, key=key, file_name=file.name, file_hash=digest, progress=progress
                )
            return await confirm_import(
                uow,
                model,
                table,
                key=key,
                skip_errors=skip_errors,
                file_name=file.name,
                file_hash=digest,
                progress=progress,
            )

    report = run(in_unit_of_work(work))
    print_import_report(report, dry_run=dry_run)
    errors = len(report.error_rows)
    if errors and not (skip_errors or report.written):
        rows = f"{errors:,} row{'s' if errors != 1 else ''}"
        advice = "fix them, or pass --skip-errors to import the others"
        if dry_run:
            raise AppError(f"The import would write nothing: {rows} with errors; {advice}.")
        raise AppError(f"Nothing was imported: {rows} with errors; {advice}.")


def print_import_report(report: ImportReport, *, dry_run: bool) -> None:
    totals = report.totals
    say(
        f"{report.file_name}: {totals['new']:,} new, {totals['changed']:,} changed, "
        f"{totals['unchanged']:,} unchanged, {totals['error']:,} with errors "
        f"(rows matched by {report.match_by})."
    )
    for note in report.notes:
        say(note)
    if report.unknown_headers:
        say(f"Unknown columns, not imported: {', '.join(report.unknown_headers)}")
    if report.ignored_headers:
        say(f"Columns ignored (never imported): {', '.join(report.ignored_headers)}")
    print_row_errors(report.error_rows)
    if dry_run:
        say("Dry run: nothing was written.")
    elif report.written:
        say(f"Import id: {report.import_id}")


class _Written:
    """How many rows are written so far, told to the progress bar as it grows."""

    def __init__(self) -> None:
        self.count = 0
        self.tick: Callable[[int], None] = lambda _rows: None

    def told(self, done: int) -> None:
        self.tick(done - self.count)
        self.count = done


def _format_of(output: Path | None) -> str:
    extension = output.suffix.lower().removeprefix(".") if output is not None else ""
    return extension if extension in FORMATS else "csv"


def _filter_pair(text: str) -> tuple[str, str]:
    field, equals, value = text.partition("=")
    if not equals or not field.strip():
        raise click.BadParameter(f"{text!r} is not FIELD=VALUE.", param_hint="--filter")
    return field.strip(), value


def _read_limited(path: Path, max_bytes: int) -> bytes:
    """The file's bytes, refused before reading when it is larger than an import takes."""
    size = path.stat().st_size
    if size > max_bytes:
        raise BadFile(f"{path.name} is {size:,} bytes; the limit is {max_bytes:,} bytes (IMPORT_MAX_BYTES).")
    return path.read_bytes()


# The fixture commands are registered with these: one group of data commands.
COMMANDS = (export, import_, dumpdata, loaddata)
