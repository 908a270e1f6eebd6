"""Import a file into any model's list from the admin: upload, preview, confirm.

SQLAdmin's own CSV import (`can_import`) writes rows as they come, without a
preview and around the services' batch path; it stays off. Here every model
view gets, for holders of `<table>.import`:

- GET  /admin/<identity>/import/upload: the form, the limits, the headers the model takes;
- POST /admin/<identity>/import/upload: the file is read (backend/services/exchange/reading.py)
  and previewed (importing.preview_import, which writes nothing), and kept for the confirm
  (admin/import_uploads.py); on PostgreSQL, a file of more rows than JOB_THRESHOLD_ROWS is
  previewed by a job instead (a preview runs at a few thousand rows/s: a request would time
  out), whose page shows the report and imports the same file (admin/views/jobs.py);
- POST /admin/<identity>/import/confirm: the kept file is claimed, read again and imported
  (importing.confirm_import) in the request's unit of work, which commits.

Only the upload route takes a file part: admin/input_guard.py refuses one
anywhere else, and caps the body it reads here (`upload_body_limit`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import PureWindowsPath
from typing import Any

from sqladmin import ModelView, expose
from sqlalchemy import Enum as SAEnum
from sqlalchemy import inspect as sa_inspect
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import URL, FormData, UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from admin import outcomes
from admin.auth import current_actor
from admin.columns import columns_of
from admin.controls import database_of
from admin.formatting import number
from admin.i18n import gettext, model_name, noun, translated, translated_plural
from admin.import_uploads import ClaimedUpload, UploadGone, UploadInfo, UploadStore
from admin.job_submit import submit_job
from admin.requests import request_uow
from backend.config import Settings
from backend.db.uow import UnitOfWork
from backend.errors import Conflict, PermissionDenied, ValidationFailed
from backend.jobs.service import runs_as_job
from backend.labels import readable_label
from backend.services import masking
from backend.services.exchange.fields import ExchangeField, exchange_fields, natural_key
from backend.services.exchange.importing import (
    FILE_CHANGED,
    ImportReport,
    confirm_import,
    file_hash,
    preview_import,
)
from backend.services.exchange.reading import BadFile, ImportLimits, Table, read_table

UPLOAD_PATH = "/import/upload"  # under /admin/<identity>
CONFIRM_PATH = "/import/confirm"
_UPLOAD_ROUTE = re.compile(r"/admin/[a-z0-9][a-z0-9-]*/import/upload")
FILE_FIELD = "file"
ACCEPTED_TYPES = ".csv,.xlsx,.json"
# Room in a multipart body for the boundaries, the part headers and the form's other fields.
MULTIPART_ALLOWANCE = 64 * 1024
MAX_SHOWN_ROWS = 500
SHOWN_ORDER = {"error": 0, "changed": 1, "new": 2, "unchanged": 3}
MAX_FILE_NAME = 200  # an audit entry's object_repr


def takes_file(path: str) -> bool:
    """Whether `path` is an import upload route, the one place a form may carry a file."""
    return _UPLOAD_ROUTE.fullmatch(path) is not None


def upload_body_limit(settings: Settings) -> int:
    """The largest request body an upload route reads: the largest file, and the form around it."""
    return settings.import_max_bytes + MULTIPART_ALLOWANCE


def too_big(settings: Settings) -> str:
    return translated(
        "The file is larger than the import limit of %(limit)s (IMPORT_MAX_BYTES). "
        "Split it into smaller files and import each one.",
        limit=size_text(settings.import_max_bytes),
    )


def size_text(size: int) -> str:
    """A byte count as people write it: "50 MB", "1.5 MB", "800 KB"."""
    for unit, scale in (("GB", 2**30), ("MB", 2**20), ("KB", 2**10)):
        if size >= scale:
            value = size / scale
            return f"{value:.0f} {unit}" if value >= 10 or value == int(value) else f"{value:.1f} {unit}"
    return f"{size} bytes"


@dataclass(frozen=True)
class ColumnHelp:
    """One header a file of this model may have, and what its cells hold."""

    label: str  # as the admin names the column, in the reader's language
    header: str  # what the file's first row may say (so may the English label, as an export writes it)
    hint: str


class FileImport(ModelView):
    """The import routes and the list's Import button of a model view."""

    # Pages ----------------------------------------------------------------------

    def can_import_file(self, request: Request) -> bool:
        return self.has_permission(request, "import")

    def import_url(self, request: Request) -> URL:
        return URL(str(request.url_for(f"admin:view-{self.identity}-import_upload")))

    @expose(UPLOAD_PATH, methods=["GET", "POST"])
    async def import_upload(self, request: Request) -> Response:
        """The upload form; posted, the preview of the file (nothing is written)."""
        self._require_import(request)
        uow = await request_uow(request)
        if request.method in ("GET", "HEAD"):
            return await self._upload_page(request, uow.settings)
        form = await request.form()  # its CSRF token was checked with the session (admin/auth.py)
        key = _text(form, "key")
        upload = form.get(FILE_FIELD)
        if not isinstance(upload, UploadFile) or not upload.filename:
            error = gettext("Choose a file to import.")
            return await self._upload_page(request, uow.settings, error=error, key=key)
        if key not in {name for name, _label in self._match_choices()}:
            return await self._upload_page(request, uow.settings, error=gettext("Choose how to match rows."))
        data = await upload.read(uow.settings.import_max_bytes + 1)
        if len(data) > uow.settings.import_max_bytes:
            return await self._upload_page(
                request, uow.settings, error=too_big(uow.settings), key=key, status=413
            )
        name = shown_file_name(upload.filename)
        digest = file_hash(data)
        try:
            table = await self._read(uow.settings, data, name)
            if runs_as_job(database_of(request), len(table.rows)):
                return await self._submit_preview(
                    request, data, table, file_name=name, digest=digest, key=key
                )
            report = await preview_import(uow, self.model, table, key=key, file_name=name, file_hash=digest)
        except (BadFile, ValidationFailed, PermissionDenied) as exc:
            return await self._upload_page(request, uow.settings, error=gettext(exc.message), key=key)
        stored = await run_in_threadpool(
            _store(uow.settings).store,
            data,
            user_id=_user_id(request),
            table=self._table,
            file_name=name,
            file_hash=digest,
            key=key,
        )
        return await self._preview_page(request, report, stored)

    @expose(CONFIRM_PATH, methods=["POST"])
    async def import_confirm(self, request: Request) -> Response:
        """Import the file a preview showed, all or nothing unless "Skip the rows with errors" is ticked."""
        self._require_import(request)
        form = await request.form()  # its CSRF token was checked with the session (admin/auth.py)
        uow = await request_uow(request)
        try:
            claimed = await run_in_threadpool(
                _store(uow.settings).claim, _text(form, "token"), user_id=_user_id(request), table=self._table
            )
        except UploadGone as exc:
            raise HTTPException(status_code=404, detail=gettext(exc.message)) from exc
        try:
            return await self._import_now_or_as_job(
                request,
                uow,
                claimed,
                expected_hash=_text(form, "file_hash"),
                skip_errors=_text(form, "skip_errors") == "yes",
            )
        except Exception:
            claimed.put_back()  # whatever failed, the user may confirm again
            raise

    # The confirm ------------------------------------------------------------------

    async def _import_now_or_as_job(
        self,
        request: Request,
        uow: UnitOfWork,
        claimed: ClaimedUpload,
        *,
        expected_hash: str,
        skip_errors: bool,
    ) -> Response:
        """Import a claimed upload: the one place a confirm chooses between the request and a job.

        On PostgreSQL, a file of more rows than `settings.job_threshold_rows` runs
        as a job (backend/jobs), answered with the job's page; anything smaller,
        and everything on SQLite, imports in the request. Such a file is previewed
        by a job already (its page imports it); this branch serves an upload
        previewed here while the threshold was higher.
        """
        info = claimed.info
        try:
            table = await self._read(uow.settings, claimed.data, info.file_name)
            database = database_of(request)
            if runs_as_job(database, len(table.rows)):
                return await self._submit_job(
                    request, claimed, table.format, expected_hash=expected_hash, skip_errors=skip_errors
                )
            report = await confirm_import(
                uow,
                self.model,
                table,
                key=info.key,
                skip_errors=skip_errors,
                file_name=info.file_name,
                file_hash=file_hash(claimed.data),
                expected_hash=expected_hash,
            )
        except (Conflict, BadFile, ValidationFailed, PermissionDenied) as exc:
            # The file itself is refused (or was not the one previewed): only a new upload can help.
            claimed.discard()
            status = 409 if isinstance(exc, Conflict) else 400
            return await self._upload_page(
                request, uow.settings, error=gettext(exc.message), key=info.key, status=status
            )
        if not report.written:
            claimed.put_back()
            errors = report.totals["error"]
            message = translated_plural(
                "Nothing was imported: %(count)s row has errors. Fix the file and upload it again, "
                "or tick “Skip the rows with errors”.",
                "Nothing was imported: %(count)s rows have errors. Fix the file and upload it again, "
                "or tick “Skip the rows with errors”.",
                errors,
            )
            return await self._preview_page(request, report, info, error=message, status=400)
        await uow.commit()
        claimed.discard()
        self._announce(request, report)
        return RedirectResponse(request.url_for("admin:list", identity=self.identity), status_code=303)

    async def _submit_job(
        self, request: Request, claimed: ClaimedUpload, format: str, *, expected_hash: str, skip_errors: bool
    ) -> Response:
        """Queue the import for `manage.py worker` and show its page, where progress and the report appear."""
        info = claimed.info
        if expected_hash != file_hash(claimed.data):
            raise Conflict(FILE_CHANGED)
        answer = await submit_job(
            request,
            kind="import",
            table=masking.table_of(self.model),
            format=format,
            params={
                "file_name": info.file_name,
                "key": info.key,
                "skip_errors": skip_errors,
                "hash": expected_hash,
            },
            data=claimed.data,
            message=translated(
                "%(file)s is being imported as a job; this page shows its progress and then its report.",
                file=info.file_name,
            ),
        )
        claimed.discard()
        return answer

    async def _submit_preview(
        self, request: Request, data: bytes, table: Table, *, file_name: str, digest: str, key: str
    ) -> Response:
        """Queue the preview of a large file as a job and show its page, where the report then appears
        with "Import these rows" (which imports this same stored file)."""
        rows = len(table.rows)
        return await submit_job(
            request,
            kind="preview",
            table=self._table,
            format=table.format,
            params={"file_name": file_name, "key": key, "hash": digest},
            data=data,
            message=translated(
                "%(file)s has %(count)s rows, so it is previewed by a job; this page shows its "
                "progress, then what an import would do. Nothing is written until you import the rows.",
                file=file_name,
                count=number(rows),
            ),
        )

    def _announce(self, request: Request, report: ImportReport) -> None:
        totals = report.totals
        import_id = report.import_id or ""
        message = translated(
            "Imported %(file)s: %(new)s new, %(changed)s changed, %(unchanged)s unchanged (import %(id)s…).",
            file=report.file_name,
            new=totals["new"],
            changed=totals["changed"],
            unchanged=totals["unchanged"],
            id=import_id[:8],
        )
        if totals["error"]:
            skipped = totals["error"]
            message += " " + translated_plural(
                "%(count)s row with errors skipped.", "%(count)s rows with errors skipped.", skipped
            )
        if current_actor(request).has_perm("audit.view"):
            audit = request.url_for("admin:view-audit-log").include_query_params(import_id=import_id)
            outcomes.succeeded_with_link(request, message, gettext("See it in the audit log"), str(audit))
        else:
            outcomes.succeeded(request, message)

    # Rendering -----------------------------------------------------------------------

    async def _upload_page(
        self,
        request: Request,
        settings: Settings,
        *,
        error: str | None = None,
        key: str | None = None,
        status: int = 400,
    ) -> Response:
        choices = self._match_choices()
        chosen = key if key in {name for name, _label in choices} else choices[0][0]
        context = {
            "model_view": self,
            "error": error,
            "accept": ACCEPTED_TYPES,
            "file_field": FILE_FIELD,
            "max_size": size_text(settings.import_max_bytes),
            "max_rows": number(settings.import_max_rows),
            "columns": self._column_help(request),
            "choices": choices,
            "chosen": chosen,
        }
        return await self.templates.TemplateResponse(
            request, "custodian/import_upload.html", context, status_code=200 if error is None else status
        )

    async def _preview_page(
        self,
        request: Request,
        report: ImportReport,
        stored: UploadInfo,
        *,
        error: str | None = None,
        status: int = 200,
    ) -> Response:
        ordered = sorted(report.rows, key=lambda row: (SHOWN_ORDER[row.status], row.number))
        context = {
            "model_view": self,
            "report": report,
            "notes": [gettext(note) for note in report.notes],
            "totals": report.totals,
            "rows": ordered[:MAX_SHOWN_ROWS],
            "more": max(0, len(ordered) - MAX_SHOWN_ROWS),
            "match_label": self._label(report.match_by),
            "token": stored.token,
            "file_hash": report.file_hash,
            "error": error,
        }
        return await self.templates.TemplateResponse(
            request, "custodian/import_preview.html", context, status_code=status
        )

    # Helpers ---------------------------------------------------------------------------

    @property
    def _table(self) -> str:
        return masking.table_of(self.model)

    def _require_import(self, request: Request) -> None:
        if not self.can_import_file(request):
            detail = translated(
                "You need the permission %(codename)s to import %(things)s.",
                codename=f"{self._table}.import",
                things=noun(self.name_plural),
            )
            raise HTTPException(status_code=403, detail=detail)

    def _match_choices(self) -> list[tuple[str, str]]:
        """(field, label) of what rows may be matched by: the natural key first, when there is one."""
        natural = natural_key(self.model)
        by_id = ("id", self._label("id"))
        return [(natural, self._label(natural)), by_id] if natural != "id" else [by_id]

    def _label(self, name: str) -> str:
        """A field's label in the reader's language: the view's own for its column, as its list shows it."""
        item = next((item for item in exchange_fields(self.model) if item.name == name), None)
        return gettext(name) if item is None else self._field_label(item)

    def _field_label(self, item: ExchangeField) -> str:
        columns = columns_of(self)
        column = item.relationship or item.name
        return columns.label(column) if column in columns.labels else gettext(item.label)

    def _column_help(self, request: Request) -> list[ColumnHelp]:
        actor = current_actor(request)
        return [
            ColumnHelp(self._field_label(item), item.relationship or item.name, _hint(self.model, item))
            for item in exchange_fields(self.model)
            if masking.can_see(actor, self._table, item.name)
        ]

    async def _read(self, settings: Settings, data: bytes, file_name: str) -> Table:
        """The file's rows (`BadFile` when it cannot be read), parsed off the event loop."""
        limits = ImportLimits.from_settings(settings)
        table: Table = await run_in_threadpool(read_table, data, filename=file_name, limits=limits)
        return table


