"""Custodian's benchmark: a million products on PostgreSQL, measured against baselines in the same run.

    ./dev bench                      # 1,000,000 products, 100 requests per page
    ./dev bench --products 200000 --requests 30 --json bench/results.json
    ./dev bench --right-after-seed   # no VACUUM ANALYZE between the seed and the measurements
    ./dev bench --products 5000 --import-rows 2000 --only import   # a quick check of the import section
    ./dev bench --only export        # the seed, then only the CSV and XLSX exports against COPY

It creates a throwaway database on the PostgreSQL server of BENCH_DATABASE_URL
(default: the local server), seeds it through `manage.py seed --products`, times
a raw COPY of the same rows into a table of the same shape, starts the admin
with uvicorn (one worker) and a stock SQLAdmin app over the same data, times
an import of new products from a CSV file through the services (read,
preview, confirm) against a raw COPY of the same rows, and prints one table
(and writes JSON). Figures are ratios taken in this run: the machine is shared
and noisy, so absolute times alone mean little.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import csv
import io
import json
import os
import re
import statistics
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import asyncpg
import httpx

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from admin.keyset import encode_cursor  # noqa: E402
from backend.auth.actor import Actor  # noqa: E402
from backend.config import load_settings  # noqa: E402
from backend.db.session import Database  # noqa: E402
from backend.db.uow import unit_of_work  # noqa: E402
from backend.models import Product, Tag  # noqa: E402
from backend.services.bulk_seed import BULK_COLUMNS, bulk_product_rows  # noqa: E402
from backend.services.exchange.importing import (  # noqa: E402
    ImportReport,
    confirm_import,
    file_hash,
    preview_import,
)
from backend.services.exchange.reading import ImportLimits, read_table  # noqa: E402
from backend.services.registry import service_for  # noqa: E402
from bench.inprocess import capture_statements, profile_page, time_statements  # noqa: E402
from tests.serving import ServerDidNotStart, running_server  # noqa: E402

PASSWORD = "bench-password-1234"
SEARCH_TERM = "Smart Lamp"  # about 1% of the generated names
# Search at every selectivity (the generated names are "<adjective> <noun> <first name> <n>", SKUs
# "BENCH-<n, 8 digits>"): nothing, about 100 rows of a million, about 1%, about 10%.
SEARCHES = {
    "search: no match": "qzxj-nothing",
    "search: ~0.01%": "BENCH-000123",
    "search (~1%)": SEARCH_TERM,
    "search: ~10%": "Classic",
}
# The honest floor for a search page: the exact count of its matches, as plain ILIKE that our trigram
# indexes serve, through raw asyncpg (no rendering, no session check, no page of rows).
SEARCH_FLOOR_SQL = "SELECT count(*) FROM product WHERE deleted_at IS NULL AND (name ILIKE $1 OR sku ILIKE $1)"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--products", type=int, default=1_000_000)
    parser.add_argument(
        "--requests", type=int, default=100, help="sequential requests per page (median, p95)"
    )
    parser.add_argument(
        "--baseline-requests", type=int, default=15, help="requests per page for stock SQLAdmin"
    )
    parser.add_argument(
        "--right-after-seed",
        action="store_true",
        help="measure right after the seed, without the VACUUM ANALYZE autovacuum would run later "
        "(the seed's own ANALYZE is all the planner gets, as in a bulk-load window)",
    )
    parser.add_argument(
        "--import-rows",
        type=int,
        default=100_000,
        help="new products in the imported CSV file (at most --products)",
    )
    parser.add_argument(
        "--only",
        choices=("import", "export", "pages"),
        help="after the seed, measure only this section: import, export, or pages (the pages against "
        "stock SQLAdmin and their SQL floor, without the export, profile, throughput and import)",
    )
    parser.add_argument(
        "--profile-requests",
        type=int,
        default=50,
        help="in-process requests of list page 1 sampled for the profile",
    )
    parser.add_argument(
        "--throughput-seconds",
        type=float,
        default=5,
        help="seconds of each requests/s measurement (per page at 8 clients; 1 and 2 workers at 8 and 32)",
    )
    parser.add_argument("--json", default=str(REPO / "bench" / "results.json"))
    args = parser.parse_args()
    if args.products < 1 or args.import_rows < 1 or args.requests < 1 or args.profile_requests < 1:
        parser.error("--products, --import-rows, --requests and --profile-requests must be positive")
    if args.throughput_seconds <= 0:
        parser.error("--throughput-seconds must be positive")
    server = os.environ.get("BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    name = f"custodian_bench_{uuid.uuid4().hex[:8]}"
    results: dict[str, Any] = {
        "products": args.products,
        "requests": args.requests,
        "date": time.strftime("%Y-%m-%d"),
    }
    asyncio.run(_admin_sql(server, f'CREATE DATABASE "{name}"'))
    url = re.sub(r"/[^/]*$", f"/{name}", server)
    env = {
        **os.environ,
        "DATABASE_URL": url.replace("postgresql://", "postgresql+asyncpg://"),
        "ENVIRONMENT": "development",
        "CUSTODIAN_PASSWORD": PASSWORD,
        "DEBUG_SQL_HEADER": "true",
        # The bench signs in with a password alone: a second factor costs nothing per request once the
        # session is open, and a superuser would otherwise have to enrol one first.
        "REQUIRE_2FA_FOR": "",
        # The export is measured as it streams; above the threshold the admin hands it to a job, which
        # writes the same file through the same export_file.
        "JOB_THRESHOLD_ROWS": "10000000",
    }
    try:
        _manage(env, "migrate")
        _manage(env, "createsuperuser", "--username", "bench", "--no-input")
        results["seed"] = _seed_and_copy(env, url, args.products)
        results["right_after_seed"] = args.right_after_seed
        if not args.right_after_seed:
            asyncio.run(_sql(url, "VACUUM ANALYZE"))  # what autovacuum does in production
        if args.only in (None, "pages"):
            targets = asyncio.run(_targets(url, args.products))
            results["raw_search"] = asyncio.run(_raw_search(url, args.baseline_requests))
            results["search_floor"] = asyncio.run(_search_floor(url, args.baseline_requests))
            with _server(env, "admin.app:create_app_from_environment") as base:
                results["custodian"], pages = _measure_custodian(
                    base, targets, args.requests, args.throughput_seconds
                )
                if args.only is None:
                    results["export"] = _measure_export(base, url)
            results["database_floor"] = _database_floor(
                env["DATABASE_URL"], url, pages, results["custodian"], args.requests
            )
            if args.only is None:
                results["profile"] = asyncio.run(
                    profile_page(
                        env["DATABASE_URL"],
                        pages["list page 1"],
                        requests=args.profile_requests,
                        username="bench",
                        password=PASSWORD,
                    )
                )
                results["throughput"] = _measure_workers(env, pages["list page 1"], args.throughput_seconds)
            with _server(env, "bench.stock_sqladmin:create_app") as base:
                results["stock_sqladmin"] = _measure_stock(base, targets, args.baseline_requests)
        elif args.only == "export":
            with _server(env, "admin.app:create_app_from_environment") as base:
                results["export"] = _measure_export(base, url)
        # Last, so that nothing has to be undone: the imported products, their tags and their audit
        # entries would otherwise change what the pages and the export above read (and deleting them
        # would leave dead rows behind); the database is dropped right after.
        if args.only in (None, "import"):
            results["import"] = asyncio.run(
                _measure_import(env["DATABASE_URL"], url, min(args.import_rows, args.products))
            )
    finally:
        asyncio.run(_admin_sql(server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    _report(results)
    Path(args.json).write_text(json.dumps(results, indent=2))
    print(f"\nJSON written to {args.json}")
    return 0


# Database -------------------------------------------------------------------------------


async def _admin_sql(server: str, statement: str) -> None:
    connection = await asyncpg.connect(server)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


async def _sql(url: str, statement: str, *args: Any) -> Any:
    connection = await asyncpg.connect(url)
    try:
        return await connection.fetch(statement, *args)
    finally:
        await connection.close()


def _manage(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=REPO, env=env, capture_output=True, text=True
    )
    if done.returncode != 0:
        raise SystemExit(f"manage.py {' '.join(args)} failed: {done.stderr.strip()}")
    return done.stdout


def _seed_and_copy(env: dict[str, str], url: str, count: int) -> dict[str, float]:
    """Seed through manage.py, and COPY the same rows into a same-shaped table: rows/s for each."""
    out = _manage(env, "seed", "--products", str(count), "--batch-size", "20000")
    seeded = float(re.search(r"\(([\d,]+) rows/s\)", out).group(1).replace(",", ""))  # type: ignore[union-attr]

    async def raw_copy() -> float:
        connection = await asyncpg.connect(url)
        try:
            await connection.execute("CREATE TABLE product_raw (LIKE product INCLUDING ALL)")
            ids = [
                r["id"]
                for r in await connection.fetch(
                    "SELECT id FROM category WHERE slug LIKE 'bench-%' ORDER BY id"
                )
            ]
            rows = bulk_product_rows(1, count, ids)  # generated before the clock starts: COPY alone is timed
            started = time.perf_counter()
            async with connection.transaction():
                for start in range(0, count, 20_000):
                    await connection.copy_records_to_table(
                        "product_raw", records=rows[start : start + 20_000], columns=list(BULK_COLUMNS)
                    )
            elapsed = time.perf_counter() - started
            await connection.execute("DROP TABLE product_raw")
            return count / elapsed
        finally:
            await connection.close()

    raw = asyncio.run(raw_copy())
    return {"seed_rows_per_s": seeded, "raw_copy_rows_per_s": raw, "ratio": seeded / raw}


async def _targets(url: str, count: int) -> dict[str, Any]:
    """Ids and cursors for the pages to measure, picked from the data."""
    connection = await asyncpg.connect(url)
    try:
        middle = await connection.fetchrow(
            "SELECT id FROM product WHERE deleted_at IS NULL ORDER BY id DESC OFFSET $1 LIMIT 1", count // 2
        )
        sample = await connection.fetchrow(
            "SELECT id, category_id FROM product WHERE deleted_at IS NULL LIMIT 1"
        )
    finally:
        await connection.close()
    return {
        "deep_id": middle["id"],
        "deep_offset_page": count // 2 // 100,
        "product_id": sample["id"],
        "category_id": sample["category_id"],
    }


async def _raw_search(url: str, requests: int) -> dict[str, float]:
    """The baseline for search: stock SQLAdmin's SQL (exact COUNT, ILIKE) through raw asyncpg.

    Run once as is (PostgreSQL may use our trigram index) and once with index scans
    off, which is what the same SQL costs on a schema without a search index.
    """
    pattern = f"%{SEARCH_TERM}%"
    count_sql = (
        "SELECT count(*) FROM (SELECT * FROM product WHERE CAST(product.name AS VARCHAR) ILIKE $1 "
        "OR CAST(product.sku AS VARCHAR) ILIKE $1 ORDER BY id DESC) AS anon"
    )
    page_sql = (
        "SELECT * FROM product WHERE CAST(product.name AS VARCHAR) ILIKE $1 "
        "OR CAST(product.sku AS VARCHAR) ILIKE $1 ORDER BY id DESC LIMIT 100"
    )
    connection = await asyncpg.connect(url)
    measured = {}
    try:
        for label, settings in (
            ("with_indexes", ()),
            ("without_search_index", ("SET enable_bitmapscan = off",)),
        ):
            for statement in settings:
                await connection.execute(statement)
            durations = []
            for _ in range(requests):
                started = time.perf_counter()
                await connection.fetchval(count_sql, pattern)
                await connection.fetch(page_sql, pattern)
                durations.append((time.perf_counter() - started) * 1000)
            measured[f"median_ms_{label}"] = statistics.median(durations)
    finally:
        await connection.close()
    return measured


async def _search_floor(url: str, requests: int) -> dict[str, dict[str, float]]:
    """For each search of SEARCHES: its matches, and the median time of their exact count
    (SEARCH_FLOOR_SQL)."""
    connection = await asyncpg.connect(url)
    measured = {}
    try:
        for name, term in SEARCHES.items():
            pattern = "%" + term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            matches = await connection.fetchval(SEARCH_FLOOR_SQL, pattern)
            durations = []
            for _ in range(requests):
                started = time.perf_counter()
                await connection.fetchval(SEARCH_FLOOR_SQL, pattern)
                durations.append((time.perf_counter() - started) * 1000)
            measured[name] = {"matches": matches, "median_ms": statistics.median(durations)}
            print(f"  floor {name}: {matches:,} matches, {measured[name]['median_ms']:.1f} ms", flush=True)
    finally:
        await connection.close()
    return measured


def _search_path(term: str) -> str:
    return f"/admin/product/list?pageSize=100&search={term.replace(' ', '+')}"


# Servers --------------------------------------------------------------------------------


@contextmanager
def _runserver(env: dict[str, str], workers: int) -> Iterator[str]:
    """`manage.py runserver --workers N` on a free port (access log off, as in `_server`)."""

    def command(port: int) -> list[str]:
        return [
            *(sys.executable, "manage.py", "runserver", "--host", "127.0.0.1"),
            *("--port", str(port), "--workers", str(workers)),
        ]

    try:
        with running_server(command, cwd=REPO, env={**env, "LOG_LEVEL": "WARNING"}) as server:
            yield server.url
    except ServerDidNotStart as exc:
        raise SystemExit(str(exc)) from exc


@contextmanager
def _server(env: dict[str, str], factory: str) -> Iterator[str]:
    """`factory` under uvicorn (one worker) on a free port; yields its base URL."""

    def command(port: int) -> list[str]:
        return [
            *(sys.executable, "-m", "uvicorn", factory, "--factory"),
            *("--host", "127.0.0.1", "--port", str(port), "--workers", "1", "--log-level", "warning"),
        ]

    try:
        with running_server(command, cwd=REPO, env=env) as server:
            os.environ["BENCH_SERVER_PID"] = str(server.pid)
            yield server.url
    except ServerDidNotStart as exc:
        raise SystemExit(str(exc)) from exc


# Measuring ------------------------------------------------------------------------------


def _signed_in(base: str) -> httpx.Client:
    client = httpx.Client(base_url=base, timeout=120)
    page = client.get("/admin/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
    response = client.post(
        "/admin/login", data={"username": "bench", "password": PASSWORD, "csrf_token": token}
    )
    if response.status_code != 302:
        raise SystemExit("could not sign in to the admin")
    return client


def _time(client: httpx.Client, path: str, requests: int) -> dict[str, Any]:
    durations, statements = [], None
    client.get(path)  # warm up
    for _ in range(requests):
        started = time.perf_counter()
        response = client.get(path)
        durations.append((time.perf_counter() - started) * 1000)
        if response.status_code != 200:
            raise SystemExit(f"{path} answered {response.status_code}")
        statements = response.headers.get("x-sql-statements")
    durations.sort()
    return {
        "path": path,
        "median_ms": statistics.median(durations),
        "p95_ms": durations[max(0, int(len(durations) * 0.95) - 1)],
        "statements": int(statements) if statements else None,
    }


async def _throughput(
    base: str, cookies: httpx.Cookies, path: str, clients: int = 8, seconds: float = 5
) -> float:
    done = 0
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        nonlocal done
        async with httpx.AsyncClient(base_url=base, cookies=cookies, timeout=120) as client:
            while time.perf_counter() < deadline:
                response = await client.get(path)
                if response.status_code == 200:
                    done += 1

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(clients)))
    return done / (time.perf_counter() - started)


def _pages(targets: dict[str, Any]) -> dict[str, str]:
    return {
        "list page 1": "/admin/product/list?pageSize=100",
        "deep page (~500k)": f"/admin/product/list?pageSize=100&after={targets['deep_cursor']}&page=5001",
        **{name: _search_path(term) for name, term in SEARCHES.items()},
        "sort by name": "/admin/product/list?pageSize=100&sortBy=name&sort=asc",
        "filter by category": f"/admin/product/list?pageSize=100&category={targets['category_id']}",
        "detail": f"/admin/product/details/{targets['product_id']}",
        "edit form": f"/admin/product/edit/{targets['product_id']}",
        # Issue 13: the dashboard answers within 2x list page 1's time.
        "dashboard": "/admin/",
    }


def _measure_custodian(
    base: str, targets: dict[str, Any], requests: int, seconds: float
) -> tuple[dict[str, Any], dict[str, str]]:
    """Each page of `_pages`: median, p95, statements and requests/s at 8 clients; and the pages' paths."""
    client = _signed_in(base)
    targets = {**targets, "deep_cursor": _cursor_at(client, targets["deep_id"])}
    pages = _pages(targets)
    measured = {}
    for name, path in pages.items():
        measured[name] = _time(client, path, requests)
        measured[name]["throughput_8_clients_rps"] = asyncio.run(
            _throughput(base, client.cookies, path, seconds=seconds)
        )
        print(f"  custodian {name}: {measured[name]['median_ms']:.1f} ms", flush=True)
    return measured, pages


