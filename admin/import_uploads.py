"""Uploaded import files kept between their preview and their confirm.

A preview stores the bytes it read under `settings.job_files_dir / "uploads"`,
named by a random token (never by the user's file name), together with who
uploaded it, for which model, under which name, with which SHA-256 and match
key. The confirm names the token: it must be the same user's, for the same
model, and at most a day old. Claiming renames the file, which the file
system does atomically, so of two confirms of one token only one gets it; a
confirm that writes nothing (rows with errors) puts it back, so the user can
confirm again with "Skip the rows with errors". Files older than a day are
removed whenever another file is stored.

The calls do blocking file I/O: run them in a thread (`run_in_threadpool`).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import time
from contextlib import suppress
from dataclasses import asdict, dataclass
from pathlib import Path

LIFETIME_SECONDS = 24 * 60 * 60
TOKEN_BYTES = 32
_TOKEN = re.compile(r"[A-Za-z0-9_-]{43}")  # what secrets.token_urlsafe(TOKEN_BYTES) makes
_STORED = ".upload"
_CLAIMED = ".claimed"
_WRITING = ".writing"
_HEADER_LIMIT = 16 * 1024  # the JSON line before the file's bytes
GONE = (
    "This upload is no longer available: it was imported already, it is more than a day old, "
    "or it was not uploaded by you. Upload the file again."
)


class UploadGone(Exception):
    """The token names no upload this user may confirm (any more)."""

    def __init__(self) -> None:
        super().__init__(GONE)
        self.message = GONE


@dataclass(frozen=True)
class UploadInfo:
    token: str
    user_id: int
    table: str
    file_name: str
    file_hash: str
    key: str | None  # what the preview matched rows by, as the user chose it ("" or None: the default)
    stored_at: float  # seconds since the epoch


@dataclass(frozen=True)
class ClaimedUpload:
    """An upload taken out of the store by one confirm: put it back, or discard it once imported."""

    info: UploadInfo
    data: bytes
    path: Path
    home: Path

    def put_back(self) -> None:
        with suppress(FileNotFoundError):  # already discarded: the import it served was written
            os.replace(self.path, self.home)

    def discard(self) -> None:
        self.path.unlink(missing_ok=True)


class UploadStore:
    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def store(
        self, data: bytes, *, user_id: int, table: str, file_name: str, file_hash: str, key: str | None
    ) -> UploadInfo:
        """Keep `data` for a confirm by `user_id`; returns what the confirm form names it by."""
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._remove_expired()
        info = UploadInfo(
            token=secrets.token_urlsafe(TOKEN_BYTES),
            user_id=user_id,
            table=table,
            file_name=file_name,
            file_hash=file_hash,
            key=key,
            stored_at=time.time(),
        )
        header = json.dumps(asdict(info), ensure_ascii=True).encode("ascii")
        writing = self.directory / f"{info.token}{_WRITING}"
        # Written aside and renamed into place: a confirm never reads a half-written file.
        descriptor = os.open(writing, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(header + b"\n")
            handle.write(data)
        os.replace(writing, self._home(info.token))
        return info

    def claim(self, token: str, *, user_id: int, table: str) -> ClaimedUpload:
        """Take the upload `token` names for `user_id`'s confirm on `table`; `UploadGone` otherwise."""
        if _TOKEN.fullmatch(token) is None:
            raise UploadGone
        home = self._home(token)
        try:
            with home.open("rb") as handle:
                info = _info(handle.readline(_HEADER_LIMIT))
        except (FileNotFoundError, ValueError):
            raise UploadGone from None
        if info.token != token or info.user_id != user_id or info.table != table:
            raise UploadGone
        if time.time() - info.stored_at > LIFETIME_SECONDS:
            home.unlink(missing_ok=True)
            raise UploadGone
        claimed = self.directory / f"{token}.{secrets.token_hex(8)}{_CLAIMED}"
        try:
            os.rename(home, claimed)
        except FileNotFoundError:  # another confirm took it first
            raise UploadGone from None
        with claimed.open("rb") as handle:
            handle.readline(_HEADER_LIMIT)
            data = handle.read()
        return ClaimedUpload(info=info, data=data, path=claimed, home=home)

    def _home(self, token: str) -> Path:
        return self.directory / f"{token}{_STORED}"

    def _remove_expired(self) -> None:
        cutoff = time.time() - LIFETIME_SECONDS
        for path in self.directory.iterdir():
            if path.suffix in (_STORED, _CLAIMED, _WRITING):
                with suppress(FileNotFoundError):
                    if path.stat().st_mtime < cutoff:
                        path.unlink()


def _info(line: bytes) -> UploadInfo:
    """The header line of a stored upload; `ValueError` when it is not one."""
    try:
        fields = json.loads(line)
        return UploadInfo(**fields)
    except (json.JSONDecodeError, TypeError) as exc:
        raise ValueError("not a stored upload") from exc
