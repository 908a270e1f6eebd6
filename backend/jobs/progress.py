"""How far a job has got, as a person reads it: rows done of rows, rows a second, time left."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from backend.models.jobs import Job, JobStatus


@dataclass(frozen=True)
class JobProgress:
    done: int
    total: int | None
    percent: int | None  # 0-100, None while the total is unknown
    rate: float | None  # rows a second since the job started
    eta: timedelta | None  # time left at that rate, while the job runs


def progress_of(job: Job, now: datetime) -> JobProgress:
    total = job.rows_total
    done = job.rows_done
    percent = None
    if total is not None:
        percent = 100 if total <= 0 else max(0, min(100, done * 100 // total))
    rate = None
    if job.started_at is not None:
        seconds = ((job.finished_at or now) - job.started_at).total_seconds()
        if seconds > 0 and done > 0:
            rate = done / seconds
    eta = None
    if job.status is JobStatus.RUNNING and rate and total is not None and total >= done:
        eta = timedelta(seconds=round((total - done) / rate))
    return JobProgress(done=done, total=total, percent=percent, rate=rate, eta=eta)


def duration_text(span: timedelta) -> str:
    """1 h 02 min, 4 min 05 s, 12 s."""
    seconds = max(0, int(span.total_seconds()))
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes:02d} min"
    if minutes:
        return f"{minutes} min {seconds:02d} s"
    return f"{seconds} s"