def _database_floor(
    database_url: str, url: str, pages: dict[str, str], measured: dict[str, Any], requests: int
) -> dict[str, dict[str, Any]]:
    """Each page's own statements (captured once from the admin in this process), timed in order on a
    raw asyncpg connection (the median of `requests` runs), beside the page's median over HTTP."""
    captured = asyncio.run(capture_statements(database_url, pages, username="bench", password=PASSWORD))
    floor = {}
    for name, statements in captured.statements.items():
        sql_ms = asyncio.run(time_statements(url, statements, requests))
        page_ms = measured[name]["median_ms"]
        floor[name] = {
            "statements": len(statements),
            "sql_ms": sql_ms,
            "page_ms": page_ms,
            "sql_share": sql_ms / page_ms,
            "sql": [text for text, _ in statements],
        }
        print(f"  floor {name}: {len(statements)} statements, {sql_ms:.2f} ms", flush=True)
    return floor


def _measure_workers(env: dict[str, str], path: str, seconds: float) -> dict[str, dict[str, float]]:
    """Requests/s of `path` at 8 and 32 clients, `manage.py runserver --workers 1` and `--workers 2`."""
    measured: dict[str, dict[str, float]] = {}
    for workers in (1, 2):
        with _runserver(env, workers) as base:
            client = _signed_in(base)
            client.get(path)  # warm up
            measured[f"{workers} worker{'s' if workers > 1 else ''}"] = row = {}
            for clients in (8, 32):
                rps = asyncio.run(_throughput(base, client.cookies, path, clients=clients, seconds=seconds))
                row[f"{clients} clients"] = rps
                print(f"  runserver --workers {workers}, {clients} clients: {rps:.0f} req/s", flush=True)
    return measured


