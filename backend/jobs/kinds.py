"""The registered job kinds: each `async def (run, job) -> None`, looked up by the job's kind.

A kind does its work as `run.owner` and either calls `run.finish(...)`
(inside its own unit of work when "done" must commit with what it wrote) or
returns and lets the runner mark the job done. Raising fails the job.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from backend.jobs.context import JobRun
from backend.jobs.exchange import run_export, run_import, run_preview
from backend.models.jobs import Job, JobKind

KindFunction = Callable[[JobRun, Job], Awaitable[None]]

KINDS: dict[JobKind, KindFunction] = {
    JobKind.EXPORT: run_export,
    JobKind.IMPORT: run_import,
    JobKind.PREVIEW: run_preview,
}


def kind_function(kind: JobKind) -> KindFunction:
    return KINDS[kind]
