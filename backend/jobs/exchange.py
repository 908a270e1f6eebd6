"""The two job kinds: an export into the job's file, and an import of the job's upload.

An export reads as its owner (masked as they see the rows) in a read-only
unit of work and writes its file under a temporary name, renamed when
complete. An import reads the stored upload and writes it through
`confirm_import` in ONE unit of work as its owner, marks the job done in
that same transaction, and commits: a worker killed mid-way leaves nothing
written, and a job is never "done" without its rows (nor the reverse).
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import AsyncIterator
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from backend.db.uow import unit_of_work
from backend.jobs import files
from backend.jobs.context import JobRefused, JobRun
from backend.jobs.export_query import ExportQuery
from backend.models.jobs import Job
from backend.services.exchange.exporting import export_headers, export_rows
from backend.services.exchange.importing import ImportReport, RowOutcome, confirm_import, file_hash
from backend.services.exchange.reading import ImportLimits, read_table
from backend.services.exchange.reading_rows import Cell
from backend.services.exchange.writing import MEDIA_TYPES, encode, export_filename
from backend.services.registry import service_for

REPORTED_ROWS = 1_000  # row outcomes kept in the job's report; the totals count them all
PROGRESS_ROWS = 500  # rows exported between progress reports


async def run_export(run: JobRun, job: Job) -> None:
    model = service_for(job.model).model
    query = ExportQuery.from_params(job.params)
    async with unit_of_work(run.database, run.owner, writes=False) as uow:
        headers = export_headers(model, run.owner)
        criteria = query.criteria(model, run.owner)
        total = await uow.repo(model).count(where=criteria)
        await run.progress(0, total)
        rows = export_rows(uow, model, criteria=criteria, order_by=query.ordering(model, run.owner))
        await files.write_result(run.settings, job, encode(job.format, headers, _counted(rows, run, total)))
    await run.finish(result_name=export_filename(model, job.format), media_type=MEDIA_TYPES[job.format])


async def _counted(rows: AsyncIterator[list[Cell]], run: JobRun, total: int) -> AsyncIterator[list[Cell]]:
    done = 0
    async for row in rows:
        yield row
        done += 1
        if done % PROGRESS_ROWS == 0:
            await run.progress(done, max(total, done))
    await run.progress(done, max(total, done))


async def run_import(run: JobRun, job: Job) -> None:
    model = service_for(job.model).model
    params = job.params
    data = await files.read_upload(run.settings, job)
    file_name = str(params.get("file_name") or f"upload.{job.format}")
    # In a thread: a large workbook takes openpyxl seconds, which must not stop the worker's heartbeat.
    table = await asyncio.to_thread(
        read_table,
        data,
        filename=file_name,
        limits=ImportLimits.from_settings(run.settings),
        format=job.format,
    )
    await run.progress(0, len(table.rows))
    async with unit_of_work(run.database, run.owner) as uow:
        report = await confirm_import(
            uow,
            model,
            table,
            file_name=file_name,
            file_hash=file_hash(data),
            key=params.get("key") or None,
            skip_errors=bool(params.get("skip_errors")),
            expected_hash=params.get("hash") or None,
            progress=run.progress,
        )
        summary = report_summary(report)
        if not report.written:
            errors = report.totals["error"]
            rows = "row has an error" if errors == 1 else "rows have errors"
            raise JobRefused(f"{errors} {rows}: nothing was imported.", report=summary)
        await run.finish(uow, report=summary)
        await uow.commit()
    files.remove_upload(run.settings, job)


def report_summary(report: ImportReport) -> dict[str, Any]:
    """The import's report as the job keeps it (JSON): totals, and the first row outcomes."""
    return {
        "model": report.model,
        "file_name": report.file_name,
        "file_hash": report.file_hash,
        "match_by": report.match_by,
        "import_id": report.import_id,
        "written": report.written,
        "totals": report.totals,
        "unknown_headers": list(report.unknown_headers),
        "ignored_headers": list(report.ignored_headers),
        "notes": list(report.notes),
        "rows": [_row(outcome) for outcome in report.rows[:REPORTED_ROWS]],
        "rows_not_listed": max(0, len(report.rows) - REPORTED_ROWS),
    }


def _row(outcome: RowOutcome) -> dict[str, Any]:
    return {
        "number": outcome.number,
        "status": outcome.status,
        "key": outcome.key,
        "record_id": outcome.record_id,
        "changes": {
            name: [_plain(before), _plain(after)] for name, (before, after) in outcome.changes.items()
        },
        "errors": {name: [str(message) for message in messages] for name, messages in outcome.errors.items()},
    }


def _plain(value: Any) -> Any:
    """A value as JSON holds it: text for anything but None, booleans and numbers."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, enum.Enum):
        return _plain(value.value)
    if isinstance(value, Decimal | datetime | date):
        return str(value)
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    return str(value)