def _cursor_at(client: httpx.Client, product_id: int) -> str:
    """A "next" cursor pointing after `product_id` in the default list.

    A cursor carries a fingerprint of the list it was made for (sort, search, filters, page size);
    it is taken from page 1's own next link so that it matches, and only its position is moved.
    """
    page = client.get("/admin/product/list?pageSize=100")
    found = re.search(r"[?&;]after=([A-Za-z0-9_-]+)", page.text)
    if found is None:
        raise SystemExit("the product list has no next link")
    token = found.group(1)
    state, _value, _id = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    return encode_cursor(state, product_id, product_id)


def _measure_stock(base: str, targets: dict[str, Any], requests: int) -> dict[str, Any]:
    client = httpx.Client(base_url=base, timeout=300)
    pages = {
        "list page 1": "/admin/product/list?pageSize=100",
        "deep page (~500k)": f"/admin/product/list?pageSize=100&page={targets['deep_offset_page']}",
        **{name: _search_path(term) for name, term in SEARCHES.items()},
        "sort by name": "/admin/product/list?pageSize=100&sortBy=name&sort=asc",
        "filter by category": f"/admin/product/list?pageSize=100&category={targets['category_id']}",
        "detail": f"/admin/product/details/{targets['product_id']}",
        "edit form": f"/admin/product/edit/{targets['product_id']}",
    }
    measured = {}
    for name, path in pages.items():
        measured[name] = _time(client, path, requests)
        print(f"  stock sqladmin {name}: {measured[name]['median_ms']:.1f} ms", flush=True)
    return measured


