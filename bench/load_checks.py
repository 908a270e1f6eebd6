"""What `./dev load` checks after its run: every write against the database and its audit trail.

Each client records what it was told: acknowledged (302), refused (any other
status) or unknown (no answer at all). The database must then hold every
acknowledged write exactly once with its last value and its audit entry,
nothing of a refused write (no row, no audit entry: nothing half-written), and
an unknown write at most once.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence

import asyncpg

# Kinds of request that only read; every other kind writes.
READS = frozenset({"list", "search", "detail", "edit form", "tag search"})
PHASES = ("before", "stopped", "after")


class Outcomes:
    """What one client sent and what it was answered."""

    def __init__(self) -> None:
        self.statuses: dict[tuple[str, int], int] = defaultdict(int)  # (kind, status) -> count
        self.reads: dict[tuple[str, str], int] = defaultdict(int)  # (phase, where the app may read) -> count
        self.created: list[str] = []
        self.refused_creates: list[tuple[str, int]] = []
        self.unknown_creates: list[str] = []
        self.renamed: dict[int, list[str]] = defaultdict(list)  # tag id -> acknowledged names, in order
        self.refused_renames: list[tuple[int, str, int]] = []
        self.unknown_renames: dict[int, list[str]] = defaultdict(list)

    def acknowledged(self) -> int:
        return len(self.created) + sum(len(names) for names in self.renamed.values())


async def verify(url: str, clients: Sequence[Outcomes]) -> list[str]:
    """Problems found in the database at `url` (asyncpg form); none when every write is accounted for."""
    connection = await asyncpg.connect(url)
    try:
        rows = await connection.fetch(
            "SELECT id, name FROM tag WHERE name LIKE 'load-%' OR name LIKE 'renamed-%'"
        )
        entries = await connection.fetch(
            "SELECT object_id, action, changes::jsonb -> 'name' ->> 1 AS name FROM audit_entry "
            "WHERE model = 'tag' AND action IN ('create', 'update')"
        )
    finally:
        await connection.close()
    stored = {int(row["id"]): row["name"] for row in rows}
    audited: dict[tuple[str, str], list[int]] = defaultdict(list)  # (action, new name) -> tag ids
    for entry in entries:
        audited[entry["action"], entry["name"]].append(int(entry["object_id"]))
    problems = [f"tag {name!r} stored {n} times" for name, n in _counts(stored.values()).items() if n > 1]
    for client in clients:
        problems += _check_creates(client, stored, audited)
        problems += _check_renames(client, stored, audited)
    expected = sum(len(c.created) + len(c.unknown_creates) for c in clients)
    if len(stored) > expected:
        problems.append(f"{len(stored)} tags stored, only {expected} creates sent without a refusal")
    return problems


def _counts(names: Iterable[str]) -> dict[str, int]:
    counts: dict[str, int] = defaultdict(int)
    for name in names:
        counts[name] += 1
    return counts


def _check_creates(
    client: Outcomes, stored: dict[int, str], audited: dict[tuple[str, str], list[int]]
) -> list[str]:
    problems = []
    for name in client.created:
        ids = audited["create", name]
        if not ids and name not in stored.values():
            problems.append(f"created tag {name!r}: acknowledged, neither stored nor audited (lost write)")
        elif len(ids) != 1:
            problems.append(f"created tag {name!r}: acknowledged once, {len(ids)} audit entries")
        elif ids[0] not in stored:
            problems.append(f"created tag {name!r}: acknowledged, not stored (lost write)")
    for name, status in client.refused_creates:
        if audited["create", name] or name in stored.values():
            problems.append(f"created tag {name!r}: refused with {status} but stored (half-written)")
    for name in client.unknown_creates:
        if len(audited["create", name]) > 1:
            problems.append(f"created tag {name!r}: no answer, stored {len(audited['create', name])} times")
    return problems


def _check_renames(
    client: Outcomes, stored: dict[int, str], audited: dict[tuple[str, str], list[int]]
) -> list[str]:
    problems = []
    for tag_id, names in client.renamed.items():
        # A rename that got no answer may still have been saved after the last acknowledged one.
        allowed = {names[-1], *client.unknown_renames.get(tag_id, [])}
        if stored.get(tag_id) not in allowed:
            problems.append(
                f"tag {tag_id}: expected {names[-1]!r}, found {stored.get(tag_id)!r} (lost update)"
            )
        for name in names:
            if audited["update", name] != [tag_id]:
                problems.append(
                    f"tag {tag_id} renamed to {name!r}: acknowledged once, "
                    f"{len(audited['update', name])} audit entries"
                )
    for tag_id, name, status in client.refused_renames:
        if audited["update", name] or stored.get(tag_id) == name:
            problems.append(
                f"tag {tag_id} renamed to {name!r}: refused with {status} but saved (half-written)"
            )
    return problems


def read_lines(clients: Sequence[Outcomes], transactions: dict[str, dict[str, int | None]]) -> list[str]:
    """Reads per phase of the standby's outage, and where they ran by the servers' own counts.

    A read on the standby is two transactions there (the pool's checkout ping and the read), so it
    served about half its count; each worker's health check, every few seconds, adds two more.
    """
    lines = [
        "reads by phase of the standby's outage ('after a write': sent with the read-primary cookie;",
        "on the standby: half its transactions there, a ping and the read; the rest ran on the primary)",
        f"{'phase':<9}{'reads':>7}{'after a write':>15}{'on standby':>12}{'on primary':>12}"
        f"{'standby xacts':>15}{'primary xacts':>15}",
    ]
    for phase in PHASES:
        reads = sum(
            c.reads[phase, "replica if healthy"] + c.reads[phase, "primary (wrote lately)"] for c in clients
        )
        after_write = sum(c.reads[phase, "primary (wrote lately)"] for c in clients)
        standby, primary = (transactions[server].get(phase) for server in ("standby", "primary"))
        # Only reads sent without the cookie may go there; the health checks make the halves a little high.
        on_standby = 0 if standby is None else min(reads - after_write, standby // 2)
        lines.append(
            f"{phase:<9}{reads:>7}{after_write:>15}{on_standby:>12}{reads - on_standby:>12}"
            f"{'down' if standby is None else standby:>15}{primary if primary is not None else '-':>15}"
        )
    return lines
