"""The job kinds: an export into the job's file, an import of the job's upload, and its preview.

An export reads as its owner (masked as they see the rows) in a read-only
unit of work and writes its file under a temporary name, renamed when
complete. The personal-data fields it wrote unmasked are kept in the job's
params (`shown_pii`), so a download can be refused once the owner may no
longer see them (JobService.result_file). An import reads the stored upload and writes it through
`confirm_import` in ONE unit of work as its owner, marks the job done in
that same transaction, and commits: a worker killed mid-way leaves nothing
written, and a job is never "done" without its rows (nor the reverse).
A preview runs `preview_import` as its owner, writes nothing, and keeps
the report and the upload: "Import these rows" on its page starts the
import of that same file (JobService.import_previewed).
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Awaitable
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import update

from backend.auth.actor import Actor
from backend.db.uow import unit_of_work
from backend.jobs import files
from backend.jobs.context import JobRefused, JobRun
from backend.jobs.export_query import ExportQuery
from backend.models.jobs import Job, JobStatus
from backend.services import masking
from backend.services.exchange.exporting import export_file
from backend.services.exchange.fields import exchange_fields, natural_key
from backend.services.exchange.importing import (
    ImportReport,
    RowOutcome,
    confirm_import,
    file_hash,
    preview_import,
)
from backend.services.exchange.reading import ImportLimits, Table, read_table
from backend.services.exchange.writing import MEDIA_TYPES, export_filename
from backend.services.registry import service_for

REPORTED_ROWS = 1_000  # row outcomes kept in the job's report; the totals count them all
# A preview keeps the rows that need a look first, as the in-request preview page shows them.
PREVIEW_ORDER = {"error": 0, "changed": 1, "new": 2, "unchanged": 3}
PROGRESS_ROWS = 500  # rows exported between progress reports


SHOWN_PII = "shown_pii"  # an export's params: the personal-data fields its file holds unmasked


def shown_pii(model: type[Any], actor: Actor) -> list[str]:
    """The personal-data fields of `model` an export by `actor` writes unmasked (masking decides)."""
    table = masking.table_of(model)
    return sorted(name for name in masking.pii_fields(model) if masking.can_see(actor, table, name))


async def run_export(run: JobRun, job: Job) -> None:
    model = service_for(job.model).model
    query = ExportQuery.from_params(job.params)
    await _record_shown_pii(run, job, shown_pii(model, run.owner))
    async with unit_of_work(run.database, run.owner, writes=False) as uow:
        criteria = query.criteria(model, run.owner)
        total = await uow.repo(model).count(where=criteria)
        await run.progress(0, total)

        def rows_done(done: int) -> Awaitable[None]:
            return run.progress(done, max(total, done))

        chunks = await export_file(
            uow,
            model,
            job.format,
            criteria=criteria,
            order_by=query.ordering(model, run.owner),
            rows_done=rows_done,
            batch=PROGRESS_ROWS,
        )
        await files.write_result(run.settings, job, chunks)
    await run.finish(result_name=export_filename(model, job.format), media_type=MEDIA_TYPES[job.format])


async def _record_shown_pii(run: JobRun, job: Job, fields: list[str]) -> None:
    # Recorded as the owner is now, for this attempt: the file is written with these same permissions.
    params = {**job.params, SHOWN_PII: fields}
    async with unit_of_work(run.database, run.owner, audit=False) as uow:
        statement = update(Job).where(Job.id == job.id, Job.status == JobStatus.RUNNING).values(params=params)
        await uow.session.execute(statement)
        await uow.commit()
    job.params = params


async def _read_upload(run: JobRun, job: Job) -> tuple[bytes, str, Table]:
    """The job's stored upload: its bytes, the name it is shown by, and its rows."""
    data = await files.read_upload(run.settings, job)
    file_name = str(job.params.get("file_name") or f"upload.{job.format}")
    # In a thread: a large workbook takes openpyxl seconds, which must not stop the worker's heartbeat.
    table = await asyncio.to_thread(
        read_table,
        data,
        filename=file_name,
        limits=ImportLimits.from_settings(run.settings),
        format=job.format,
    )
    await run.progress(0, len(table.rows))
    return data, file_name, table


async def run_preview(run: JobRun, job: Job) -> None:
    """What importing the job's upload would do, as its owner; nothing is written, the upload is kept."""
    model = service_for(job.model).model
    data, file_name, table = await _read_upload(run, job)
    # No commit: preview_import rolls its rows back itself, and leaving the block rolls back the rest.
    async with unit_of_work(run.database, run.owner) as uow:
        report = await preview_import(
            uow,
            model,
            table,
            key=job.params.get("key") or None,
            file_name=file_name,
            file_hash=file_hash(data),
            progress=run.progress,
        )
    await run.finish(report=report_summary(report, order=PREVIEW_ORDER))


async def run_import(run: JobRun, job: Job) -> None:
    model = service_for(job.model).model
    params = job.params
    data, file_name, table = await _read_upload(run, job)
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


def report_summary(report: ImportReport, *, order: dict[str, int] | None = None) -> dict[str, Any]:
    """The import's report as the job keeps it (JSON): totals, and the first row outcomes
    (in file order, or by `order` of their status first)."""
    rows = report.rows
    if order is not None:
        rows = sorted(rows, key=lambda row: (order[row.status], row.number))
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
        "rows": [_row(outcome) for outcome in rows[:REPORTED_ROWS]],
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


# What an import job's report and reason show -----------------------------------------------------------
#
# The report keeps the values as the import read and wrote them, and is masked here each time it is
# shown, for whoever looks then. Masking it once when stored would use the owner's permissions at the
# time of the import, under which every value in it was visible (fields the owner could not see are
# not imported at all), so it would mask nothing; what matters is what the viewer may see today, after
# a role lost `view_pii`. Row errors name fields, not the values of personal data (a reference is
# named by a key that is never personal data: fields.reference_key), so they are shown as they are.

KEY_HIDDEN = (
    "The import was refused for a reason that names personal data you may no longer see; "
    "import the file again to see why."
)


def shown_report(actor: Actor, report: dict[str, Any]) -> dict[str, Any]:
    """An import's or a preview's report as `actor` may see it: values of fields hidden from them masked."""
    table = str(report.get("model") or "")
    model = masking.model_for(table)
    if model is None or not masking.hidden_fields(actor, table):
        return report
    by_label = {item.label: item.name for item in exchange_fields(model)}
    match_by = str(report.get("match_by") or "")
    rows = []
    for row in report.get("rows") or []:
        key = row.get("key")
        changes = row.get("changes") or {}
        rows.append(
            {
                **row,
                "key": masking.shown(actor, table, match_by, key) if key else key,
                "changes": {
                    label: [masking.shown(actor, table, by_label.get(label, label), v) for v in values]
                    for label, values in changes.items()
                },
            }
        )
    return {**report, "rows": rows}


def shown_error(actor: Actor, job: Job) -> str | None:
    """Why the job failed, as `actor` may read it.

    A file refused as a whole (two rows with one key) says which keys, and
    keeps no report to mask: when the field rows are matched by is one the
    actor may not see now, the reason is not shown.
    """
    if job.error is None or not job.kind.reads_upload or job.report is not None:
        return job.error
    model = masking.model_for(job.model)
    if model is None:
        return job.error
    keys = {str(job.params.get("key") or ""), natural_key(model)} - {""}
    if any(not masking.can_see(actor, job.model, key) for key in keys):
        return KEY_HIDDEN
    return job.error