def shown_file_name(name: str) -> str:
    """The user's file name as it is shown and audited: no folders, no control characters, not too long."""
    base = PureWindowsPath(name).name  # browsers may send "C:\\fakepath\\x.csv"; this takes "/" as well
    printable = "".join(character for character in base if character.isprintable()).strip()
    if len(printable) > MAX_FILE_NAME:
        suffix = PureWindowsPath(printable).suffix[:10]
        printable = printable[: MAX_FILE_NAME - len(suffix) - 1] + "…" + suffix
    return printable or "upload"


def _hint(model: type[Any], item: ExchangeField) -> str:
    """What a column's cells hold, in the reader's language (the values a file holds stay as stored)."""
    if item.kind == "id":
        return gettext("A record's ID, when rows are matched by ID; empty for a new record.")
    if item.target is None:
        column = sa_inspect(model).columns.get(item.name)
        kind = getattr(column, "type", None)
        if isinstance(kind, SAEnum) and kind.enum_class is not None:
            return translated("One of: %(values)s.", values=", ".join(str(m.value) for m in kind.enum_class))
        return ""
    target = model_name(str(item.target.__tablename__), in_sentence=True)
    key = "ID" if item.target_key == "id" else noun(gettext(readable_label(item.target_key)))
    if item.kind == "references":
        return translated("Each %(target)s's %(key)s, separated by commas.", target=target, key=key)
    return translated("The %(target)s's %(key)s.", target=target, key=key)


def _store(settings: Settings) -> UploadStore:
    return UploadStore(settings.job_files_dir / "uploads")


def _user_id(request: Request) -> int:
    user_id = current_actor(request).user_id
    if user_id is None:  # the routes require a signed-in user; this keeps an upload bound to one
        raise HTTPException(status_code=403)
    return user_id


def _text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value if isinstance(value, str) else ""
