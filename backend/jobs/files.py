"""A job's files: an import's upload and an export's result, under `Settings.job_files_dir`.

Names come from the job's id and its random `file_token`, never from what a
user typed, so no file name can reach outside the folder or guess another
job's file. The folder must be shared by the web app and every worker, and
must not be served by any web server. A result is written to a temporary
name and renamed when complete: a half-written export is never offered.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import BinaryIO

from backend.config import Settings
from backend.models.jobs import Job

FOLDER_MODE = 0o700  # only the account the app runs as reads uploads and exports


def jobs_folder(settings: Settings) -> Path:
    folder = Path(settings.job_files_dir)
    folder.mkdir(mode=FOLDER_MODE, parents=True, exist_ok=True)
    return folder


def upload_path(settings: Settings, job: Job) -> Path:
    return Path(settings.job_files_dir) / f"{job.id}-{job.file_token}.upload"


def result_path(settings: Settings, job: Job) -> Path:
    return Path(settings.job_files_dir) / f"{job.id}-{job.file_token}.result"


async def write_upload(settings: Settings, job: Job, data: bytes) -> None:
    jobs_folder(settings)
    await asyncio.to_thread(_write_whole, upload_path(settings, job), data)


async def read_upload(settings: Settings, job: Job) -> bytes:
    return await asyncio.to_thread(upload_path(settings, job).read_bytes)


async def write_result(settings: Settings, job: Job, chunks: AsyncIterator[bytes]) -> int:
    """Write `chunks` as the job's result; returns its size. Nothing is left behind if it fails."""
    jobs_folder(settings)
    final = result_path(settings, job)
    partial = final.with_suffix(".partial")
    size = 0
    handle: BinaryIO = await asyncio.to_thread(_open_new, partial)
    try:
        async for chunk in chunks:
            await asyncio.to_thread(handle.write, chunk)
            size += len(chunk)
        await asyncio.to_thread(handle.close)
        await asyncio.to_thread(os.replace, partial, final)
    except BaseException:
        handle.close()
        with contextlib.suppress(FileNotFoundError):
            partial.unlink()
        raise
    return size


def remove_files(settings: Settings, job: Job) -> None:
    for path in (upload_path(settings, job), result_path(settings, job), claimed_path(settings, job)):
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def remove_upload(settings: Settings, job: Job) -> None:
    """Forget an imported file once its rows are in: it may hold personal data, and no retry needs it."""
    with contextlib.suppress(FileNotFoundError):
        upload_path(settings, job).unlink()


def claim_upload(settings: Settings, job: Job) -> Path | None:
    """Take a preview's upload for the one import that follows it; None when it is gone (or taken).

    A rename, which the file system does atomically: of two requests to import
    one preview only one gets the file. `put_back` undoes it; once the import
    job holds its own copy, the claimed file is removed (`remove_claimed`).
    """
    claimed = claimed_path(settings, job)
    try:
        os.rename(upload_path(settings, job), claimed)
    except FileNotFoundError:
        return None
    return claimed


def claimed_path(settings: Settings, job: Job) -> Path:
    return Path(settings.job_files_dir) / f"{job.id}-{job.file_token}.claimed"


def put_back(settings: Settings, job: Job) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.replace(claimed_path(settings, job), upload_path(settings, job))


def remove_claimed(settings: Settings, job: Job) -> None:
    with contextlib.suppress(FileNotFoundError):
        claimed_path(settings, job).unlink()


def _open_new(path: Path) -> BinaryIO:
    return path.open("wb")


def _write_whole(path: Path, data: bytes) -> None:
    partial = path.with_suffix(".partial")
    partial.write_bytes(data)
    os.replace(partial, path)
