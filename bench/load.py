"""A bounded load test: logged-in clients mixing reads and writes, then a check that nothing was lost.

    ./dev load                          # 12 clients for 30 s over 100,000 products
    ./dev load --clients 8 --seconds 10 --products 20000
    ./dev load --topology full --products 20000    # 16 clients for 60 s, as in production

`--topology single` (the default, so earlier figures stay comparable) creates a
throwaway database on the local PostgreSQL server and starts the admin under
uvicorn, one worker. `--topology full` is README's "Running in production"
(bench/topology.py): a primary and its streaming standby of their own
(tests/replica.py), PgBouncer in transaction mode in front of the primary
(tests/pgbouncer.py) and `manage.py runserver --workers 2` with
DATABASE_POOLER=pgbouncer, DATABASE_DIRECT_URL and DATABASE_REPLICA_URLS; the
standby is stopped a third into the run and started again at two thirds.
Everything started is stopped at the end, Ctrl+C included.

The clients run in this process on loopback: list pages, searches, detail
pages, and writes (new tags, renamed tags, each client on its own rows).
Afterwards (bench/load_checks.py): 5xx by kind of request (none allowed on a
read; a write refused with one is reported and must have left nothing behind),
every acknowledged write stored exactly once with its last value, no
unacknowledged write stored twice, one audit entry per write; for `full`, how
many reads the standby served before, during and after its stop. Exits 1 when
a check fails.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import re
import signal
import statistics
import sys
import time
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg
import httpx

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from admin.requests import READ_PRIMARY_COOKIE  # noqa: E402
from bench.load_checks import READS, Outcomes, read_lines, verify  # noqa: E402
from bench.run import PASSWORD, _admin_sql, _manage, _server  # noqa: E402

CSRF = re.compile(r'name="csrf-token" content="([^"]+)"')
VERSION = re.compile(r'name="_version" value="(\d+)"')
ROW_ID = re.compile(r'<input type="hidden" value="(\d+)">')
DEFAULTS = {"single": (12, 30.0, 100_000), "full": (16, 60.0, 100_000)}  # clients, seconds, products
REQUESTS_METRIC = re.compile(r"custodian_http_requests_total\{(.*)\} (\S+)$")
LABEL = re.compile(r'(\w+)="([^"]*)"')
READ_SHARE = 0.8  # of each client's requests in the mix; the rest write
NO_ANSWER = 0  # the status recorded when a request got no HTTP answer at all


class Client(Outcomes):
    def __init__(self, base: str, number: int, phase: Callable[[], str]) -> None:
        super().__init__()
        self.http = httpx.AsyncClient(base_url=base, timeout=30, follow_redirects=False)
        self.number = number
        self.phase = phase
        self.token = ""
        self.timings: dict[str, list[float]] = defaultdict(list)
        self.tag_ids: list[int] = []
        self.writes = 1 - READ_SHARE  # the share of this client's requests that write

    async def sign_in(self) -> None:
        page = await self.http.get("/admin/login")
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
        response = await self.http.post(
            "/admin/login", data={"username": "bench", "password": PASSWORD, "csrf_token": token}
        )
        if response.status_code != 302:
            raise SystemExit(f"sign-in failed with {response.status_code}")
        self.token = CSRF.search((await self.http.get("/admin/")).text).group(1)  # type: ignore[union-attr]

    async def timed(self, kind: str, method: str, path: str, **kwargs: Any) -> httpx.Response | None:
        """The response, or None when none came (counted as status 0 of `kind`)."""
        phase = self.phase()
        started = time.perf_counter()
        try:
            response = await self.http.request(method, path, **kwargs)
        except httpx.TransportError:
            self.statuses[kind, NO_ANSWER] += 1
            return None
        self.timings[kind].append((time.perf_counter() - started) * 1000)
        self.statuses[kind, response.status_code] += 1
        if kind in READS:
            # The app sends a browser that wrote lately to the primary (admin/requests.py).
            wrote_lately = f"{READ_PRIMARY_COOKIE}=" in response.request.headers.get("cookie", "")
            self.reads[phase, "primary (wrote lately)" if wrote_lately else "replica if healthy"] += 1
        return response

    async def create_tag(self) -> None:
        name = f"load-{self.number}-{uuid.uuid4().hex[:8]}"
        response = await self.timed(
            "create",
            "POST",
            "/admin/tag/create",
            data={"name": name, "save": "Save"},
            headers={"X-CSRF-Token": self.token},
        )
        if response is None:
            self.unknown_creates.append(name)
        elif response.status_code == 302:
            self.created.append(name)
        else:
            self.refused_creates.append((name, response.status_code))

    async def rename_tag(self, tag_id: int) -> None:
        form = await self.timed("edit form", "GET", f"/admin/tag/edit/{tag_id}")
        version = VERSION.search(form.text) if form is not None else None
        if form is None or form.status_code != 200 or not version:
            return
        name = f"renamed-{self.number}-{uuid.uuid4().hex[:8]}"
        response = await self.timed(
            "edit",
            "POST",
            f"/admin/tag/edit/{tag_id}",
            data={"name": name, "_version": version.group(1), "save": "Save"},
            headers={"X-CSRF-Token": self.token},
        )
        if response is None:
            self.unknown_renames[tag_id].append(name)
        elif response.status_code == 302:
            self.renamed[tag_id].append(name)
        else:
            self.refused_renames.append((tag_id, name, response.status_code))

    async def own_tag_ids(self) -> list[int]:
        # Each client renames only tags it created, so no two clients race on a row.
        if len(self.tag_ids) < len(self.created):
            path = f"/admin/tag/list?pageSize=100&search=load-{self.number}-"
            response = await self.timed("tag search", "GET", path)
            self.tag_ids = [int(i) for i in ROW_ID.findall(response.text)] if response else []
            for names in self.renamed.values():
                response = await self.timed("tag search", "GET", f"/admin/tag/list?search={names[-1]}")
                self.tag_ids += [int(i) for i in ROW_ID.findall(response.text)] if response else []
        return self.tag_ids or [0]


def _kind_roll(roll: float, writes: float) -> float:
    """`roll` (uniform in [0, 1)) mapped so that a share `writes` of requests write, and the kinds of
    reads and of writes keep their proportions of the mix (reads 80 %: list 35, search 20, detail 25)."""
    reads = 1 - writes
    if roll < reads:
        return roll / reads * READ_SHARE
    return READ_SHARE + (roll - reads) / writes * (1 - READ_SHARE)


async def work(client: Client, deadline: float, product_ids: list[int]) -> None:
    rng = random.Random(client.number)
    while time.perf_counter() < deadline:
        roll = _kind_roll(rng.random(), client.writes)
        if roll < 0.35:
            await client.timed("list", "GET", "/admin/product/list?pageSize=50")
        elif roll < 0.55:
            term = rng.choice(["Lamp", "Smart", "Bottle", "Kettle", "Pro Chair"])
            await client.timed("search", "GET", f"/admin/product/list?pageSize=50&search={term}")
        elif roll < READ_SHARE:
            await client.timed("detail", "GET", f"/admin/product/details/{rng.choice(product_ids)}")
        elif roll < 0.9 or not client.created:
            await client.create_tag()
        else:
            await client.rename_tag(rng.choice(await client.own_tag_ids()))


async def run(
    base: str,
    clients: int,
    seconds: float,
    product_ids: list[int],
    *,
    phase: Callable[[], str] = lambda: "run",
    meanwhile: Callable[[float], Awaitable[None]] | None = None,
    readers: bool = False,
    settle: float = 0.0,
) -> list[Client]:
    """Sign `clients` in, then run them for `seconds`, with `meanwhile(seconds)` alongside.

    With `readers`, every other client only reads and the others write twice as often: the same
    mix overall, but a browser that wrote lately reads the primary (admin/requests.py), so with
    every client writing every few seconds a replica would serve next to nothing. The clock starts
    `settle` seconds after sign-in (a POST too, so it sends the browser to the primary for a while)."""
    workers = [Client(base, n, phase) for n in range(clients)]
    for client in workers if readers else []:
        client.writes = 0.0 if client.number % 2 == 0 else 2 * (1 - READ_SHARE)
    try:
        await asyncio.gather(*(w.sign_in() for w in workers))
        await asyncio.sleep(settle)
        deadline = time.perf_counter() + seconds
        alongside = [meanwhile(seconds)] if meanwhile else []
        await asyncio.gather(*alongside, *(work(w, deadline, product_ids) for w in workers))
    finally:
        for w in workers:
            await w.http.aclose()
    return workers


async def seeded_product_ids(url: str) -> list[int]:
    connection = await asyncpg.connect(url)
    try:
        rows = await connection.fetch("SELECT id FROM product WHERE deleted_at IS NULL LIMIT 5000")
        await connection.execute("VACUUM ANALYZE")
        return [r["id"] for r in rows]
    finally:
        await connection.close()


def seed(env: dict[str, str], products: int) -> None:
    _manage(env, "migrate")
    _manage(env, "createsuperuser", "--username", "bench", "--no-input")
    _manage(env, "seed", "--products", str(products))


def base_env(database_url: str) -> dict[str, str]:
    return {
        **os.environ,
        "DATABASE_URL": database_url.replace("postgresql://", "postgresql+asyncpg://"),
        "ENVIRONMENT": "development",
        "CUSTODIAN_PASSWORD": PASSWORD,
        # Signed in by password alone: a superuser would otherwise have to enrol a second factor first.
        "REQUIRE_2FA_FOR": "",
    }


def run_single(args: argparse.Namespace) -> tuple[list[Client], float, list[str], list[str]]:
    server = os.environ.get("BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    name = f"custodian_load_{uuid.uuid4().hex[:8]}"
    asyncio.run(_admin_sql(server, f'CREATE DATABASE "{name}"'))
    url = re.sub(r"/[^/]*$", f"/{name}", server)
    env = base_env(url)
    try:
        seed(env, args.products)
        product_ids = asyncio.run(seeded_product_ids(url))
        with _server(env, "admin.app:create_app_from_environment") as base:
            started = time.perf_counter()
            workers = asyncio.run(run(base, args.clients, args.seconds, product_ids))
            elapsed = time.perf_counter() - started
        problems = asyncio.run(verify(url, workers))
    finally:
        asyncio.run(_admin_sql(server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    return workers, elapsed, problems, []


def run_full(args: argparse.Namespace) -> tuple[list[Client], float, list[str], list[str]]:
    from bench.topology import READ_PRIMARY_SECONDS, ReplicaOutage, production_stack, two_workers

    with production_stack() as stack:
        setup = base_env(stack.direct_url)  # migrations and the seed go straight to the primary
        seed(setup, args.products)
        product_ids = asyncio.run(seeded_product_ids(stack.direct_url))
        stack.pair.wait_caught_up(timeout=120)
        outage = ReplicaOutage(stack)
        with two_workers(stack.app_env(setup)) as (base, log):
            started = time.perf_counter()
            workers = asyncio.run(
                run(
                    base,
                    args.clients,
                    args.seconds,
                    product_ids,
                    phase=outage.phase,
                    meanwhile=outage.drive,
                    readers=True,
                    settle=READ_PRIMARY_SECONDS + 1,
                )
            )
            elapsed = time.perf_counter() - started - (READ_PRIMARY_SECONDS + 1)
            server_errors = asyncio.run(server_5xx(base))
            tracebacks = log.read_text(errors="replace").count("Traceback")
        problems = outage.problems + asyncio.run(verify(stack.direct_url, workers))
    notes = [
        "; ".join(outage.timeline),
        f"5xx as the server counted them (/metrics): {server_errors or 'none'}; "
        f"tracebacks in its log: {tracebacks}",
        *read_lines(workers, outage.transactions),
    ]
    return workers, elapsed, problems, notes


async def server_5xx(base: str) -> dict[str, int]:
    """5xx answers by route template, as the server counted them (all workers: admin/metrics.py)."""
    async with httpx.AsyncClient(base_url=base, timeout=30) as http:
        response = await http.get("/metrics")
        if response.status_code != 200:
            return {f"GET /metrics answered {response.status_code}": 1}
        text = response.text
    counts: dict[str, int] = defaultdict(int)
    for line in text.splitlines():
        match = REQUESTS_METRIC.match(line)
        labels = dict(LABEL.findall(match.group(1))) if match else {}
        if match and labels.get("status", "").startswith("5") and float(match.group(2)):
            counts[f"{labels.get('method')} {labels.get('route')}"] += int(float(match.group(2)))
    return dict(counts)


def report(
    args: argparse.Namespace, workers: list[Client], elapsed: float, problems: list[str], notes: list[str]
) -> int:
    statuses: dict[int, int] = defaultdict(int)
    by_kind: dict[str, dict[int, int]] = defaultdict(lambda: defaultdict(int))
    timings: dict[str, list[float]] = defaultdict(list)
    for worker in workers:
        for (kind, code), count in worker.statuses.items():
            statuses[code] += count
            by_kind[kind][code] += count
        for kind, values in worker.timings.items():
            timings[kind].extend(values)
    total = sum(statuses.values())
    print(
        f"\n{args.topology}: {args.clients} clients, {elapsed:.0f} s, {args.products:,} products: "
        f"{total} requests ({total / elapsed:.0f}/s), statuses {dict(sorted(statuses.items()))}"
    )
    print(f"{'kind':<12}{'count':>7}{'median ms':>11}{'p95 ms':>9}  statuses")
    for kind, values in sorted(timings.items()):
        values.sort()
        p95 = values[max(0, int(len(values) * 0.95) - 1)]
        codes = dict(sorted(by_kind[kind].items()))
        print(f"{kind:<12}{len(values):>7}{statistics.median(values):>11.1f}{p95:>9.1f}  {codes}")
    failed_reads = {
        kind: {code: n for code, n in codes.items() if code >= 500 or code == NO_ANSWER}
        for kind, codes in by_kind.items()
        if kind in READS
    }
    failed_reads = {kind: codes for kind, codes in failed_reads.items() if codes}
    refused_writes = {
        kind: {code: n for code, n in codes.items() if code >= 500 or code == NO_ANSWER}
        for kind, codes in by_kind.items()
        if kind not in READS
    }
    refused_writes = {kind: codes for kind, codes in refused_writes.items() if codes}
    print(f"5xx or no answer on reads: {failed_reads or 'none'}")
    print(
        f"5xx or no answer on writes: {refused_writes or 'none'}"
        + (" (each checked: nothing of it stored, no audit entry)" if refused_writes else "")
    )
    for note in notes:
        print(note)
    acknowledged = sum(w.acknowledged() for w in workers)
    print(f"writes acknowledged: {acknowledged}; problems found by the database check: {len(problems)}")
    for problem in problems[:20]:
        print(f"  {problem}")
    return 1 if failed_reads or problems else 0


def _interrupted(_signum: int, _frame: object) -> None:
    # Raised wherever the program is, event loop included (asyncio.run keeps a handler of ours);
    # a second Ctrl+C is ignored so that stopping what was started is not cut short.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    raise KeyboardInterrupt


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--topology", choices=sorted(DEFAULTS), default="single")
    parser.add_argument("--clients", type=int)
    parser.add_argument("--seconds", type=float)
    parser.add_argument("--products", type=int)
    args = parser.parse_args()
    clients, seconds, products = DEFAULTS[args.topology]
    args.clients = args.clients or clients
    args.seconds = args.seconds or seconds
    args.products = args.products or products
    if args.clients < 1 or args.seconds <= 0 or args.products < 1:
        parser.error("--clients, --seconds and --products must be positive")
    import pytest  # the test helpers that start PgBouncer and the replica fail the way tests do

    signal.signal(signal.SIGINT, _interrupted)
    try:
        workers, elapsed, problems, notes = run_single(args) if args.topology == "single" else run_full(args)
    except pytest.fail.Exception as exc:
        raise SystemExit(f"Error: {exc}") from None
    except KeyboardInterrupt:
        print("Cancelled.", file=sys.stderr)  # everything started was stopped on the way out
        return 130
    return report(args, workers, elapsed, problems, notes)


if __name__ == "__main__":
    raise SystemExit(main())
