"""How every admin page writes a moment: one format, in UTC, and saying so.

The database keeps UTC (backend/db/types.py `UTCDateTime`); a page that wrote
`2026-11-07 06:40:00.917474+00:00` in one place and `2026-11-07 06:40` in
another made people wonder which clock they read. Lists and details take it
through SQLAdmin's `column_type_formatters`; templates through the `moment`
filter.
"""

from __future__ import annotations

from datetime import UTC, datetime


def moment(value: datetime | None) -> str:
    """`value` as "2026-11-07 06:40:00 UTC"; empty for None. A naive value is taken as UTC already."""
    if value is None:
        return ""
    aware = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    return aware.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
