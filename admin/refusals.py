"""A write's refusal, shown on the form that was sent, with the right status.

SQLAdmin's create and edit routes catch whatever `insert_model` or
`update_model` raise and render the form again with status 400 and the
exception's text. The views record the refusal on the request instead
(`record`); the create and edit templates place its field errors next to
their fields and show its sentence (`place_refusal`, a template global), and
`CustodianAdmin` gives the page the refusal's status (`status_of`). An
exception that is not an `AppError` is logged here, and the page says only
that the change was not saved. Every sentence shown goes through `i18n.gettext`,
which translates the services' English, values and all
(admin/locale/service_messages.py).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field

from starlette.requests import Request
from wtforms import Form

from admin.errors import request_id, status_for
from admin.i18n import gettext
from admin.sqladmin_adapter import SQLADMIN_LOGGER
from backend.errors import AppError, Conflict, ValidationFailed

logger = logging.getLogger("custodian.web")

INTERNAL_MESSAGE = "The change was not saved because of an internal error."


@dataclass
class Refusal:
    """Why a write did not happen: a service's `AppError`, or None for an internal error."""

    error: AppError | None
    # A service input's field -> the form field it came from ("category_id" -> "category").
    form_fields: Mapping[str, str] = field(default_factory=dict)
    placed: bool = False

    @property
    def status_code(self) -> int:
        return 500 if self.error is None else status_for(self.error)


def record(request: Request, exc: BaseException, *, form_fields: Mapping[str, str] | None = None) -> None:
    """Remember why this request's write failed; log it first if it is not a refusal written for people."""
    if isinstance(exc, AppError):
        request.state.custodian_refusal = Refusal(exc, form_fields or {})
        return
    logger.error(
        "a write failed on %s %s [request %s]",
        request.method,
        request.url.path,
        request_id(request),
        exc_info=exc,
    )
    exc.add_note(_LOGGED)
    request.state.custodian_refusal = Refusal(None)


def recorded(request: Request) -> Refusal | None:
    refusal = getattr(request.state, "custodian_refusal", None)
    return refusal if isinstance(refusal, Refusal) else None


def place_refusal(form: Form, request: Request) -> str | None:
    """Put the recorded refusal's field errors on `form`; return the sentence to show above it.

    A template global: the create and edit pages call it before they render
    their fields. Field errors without a field on the form join the sentence.
    """
    refusal = recorded(request)
    if refusal is None:
        return None
    if refusal.error is None:
        return gettext(INTERNAL_MESSAGE)
    exc = refusal.error
    field_errors: Mapping[str, list[str]] = {}
    if isinstance(exc, ValidationFailed):
        field_errors = exc.errors
    elif isinstance(exc, Conflict) and exc.field:
        field_errors = {exc.field: [exc.message]}
    general: list[str] = []
    for name, english in field_errors.items():
        messages = [gettext(message) for message in english]
        form_field = refusal.form_fields.get(name, name)
        target = next((candidate for candidate in form if candidate.name == form_field), None)
        if target is None:
            general.extend(messages)
        elif not refusal.placed:
            target.errors = [*target.errors, *messages]
    refusal.placed = True
    return " ".join(general) or gettext(exc.message)


_LOGGED = "custodian: logged"


class HideRefusals(logging.Filter):
    """Drops SQLAdmin's log lines about failed writes that were refusals or are logged already.

    A refusal is not a server error, and its text or the traceback's locals
    may hold values a log reader must not see.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, AppError):
            return False
        return not (exc is not None and _LOGGED in getattr(exc, "__notes__", ()))


def install_log_filter() -> None:
    sqladmin_logger = logging.getLogger(SQLADMIN_LOGGER)
    if not any(isinstance(existing, HideRefusals) for existing in sqladmin_logger.filters):
        sqladmin_logger.addFilter(HideRefusals())
