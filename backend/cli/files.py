"""What the data commands share: where output goes, how row errors and progress are shown."""

from __future__ import annotations

import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

import click

from backend.cli.output import say
from backend.errors import AppError
from backend.services.exchange.importing import RowOutcome

MAX_LISTED_ROWS = 50  # error rows printed before "... and N more"


def print_row_errors(rows: list[RowOutcome], *, model: str = "") -> None:
    """Each error row as "  row 7: Price: The price must be greater than zero.", the first 50 rows."""
    prefix = f"{model} row" if model else "row"
    for row in rows[:MAX_LISTED_ROWS]:
        for label, messages in row.errors.items():
            for message in messages:
                field = "" if label == "row" else f"{label}: "
                say(f"  {prefix} {row.number}: {field}{message}")
    if len(rows) > MAX_LISTED_ROWS:
        say(f"  ... and {len(rows) - MAX_LISTED_ROWS:,} more")


@contextmanager
def destination(path: Path | None) -> Iterator[IO[bytes]]:
    """Standard output, or a file that appears only once it is complete (a failed run leaves no half file)."""
    if path is None:
        sys.stdout.flush()  # text already printed goes first
        yield sys.stdout.buffer
        sys.stdout.buffer.flush()
        return
    folder = path.resolve().parent
    if not folder.is_dir():
        raise AppError(f"Cannot write {path}: the folder {folder} does not exist.")
    handle, partial = tempfile.mkstemp(dir=folder, prefix=f".{path.name}.", suffix=".partial")
    try:
        with os.fdopen(handle, "wb") as file:
            yield file
        os.replace(partial, path)
    except BaseException:
        Path(partial).unlink(missing_ok=True)
        raise


@contextmanager
def progress_bar(total: int, label: str, shown: bool) -> Iterator[Callable[[int], None]]:
    """A progress bar with rows/s on stderr, or (not a terminal) a function that does nothing."""
    if not shown:
        yield lambda _done: None
        return
    started_at = time.perf_counter()
    done = 0

    def rate(_item: object) -> str:
        return f"{done / max(time.perf_counter() - started_at, 1e-6):,.0f} rows/s"

    with click.progressbar(length=max(total, 1), label=label, file=sys.stderr, item_show_func=rate) as bar:

        def tick(rows: int) -> None:
            nonlocal done
            done += rows
            bar.update(rows)

        yield tick
