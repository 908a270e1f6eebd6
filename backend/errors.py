"""The project's own errors. Messages are sentences for the person at the screen."""

from __future__ import annotations


class AppError(Exception):
    """Base class for errors that are safe to show to users as they are."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ConfigurationError(AppError):
    """The settings are missing or inconsistent; the message names the variable."""


class DatabaseUnavailable(AppError):
    """The database could not be reached, or answered too slowly."""


class NotFound(AppError):
    """The requested record does not exist (or is hidden from the caller)."""


class PermissionDenied(AppError):
    """The actor may not do this."""


class Conflict(AppError):
    """The change clashes with existing data (a duplicate, a stale version).

    `field` names the input field the clash is about, when there is one.
    """

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class ValidationFailed(AppError):
    """Input was rejected; `errors` maps each field to its problems."""

    def __init__(self, errors: dict[str, list[str]], message: str | None = None) -> None:
        super().__init__(message or "Some values are not valid.")
        self.errors = errors


class MigrationError(AppError):
    """A migration command failed (unknown revision, failing revision...)."""