def _rss_peak_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


# The product export's query, as COPY runs it: the floor for the CSV export. Same columns, same joins:
# the category by its slug, the tags by name (what backend/services/exchange/exporting.py reads).
EXPORT_FLOOR_SQL = """
SELECT p.id, p.sku, p.name, p.description, p.price, p.stock, p.status, c.slug,
       (SELECT string_agg(t.name, ', ' ORDER BY t.name)
          FROM product_tag pt JOIN tag t ON t.id = pt.tag_id
         WHERE pt.product_id = p.id)
  FROM product p LEFT OUTER JOIN category c ON c.id = p.category_id
 WHERE p.deleted_at IS NULL
 ORDER BY p.id DESC
"""


def _measure_export(base: str, url: str) -> dict[str, Any]:
    """The product list's CSV and XLSX exports through the admin, and COPY of the same query."""
    csv_export = _download(base, "/admin/product/export/csv")
    csv_export["rows"] = csv_export.pop("lines") - 1  # less the header row
    csv_export["rows_per_s"] = csv_export["rows"] / csv_export["total_s"]
    floor = asyncio.run(_copy_floor(url))
    csv_export["copy_rows_per_s"] = floor["rows"] / floor["total_s"]
    csv_export["ratio_to_copy"] = csv_export["rows_per_s"] / csv_export["copy_rows_per_s"]
    print(f"  export csv: {csv_export['rows_per_s']:,.0f} rows/s", flush=True)
    xlsx_export = _download(base, "/admin/product/export/xlsx")
    del xlsx_export["lines"]  # a zip has no lines: its rows are the CSV's
    xlsx_export["rows_per_s"] = csv_export["rows"] / xlsx_export["total_s"]
    print(f"  export xlsx: {xlsx_export['rows_per_s']:,.0f} rows/s", flush=True)
    return {"csv": csv_export, "xlsx": xlsx_export}


