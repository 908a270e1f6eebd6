"""A bounded load test: logged-in clients mixing reads and writes, then a check that nothing was lost.

    ./dev load                          # 12 clients for 30 s over 100,000 products
    ./dev load --clients 8 --seconds 10 --products 20000

Creates a throwaway PostgreSQL database, seeds it, starts the admin (uvicorn,
one worker) and runs the clients from this process on loopback: list pages,
searches, detail pages, and writes (new tags, renamed tags, each client on its
own rows). Afterwards it checks the database: every acknowledged write is there
exactly once with its last value, and no response was a 5xx. Exits 1 otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import re
import statistics
import sys
import time
import uuid
from collections import defaultdict
from pathlib import Path
from typing import Any

import asyncpg
import httpx

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.run import PASSWORD, _admin_sql, _manage, _server  # noqa: E402

CSRF = re.compile(r'name="csrf-token" content="([^"]+)"')
VERSION = re.compile(r'name="_version" value="(\d+)"')


class Client:
    def __init__(self, base: str, number: int) -> None:
        self.http = httpx.AsyncClient(base_url=base, timeout=30, follow_redirects=False)
        self.number = number
        self.token = ""
        self.timings: dict[str, list[float]] = defaultdict(list)
        self.statuses: dict[int, int] = defaultdict(int)
        self.created: list[str] = []
        self.renamed: dict[int, str] = {}
        self.tag_ids: list[int] = []

    async def sign_in(self) -> None:
        page = await self.http.get("/admin/login")
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
        response = await self.http.post(
            "/admin/login", data={"username": "bench", "password": PASSWORD, "csrf_token": token}
        )
        if response.status_code != 302:
            raise SystemExit(f"sign-in failed with {response.status_code}")
        self.token = CSRF.search((await self.http.get("/admin/")).text).group(1)  # type: ignore[union-attr]

    async def timed(self, kind: str, method: str, path: str, **kwargs: Any) -> httpx.Response:
        started = time.perf_counter()
        response = await self.http.request(method, path, **kwargs)
        self.timings[kind].append((time.perf_counter() - started) * 1000)
        self.statuses[response.status_code] += 1
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
        if response.status_code == 302:
            self.created.append(name)

    async def rename_tag(self, tag_id: int) -> None:
        form = await self.timed("edit form", "GET", f"/admin/tag/edit/{tag_id}")
        version = VERSION.search(form.text)
        if form.status_code != 200 or not version:
            return
        name = f"renamed-{self.number}-{uuid.uuid4().hex[:8]}"
        response = await self.timed(
            "edit",
            "POST",
            f"/admin/tag/edit/{tag_id}",
            data={"name": name, "_version": version.group(1), "save": "Save"},
            headers={"X-CSRF-Token": self.token},
        )
        if response.status_code == 302:
            self.renamed[tag_id] = name


async def run(base: str, clients: int, seconds: float, product_ids: list[int]) -> list[Client]:
    workers = [Client(base, n) for n in range(clients)]
    await asyncio.gather(*(w.sign_in() for w in workers))
    deadline = time.perf_counter() + seconds

    async def work(client: Client) -> None:
        rng = random.Random(client.number)
        while time.perf_counter() < deadline:
            roll = rng.random()
            if roll < 0.35:
                await client.timed("list", "GET", "/admin/product/list?pageSize=50")
            elif roll < 0.55:
                term = rng.choice(["Lamp", "Smart", "Bottle", "Kettle", "Pro Chair"])
                await client.timed("search", "GET", f"/admin/product/list?pageSize=50&search={term}")
            elif roll < 0.8:
                await client.timed("detail", "GET", f"/admin/product/details/{rng.choice(product_ids)}")
            elif roll < 0.9 or not client.created:
                await client.create_tag()
            else:
                await client.rename_tag(rng.choice(await _own_tag_ids(client)))

    await asyncio.gather(*(work(w) for w in workers))
    for w in workers:
        await w.http.aclose()
    return workers


async def _own_tag_ids(client: Client) -> list[int]:
    # Each client renames only tags it created, so no two clients race on a row.
    if len(client.tag_ids) < len(client.created):
        response = await client.http.get(f"/admin/tag/list?pageSize=100&search=load-{client.number}-")
        client.tag_ids = [int(i) for i in re.findall(r'<input type="hidden" value="(\d+)">', response.text)]
        for name in client.renamed.values():
            response = await client.http.get(f"/admin/tag/list?search={name}")
            client.tag_ids += [
                int(i) for i in re.findall(r'<input type="hidden" value="(\d+)">', response.text)
            ]
    return client.tag_ids or [0]


async def verify(url: str, workers: list[Client]) -> list[str]:
    connection = await asyncpg.connect(url)
    problems = []
    try:
        names = [r["name"] for r in await connection.fetch("SELECT name FROM tag WHERE deleted_at IS NULL")]
        counts: dict[str, int] = defaultdict(int)
        for name in names:
            counts[name] += 1
        for worker in workers:
            for tag_id, name in worker.renamed.items():
                stored = await connection.fetchval("SELECT name FROM tag WHERE id = $1", tag_id)
                if stored != name:
                    problems.append(f"tag {tag_id}: expected {name!r}, found {stored!r} (lost update)")
            for name in worker.created:
                if counts[name] > 1:
                    problems.append(f"tag {name} stored {counts[name]} times")
        created = sum(len(w.created) for w in workers)
        live = await connection.fetchval(
            "SELECT count(*) FROM tag WHERE name LIKE 'load-%' OR name LIKE 'renamed-%'"
        )
        if live != created:
            problems.append(f"{created} tags acknowledged, {live} stored")
        audited = await connection.fetchval("SELECT count(*) FROM audit_entry WHERE model = 'tag'")
        acknowledged = created + sum(len(w.renamed) for w in workers)
        if audited < acknowledged:
            problems.append(f"{acknowledged} writes acknowledged, {audited} audit entries")
    finally:
        await connection.close()
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=12)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--products", type=int, default=100_000)
    args = parser.parse_args()
    import os

    server = os.environ.get("BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    name = f"custodian_load_{uuid.uuid4().hex[:8]}"
    asyncio.run(_admin_sql(server, f'CREATE DATABASE "{name}"'))
    url = re.sub(r"/[^/]*$", f"/{name}", server)
    env = {
        **os.environ,
        "DATABASE_URL": url.replace("postgresql://", "postgresql+asyncpg://"),
        "ENVIRONMENT": "development",
        "CUSTODIAN_PASSWORD": PASSWORD,
    }
    try:
        _manage(env, "migrate")
        _manage(env, "createsuperuser", "--username", "bench", "--no-input")
        _manage(env, "seed", "--products", str(args.products))

        async def ids() -> list[int]:
            connection = await asyncpg.connect(url)
            try:
                rows = await connection.fetch("SELECT id FROM product WHERE deleted_at IS NULL LIMIT 5000")
                await connection.execute("VACUUM ANALYZE")
                return [r["id"] for r in rows]
            finally:
                await connection.close()

        product_ids = asyncio.run(ids())
        with _server(env, "admin.app:create_app_from_environment") as base:
            started = time.perf_counter()
            workers = asyncio.run(run(base, args.clients, args.seconds, product_ids))
            elapsed = time.perf_counter() - started
        problems = asyncio.run(verify(url, workers))
    finally:
        asyncio.run(_admin_sql(server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))

    statuses: dict[int, int] = defaultdict(int)
    timings: dict[str, list[float]] = defaultdict(list)
    for worker in workers:
        for code, count in worker.statuses.items():
            statuses[code] += count
        for kind, values in worker.timings.items():
            timings[kind].extend(values)
    total = sum(statuses.values())
    server_errors = sum(count for code, count in statuses.items() if code >= 500)
    print(
        f"\n{args.clients} clients, {elapsed:.0f} s, {args.products:,} products: {total} requests "
        f"({total / elapsed:.0f}/s), statuses {dict(sorted(statuses.items()))}"
    )
    print(f"{'kind':<12}{'count':>7}{'median ms':>11}{'p95 ms':>9}")
    for kind, values in sorted(timings.items()):
        values.sort()
        p95 = values[max(0, int(len(values) * 0.95) - 1)]
        print(f"{kind:<12}{len(values):>7}{statistics.median(values):>11.1f}{p95:>9.1f}")
    acknowledged = sum(len(w.created) + len(w.renamed) for w in workers)
    print(f"writes acknowledged: {acknowledged}; 5xx: {server_errors}; lost or duplicated: {len(problems)}")
    for problem in problems[:20]:
        print(f"  {problem}")
    return 1 if server_errors or problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
