"""Job files expire: an upload or a result is deleted once its job has been finished for
`JOB_FILES_KEEP_DAYS` days (`manage.py jobs cleanup`, and each worker at most once an hour).

Uploads may hold personal data and results are whole tables: they are kept
long enough to download a result or retry a failed import, not forever. The
job row stays (its report, its history); its page then says the file is no
longer kept. Only the folder's job files are looked at (`<id>-<token>.upload`,
`.result`, the `.partial` a stopped write may leave, and the `.claimed` upload
of a preview whose import was cut short): a file of a job still queued or
running is never touched, and a file no job row owns (its transaction rolled
back, the token replaced) goes once it is as old as that.
The admin's preview uploads live in a folder of their own, left alone here.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from stat import S_ISREG

from sqlalchemy import select

from backend.auth.actor import Actor
from backend.db.session import Database
from backend.db.uow import unit_of_work
from backend.models.jobs import Job

logger = logging.getLogger(__name__)

_JOB_FILE = re.compile(r"(?P<id>[0-9]{1,18})-(?P<token>[0-9a-f]{32})\.(?:upload|result|partial|claimed)")
LOOKUP_CHUNK = 1000  # job ids per IN (...) query
# The jobs' bookkeeper (`runner.BOOKKEEPER`), named here so the CLI does not load the job kinds.
_READER = Actor.system("jobs")


@dataclass(frozen=True)
class Cleaned:
    files: int = 0
    bytes: int = 0

    def __str__(self) -> str:
        noun = "file" if self.files == 1 else "files"
        return f"{self.files} {noun}, {_size(self.bytes)}"


@dataclass(frozen=True)
class _Found:
    path: Path
    job_id: int
    token: str
    size: int
    modified: datetime


async def remove_expired_files(database: Database, *, now: datetime | None = None) -> Cleaned:
    """Delete the files of jobs finished more than `JOB_FILES_KEEP_DAYS` ago; how many files and bytes.

    Reads the job rows only (as the system's job bookkeeper), writes none. A
    file removed meanwhile by someone else is simply not counted.
    """
    settings = database.settings
    cutoff = (now or datetime.now(UTC)) - timedelta(days=settings.job_files_keep_days)
    found = await asyncio.to_thread(_job_files, Path(settings.job_files_dir))
    if not found:
        return Cleaned()
    expired = await _expired(database, found, cutoff)
    cleaned = await asyncio.to_thread(_remove, expired)
    if cleaned.files:
        days = settings.job_files_keep_days
        logger.info("Removed %s of jobs finished more than %s days ago.", cleaned, days)
    return cleaned


async def _expired(database: Database, found: list[_Found], cutoff: datetime) -> list[_Found]:
    ids = sorted({item.job_id for item in found})
    jobs: dict[int, tuple[str, bool, datetime | None]] = {}  # id -> (token, finished, finished_at)
    async with unit_of_work(database, _READER, writes=False) as uow:
        for start in range(0, len(ids), LOOKUP_CHUNK):
            stmt = select(Job.id, Job.file_token, Job.status, Job.finished_at).where(
                Job.id.in_(ids[start : start + LOOKUP_CHUNK])
            )
            for job_id, token, status, finished_at in await uow.session.execute(stmt):
                jobs[job_id] = (token, status.finished, finished_at)
    expired = []
    for item in found:
        job = jobs.get(item.job_id)
        if job is None or job[0] != item.token:
            ended = item.modified  # no job owns it: it is as old as its last write
        elif not job[1]:
            continue  # queued or running: its files are in use
        else:
            ended = job[2] or item.modified
        if ended < cutoff:
            expired.append(item)
    return expired


def _job_files(folder: Path) -> list[_Found]:
    found = []
    try:
        entries = list(folder.iterdir())
    except FileNotFoundError:
        return []
    for path in entries:
        match = _JOB_FILE.fullmatch(path.name)
        if match is None:
            continue
        try:
            stat = path.stat()
        except FileNotFoundError:
            continue
        if not S_ISREG(stat.st_mode):
            continue
        modified = datetime.fromtimestamp(stat.st_mtime, UTC)
        found.append(_Found(path, int(match["id"]), match["token"], stat.st_size, modified))
    return found


def _remove(items: Iterable[_Found]) -> Cleaned:
    files = size = 0
    for item in items:
        with contextlib.suppress(FileNotFoundError):
            item.path.unlink()
            files += 1
            size += item.size
    return Cleaned(files, size)


def _size(count: int) -> str:
    if count < 1024:
        return "1 byte" if count == 1 else f"{count} bytes"
    value = float(count)
    for unit in ("KB", "MB", "GB"):
        value /= 1024
        if value < 1024:
            return f"{value:,.1f} {unit}"
    return f"{value / 1024:,.1f} TB"