def _download(base: str, path: str) -> dict[str, Any]:
    """Time to first byte, total time, lines, bytes, and the server's peak RSS and CPU time while `path`
    downloads (CPU seconds say what the export costs when the machine's other work skews the clock)."""
    pid = int(os.environ["BENCH_SERVER_PID"])
    client = _signed_in(base)
    Path(f"/proc/{pid}/clear_refs").write_text("5")  # reset the peak RSS counter
    cpu_before = _cpu_seconds(pid)
    started = time.perf_counter()
    first_byte = None
    lines = size = 0
    with client.stream("GET", path) as response:
        if response.status_code != 200:
            raise SystemExit(f"{path} answered {response.status_code}")
        for chunk in response.iter_bytes():
            if first_byte is None:
                first_byte = time.perf_counter() - started
            lines += chunk.count(b"\n")
            size += len(chunk)
    return {
        "lines": lines,
        "bytes": size,
        "first_byte_s": first_byte or 0.0,
        "total_s": time.perf_counter() - started,
        "peak_rss_mb": _rss_peak_kib(pid) / 1024,
        "server_cpu_s": _cpu_seconds(pid) - cpu_before,
    }


def _cpu_seconds(pid: int) -> float:
    """User and system CPU time of process `pid` so far (fields 14 and 15 of /proc/<pid>/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _copy_floor(url: str) -> dict[str, float]:
    """`COPY (the export's query) TO STDOUT WITH CSV` through asyncpg: rows and seconds."""
    connection = await asyncpg.connect(url)
    rows = 0

    async def count(data: bytes) -> None:
        nonlocal rows
        rows += data.count(b"\n")

    try:
        started = time.perf_counter()
        await connection.copy_from_query(EXPORT_FLOOR_SQL, output=count, format="csv")
        elapsed = time.perf_counter() - started
    finally:
        await connection.close()
    return {"rows": rows, "total_s": elapsed}


# Import ---------------------------------------------------------------------------------

# Issue 12's floors for an import of 100,000 products from CSV with validation and per-row audit.
IMPORT_TARGETS = {"confirm": 5_000, "preview": 20_000}  # rows/s
IMPORT_FILE = "bench-products.csv"
IMPORT_HEADERS = ("SKU", "Name", "Description", "Price", "Stock", "Status", "Category", "Tags")
IMPORT_TAGS = ("bench-import-new", "bench-import-sale", "bench-import-bulk")
IMPORT_FLOOR_COLUMNS = ("sku", "name", "description", "price", "stock", "status", "category_id")


def _import_rows(count: int, slugs: Sequence[str]) -> list[tuple[str, ...]]:
    """`count` new products as a file gives them: unique SKUs, a bench category by slug, one or two tags."""
    return [
        (
            f"IMPORT-{n:08d}",
            f"Imported product {n}",
            "Imported by the bench" if n % 2 else "",
            f"{n % 9_000 + 1}.{n % 100:02d}",
            str(n % 500),
            "draft" if n % 4 == 0 else "active",
            slugs[n % len(slugs)],
            IMPORT_TAGS[n % 3] if n % 2 else f"{IMPORT_TAGS[n % 3]}, {IMPORT_TAGS[(n + 1) % 3]}",
        )
        for n in range(1, count + 1)
    ]


def _csv_file(rows: Sequence[tuple[str, ...]]) -> bytes:
    text = io.StringIO()
    writer = csv.writer(text)
    writer.writerow(IMPORT_HEADERS)
    writer.writerows(rows)
    return text.getvalue().encode()


@contextmanager
def _stopwatch(into: dict[str, Any], rows: int) -> Iterator[None]:
    """Wall time, rows/s and this process's CPU time (the services run here; PostgreSQL's is not counted)."""
    cpu, started = time.process_time(), time.perf_counter()
    yield
    elapsed = time.perf_counter() - started
    into.update(total_s=elapsed, rows_per_s=rows / elapsed, bench_cpu_s=time.process_time() - cpu)


def _expect(report: ImportReport, status: str, rows: int, step: str) -> None:
    """Stop the bench when a step did not do what it measures (a bench of failing rows proves nothing)."""
    if report.totals[status] == rows:
        return
    errors = [f"row {row.number}: {row.errors}" for row in report.error_rows[:3]]
    raise SystemExit(f"import {step}: expected {rows:,} {status} rows, got {report.totals}; {errors}")


async def _measure_import(database_url: str, url: str, count: int) -> dict[str, Any]:
    """A CSV file of `count` new products through the services as the system actor, and COPY of its rows.

    Read (`read_table`), preview (all rows new), confirm with its commit (every row validated,
    written and audited), a second preview of the same file (every row unchanged), each timed
    on its own; the floor is COPY of the same rows into a table of the product's shape.
    """
    database = Database(load_settings(database_url=database_url, environment="development"))
    actor = Actor.system("bench")
    try:
        categories = await _sql(
            url, "SELECT id, slug FROM category WHERE slug LIKE 'bench-%' AND deleted_at IS NULL ORDER BY id"
        )
        category_ids = {category["slug"]: category["id"] for category in categories}
        async with unit_of_work(database, actor) as uow:
            for name in IMPORT_TAGS:
                await service_for(Tag)(uow).create({"name": name})
            await uow.commit()
        rows = _import_rows(count, list(category_ids))
        data = _csv_file(rows)
        digest = file_hash(data)
        settings = database.settings
        # The checks cost the same whatever the limits: these only let a larger --import-rows through.
        limits = ImportLimits(
            max_bytes=max(settings.import_max_bytes, len(data)),
            max_rows=max(settings.import_max_rows, count),
            max_cell_chars=settings.import_max_cell_chars,
        )
        measured: dict[str, Any] = {"rows": count, "bytes": len(data), "targets_rows_per_s": IMPORT_TARGETS}

        measured["read"] = {}
        with _stopwatch(measured["read"], count):
            table = read_table(data, filename=IMPORT_FILE, limits=limits)
        if len(table.rows) != count:
            raise SystemExit(f"import read: expected {count:,} rows, read {len(table.rows):,}")

        async def preview() -> ImportReport:
            async with unit_of_work(database, actor) as uow:
                return await preview_import(uow, Product, table, file_name=IMPORT_FILE, file_hash=digest)

        async def confirm() -> ImportReport:
            async with unit_of_work(database, actor) as uow:
                report = await confirm_import(
                    uow, Product, table, file_name=IMPORT_FILE, file_hash=digest, expected_hash=digest
                )
                await uow.commit()
                return report

        steps: tuple[tuple[str, Callable[[], Awaitable[ImportReport]], str], ...] = (
            ("preview", preview, "new"),
            ("confirm", confirm, "new"),
            ("preview_unchanged", preview, "unchanged"),
        )
        for step, work, status in steps:
            measured[step] = {}
            with _stopwatch(measured[step], count):
                report = await work()
            _expect(report, status, count, step)
            print(f"  import {step}: {measured[step]['rows_per_s']:,.0f} rows/s", flush=True)
            if step == "confirm":
                audited = await _sql(
                    url, "SELECT count(*) AS n FROM audit_entry WHERE import_id = $1", report.import_id
                )
                measured["audit_entries"] = audited[0]["n"]
                if measured["audit_entries"] != count + 1:  # one per product, and one for the file
                    raise SystemExit(
                        f"import confirm: {measured['audit_entries']:,} audit entries for {count:,} products"
                    )
        records = [
            (sku, name, description, Decimal(price), int(stock), status, category_ids[slug])
            for sku, name, description, price, stock, status, slug, _tags in rows
        ]
        measured["copy"] = await _import_copy_floor(url, records)
    finally:
        await database.dispose()
    copy_rate = measured["copy"]["rows_per_s"]
    for step in ("read", "preview", "confirm", "preview_unchanged"):
        measured[step]["ratio_to_copy"] = measured[step]["rows_per_s"] / copy_rate
    measured["read_and_confirm_rows_per_s"] = count / (
        measured["read"]["total_s"] + measured["confirm"]["total_s"]
    )
    measured["targets_met"] = {
        "confirm": measured["confirm"]["rows_per_s"] >= IMPORT_TARGETS["confirm"],
        "preview": measured["preview"]["rows_per_s"] >= IMPORT_TARGETS["preview"],
        "preview_unchanged": measured["preview_unchanged"]["rows_per_s"] >= IMPORT_TARGETS["preview"],
    }
    return measured


async def _import_copy_floor(url: str, records: list[tuple[Any, ...]]) -> dict[str, float]:
    """`COPY ... FROM STDIN` of the imported rows (category ids resolved beforehand) into a scratch copy
    of the product table, indexes and constraints included; dropped after."""
    connection = await asyncpg.connect(url)
    try:
        await connection.execute("CREATE TABLE product_import_floor (LIKE product INCLUDING ALL)")
        try:
            started = time.perf_counter()
            async with connection.transaction():
                await connection.copy_records_to_table(
                    "product_import_floor", records=records, columns=list(IMPORT_FLOOR_COLUMNS)
                )
            elapsed = time.perf_counter() - started
        finally:
            await connection.execute("DROP TABLE product_import_floor")
    finally:
        await connection.close()
    return {"total_s": elapsed, "rows_per_s": len(records) / elapsed}


# Report ---------------------------------------------------------------------------------


def _report(results: dict[str, Any]) -> None:
    when = "after VACUUM ANALYZE"
    if results["right_after_seed"]:
        when = "right after the seed (its own ANALYZE only)"
    print(f"\nCustodian benchmark, {results['products']:,} products, {when}, {results['date']}")
    if "custodian" in results:  # not with --only
        _report_pages(results)
    seed = results["seed"]
    print(
        f"seed: {seed['seed_rows_per_s']:,.0f} rows/s; raw COPY of the same rows: "
        f"{seed['raw_copy_rows_per_s']:,.0f} rows/s; ratio {seed['ratio']:.2f}"
    )
    if "export" in results:
        _report_export(results["export"])
    if "import" in results:
        _report_import(results["import"])


def _report_pages(results: dict[str, Any]) -> None:
    ours, stock = results["custodian"], results["stock_sqladmin"]
    columns = (
        ("median ms", 10),
        ("p95 ms", 9),
        ("req/s x8", 10),
        ("stmts", 7),
        ("SQLAdmin ms", 13),
        ("x faster", 10),
    )
    print(f"{'page':<22}" + "".join(f"{title:>{width}}" for title, width in columns))
    for name, row in ours.items():
        base = stock.get(name)
        faster = f"{base['median_ms'] / row['median_ms']:.1f}" if base else "-"
        base_ms = f"{base['median_ms']:.0f}" if base else "-"
        print(
            f"{name:<22}{row['median_ms']:>10.1f}{row['p95_ms']:>9.1f}{row['throughput_8_clients_rps']:>10.0f}"
            f"{row['statements'] or '-':>7}{base_ms:>13}{faster:>10}"
        )
    deep, first = ours["deep page (~500k)"]["median_ms"], ours["list page 1"]["median_ms"]
    print(f"deep page / page 1: {deep / first:.2f}x")
    dashboard = ours["dashboard"]["median_ms"]
    print(f"dashboard / list page 1: {dashboard / first:.2f}x (issue 13: within 2x)")
    _report_floor(results["database_floor"])
    if "profile" in results:
        _report_profile(results["profile"])
    if "throughput" in results:
        _report_throughput(results["throughput"])
    floor = results["search_floor"]
    print(f"{'search':<22}{'matches':>10}{'ours ms':>10}{'floor ms':>10}{'x below floor':>15}{'x stock':>9}")
    for name, row in floor.items():
        mine, theirs = ours[name]["median_ms"], stock[name]["median_ms"]
        print(
            f"{name:<22}{row['matches']:>10,}{mine:>10.1f}{row['median_ms']:>10.1f}"
            f"{row['median_ms'] / mine:>15.2f}{theirs / mine:>9.1f}"
        )
    print(
        "(floor: the exact ILIKE count of the matches with our indexes, raw asyncpg; "
        "targets: 3x below it, 10x faster than stock SQLAdmin)"
    )
    raw = results["raw_search"]
    search = ours["search (~1%)"]["median_ms"]
    unindexed = raw["median_ms_without_search_index"]
    print(
        f"search vs raw asyncpg exact-count ILIKE (no search index): {unindexed:.0f} ms, "
        f"{unindexed / search:.1f}x faster "
        f"(with our trigram index the same raw SQL takes {raw['median_ms_with_indexes']:.0f} ms)"
    )


def _report_floor(floor: dict[str, dict[str, Any]]) -> None:
    print(f"{'database floor':<22}{'page ms':>10}{'SQL ms':>9}{'SQL share':>11}{'stmts':>7}")
    for name, row in floor.items():
        print(
            f"{name:<22}{row['page_ms']:>10.1f}{row['sql_ms']:>9.2f}{row['sql_share']:>11.0%}"
            f"{row['statements']:>7}"
        )
    print(
        "(SQL ms: the page's own statements, captured from the admin, run in order through raw asyncpg; "
        "page ms: the median over HTTP above)"
    )


def _report_profile(profile: dict[str, Any]) -> None:
    print(
        f"profile of {profile['path']}, in process, {profile['requests']} requests, "
        f"{profile['ms_per_request']:.1f} ms and {profile['cpu_ms_per_request']:.1f} ms CPU per request, "
        f"{profile['samples']:,} stack samples:"
    )
    for name, row in profile["groups"].items():
        print(f"  {name:<44}{row['share']:>6.0%}{row['ms']:>8.1f} ms")
    print("  top cumulative (share of samples with the function on the stack):")
    for row in profile["cumulative"]:
        print(f"    {row['share']:>5.0%}{row['ms']:>7.1f} ms  {row['function']}")


def _report_throughput(throughput: dict[str, dict[str, float]]) -> None:
    print("list page 1, requests/s (manage.py runserver; the clients run on the same 2 cores):")
    for workers, row in throughput.items():
        print(f"  {workers:<10}" + "".join(f"{clients}: {rps:>6.0f}   " for clients, rps in row.items()))


def _report_export(export: dict[str, Any]) -> None:
    csv_export, xlsx_export = export["csv"], export["xlsx"]
    print(
        f"export CSV: {csv_export['rows']:,} rows in {csv_export['total_s']:.1f} s, "
        f"{csv_export['rows_per_s']:,.0f} rows/s, first byte {csv_export['first_byte_s']:.2f} s, "
        f"peak RSS {csv_export['peak_rss_mb']:.0f} MB, server CPU {csv_export['server_cpu_s']:.1f} s; "
        "COPY of the same query "
        f"{csv_export['copy_rows_per_s']:,.0f} rows/s; ratio {csv_export['ratio_to_copy']:.2f}"
    )
    print(
        f"export XLSX: {xlsx_export['rows_per_s']:,.0f} rows/s, {xlsx_export['total_s']:.1f} s, "
        f"first byte {xlsx_export['first_byte_s']:.2f} s, peak RSS {xlsx_export['peak_rss_mb']:.0f} MB, "
        f"server CPU {xlsx_export['server_cpu_s']:.1f} s"
    )


def _report_import(measured: dict[str, Any]) -> None:
    copy = measured["copy"]["rows_per_s"]
    print(
        f"import of {measured['rows']:,} new products from CSV ({measured['bytes'] / 2**20:.1f} MB) as the "
        f"system actor; COPY of the same rows into a product-shaped table: {copy:,.0f} rows/s"
    )
    print(f"  {'step':<30}{'rows/s':>10}{'s':>8}{'CPU s':>8}{'/ COPY':>8}  target")
    steps = (
        ("read (read_table)", "read", None),
        ("preview, all rows new", "preview", "preview"),
        ("confirm with its commit", "confirm", "confirm"),
        ("preview again, all unchanged", "preview_unchanged", "preview"),
    )
    for label, step, target in steps:
        row = measured[step]
        verdict = ""
        if target is not None:
            met = measured["targets_met"][step]
            verdict = f"{measured['targets_rows_per_s'][target]:,}: {'met' if met else 'NOT met'}"
        print(
            f"  {label:<30}{row['rows_per_s']:>10,.0f}{row['total_s']:>8.2f}{row['bench_cpu_s']:>8.2f}"
            f"{row['ratio_to_copy']:>8.3f}  {verdict}"
        )
    print(
        f"  read + confirm: {measured['read_and_confirm_rows_per_s']:,.0f} rows/s; "
        f"audit entries of the import: {measured['audit_entries']:,}"
    )


if __name__ == "__main__":
    raise SystemExit(main())
