"""`manage.py export` and `manage.py import`, through the real CLI entry, on both databases."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import re
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from openpyxl import load_workbook
from sqlalchemy import func, select

from backend.auth.actor import Actor
from backend.db.session import Database
from backend.db.uow import unit_of_work
from backend.models import AuditEntry, Product, ProductStatus
from tests.cli.conftest import Runner
from tests.databases import make_settings
from tests.factories import make_category, make_order, make_product, make_tag

PRODUCT_HEADERS = ["ID", "SKU", "Name", "Description", "Price", "Stock", "Status", "Category", "Tags"]


@pytest.fixture
def db_url(cli: Runner, fresh_url: str) -> str:
    assert cli("migrate", url=fresh_url).code == 0
    return fresh_url


async def _catalog(url: str) -> None:
    """Garden: a lamp (active, tagged eco) and a spade (draft); Kitchen: a kettle (active); two orders."""
    database = Database(make_settings(url))
    try:
        async with unit_of_work(database, Actor.system("setup"), audit=False) as uow:
            garden = await make_category(uow.session, name="Garden", slug="garden")
            kitchen = await make_category(uow.session, name="Kitchen", slug="kitchen")
            eco = await make_tag(uow.session, name="eco")
            lamp = await make_product(
                uow.session, sku="LAMP-1", name="Lamp", price=Decimal("12.50"), category_id=garden.id
            )
            await uow.session.refresh(lamp, ["tags"])
            lamp.tags = [eco]
            await make_product(
                uow.session, sku="SPADE-1", name="Spade", status=ProductStatus.DRAFT, category_id=garden.id
            )
            await make_product(uow.session, sku="KETTLE-1", name="Kettle", category_id=kitchen.id)
            await make_order(uow.session, items=2)
            await make_order(uow.session, items=1)
            await uow.commit()
    finally:
        await database.dispose()


async def _products(url: str) -> dict[str, tuple[Decimal, int, str]]:
    database = Database(make_settings(url))
    try:
        async with database.sessions() as session:
            rows = await session.execute(select(Product.sku, Product.price, Product.stock, Product.name))
            return {sku: (price, stock, name) for sku, price, stock, name in rows}
    finally:
        await database.dispose()


async def _audit(url: str, import_id: str) -> list[tuple[str, str]]:
    database = Database(make_settings(url))
    try:
        async with database.sessions() as session:
            rows = await session.execute(
                select(AuditEntry.action, AuditEntry.actor_name).where(AuditEntry.import_id == import_id)
            )
            return sorted((action, actor) for action, actor in rows)
    finally:
        await database.dispose()


async def _entries(url: str) -> int:
    database = Database(make_settings(url))
    try:
        async with database.sessions() as session:
            return int(await session.scalar(select(func.count()).select_from(AuditEntry)) or 0)
    finally:
        await database.dispose()


def _csv(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text)))


def _write_csv(path: Path, rows: list[list[Any]]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as file:
        csv.writer(file).writerows(rows)
    return path


def test_export_writes_each_format_with_filters(cli: Runner, db_url: str, tmp_path: Path) -> None:
    asyncio.run(_catalog(db_url))

    to_csv = cli(
        "export", "product", "--filter", "category=garden", "-o", str(tmp_path / "p.csv"), url=db_url
    )
    assert to_csv.code == 0, to_csv.err
    rows = _csv((tmp_path / "p.csv").read_text(encoding="utf-8"))
    assert rows[0] == PRODUCT_HEADERS
    assert sorted(row[1] for row in rows[1:]) == ["LAMP-1", "SPADE-1"]
    assert re.fullmatch(r"Exported 2 products to \S+p\.csv in \d+\.\d s \([\d,]+ rows/s\)\n", to_csv.err), (
        to_csv.err
    )
    assert to_csv.out == ""

    # JSON to stdout; two filters narrow together, a field named by its header in any case.
    to_json = cli(
        "export", "product", "--format", "json", "--filter", "CATEGORY=garden", "--filter", "status=active",
        url=db_url,
    )  # fmt: skip
    assert to_json.code == 0, to_json.err
    assert [(row["SKU"], row["Tags"], row["Price"]) for row in json.loads(to_json.out)] == [
        ("LAMP-1", ["eco"], "12.50")
    ]
    assert "Exported 1 product to standard output" in to_json.err

    # XLSX by the output's extension; a filter on several references (tags) and on a price.
    book = tmp_path / "tagged.xlsx"
    to_xlsx = cli(
        "export", "product", "--filter", "tags=eco", "--filter", "price=12.5", "-o", str(book), url=db_url
    )
    assert to_xlsx.code == 0, to_xlsx.err
    sheet = load_workbook(book, read_only=True).active
    assert sheet is not None
    cells = [list(row) for row in sheet.iter_rows(values_only=True)]
    assert cells[0] == PRODUCT_HEADERS and [row[1] for row in cells[1:]] == ["LAMP-1"]

    # A related record by its id works as well as by its key.
    garden_id = _csv(cli("export", "category", "--filter", "slug=garden", url=db_url).out)[1][0]
    by_id = cli("export", "product", "--filter", f"category={garden_id}", url=db_url)
    assert by_id.code == 0 and sorted(row[1] for row in _csv(by_id.out)[1:]) == ["LAMP-1", "SPADE-1"]
    empty = cli("export", "tag", "--filter", "name=nothing", url=db_url)
    assert empty.code == 0 and _csv(empty.out) == [["ID", "Name"]]


def test_unknown_model_field_format_and_bad_values_are_one_line(
    cli: Runner, db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = cli("export", "gadget", url=db_url)
    assert model.code == 1 and model.no_traceback
    assert model.err == "Error: Unknown model: gadget. Choose one of: " + (
        "category, customer, order, order_item, product, role, tag, user.\n"
    )
    field = cli("export", "product", "--filter", "colour=red", url=db_url)
    assert field.code == 1 and field.err.startswith(
        "Error: No field colour in product files. Filter on one of: ID"
    )
    assert len(field.err.splitlines()) == 1
    price = cli("export", "product", "--filter", "price=cheap", url=db_url)
    assert price.code == 1 and price.err.startswith("Error: Price must be a number"), price.err
    status = cli("export", "product", "--filter", "status=gone", url=db_url)
    assert status.err == "Error: Status is one of draft, active, archived, not gone.\n"
    malformed = cli("export", "product", "--filter", "price", url=db_url)
    assert malformed.code == 2 and "is not FIELD=VALUE" in malformed.err
    form = cli("export", "product", "--format", "xml", url=db_url)
    assert form.code == 2 and "'xml' is not one of 'csv', 'xlsx', 'json'" in form.err
    imported = cli("import", "gadget", str(_write_csv(tmp_path / "g.csv", [["Name"], ["x"]])), url=db_url)
    assert imported.code == 1 and imported.err.startswith("Error: Unknown model: gadget.")
    # A refused export leaves no file behind, not even an empty one.
    assert (
        cli("export", "product", "--filter", "price=x", "-o", str(tmp_path / "p.csv"), url=db_url).code == 1
    )
    assert not [path for path in tmp_path.iterdir() if path.name.startswith(("p.csv", ".p.csv"))]

    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    terminal = cli("export", "product", "--format", "xlsx", url=db_url)
    assert terminal.code == 2 and terminal.err.startswith(
        "Error: An XLSX file is not text: write it with -o FILE"
    )


def test_dry_run_writes_nothing_then_import_is_all_or_nothing(
    cli: Runner, db_url: str, tmp_path: Path
) -> None:
    asyncio.run(_catalog(db_url))
    before, entries = asyncio.run(_products(db_url)), asyncio.run(_entries(db_url))
    file = _write_csv(
        tmp_path / "products.csv",
        [
            ["SKU", "Name", "Price", "Stock", "Status", "Category", "Colour"],
            ["NEW-1", "Rake", "7.00", "4", "active", "garden", "green"],
            ["LAMP-1", "Lamp", "13.00", "10", "active", "garden", ""],
            ["BAD-1", "Broken", "0", "1", "active", "garden", ""],
            ["BAD-2", "Lost", "1.00", "1", "active", "nowhere", ""],
        ],
    )

    dry = cli("import", "product", str(file), "--dry-run", url=db_url)
    assert dry.code == 1, dry.err
    assert dry.out.splitlines()[0] == (
        "products.csv: 1 new, 1 changed, 0 unchanged, 2 with errors (rows matched by sku)."
    )
    assert "Unknown columns, not imported: Colour" in dry.out
    assert "  row 4: Price: " in dry.out and "  row 5: Category: No category named nowhere." in dry.out
    assert "Dry run: nothing was written." in dry.out
    assert dry.err.startswith("Error: The import would write nothing: 2 rows with errors")
    assert asyncio.run(_products(db_url)) == before and asyncio.run(_entries(db_url)) == entries

    refused = cli("import", "product", str(file), url=db_url)
    assert refused.code == 1 and "Import id" not in refused.out
    assert refused.err == (
        "Error: Nothing was imported: 2 rows with errors; "
        "fix them, or pass --skip-errors to import the others.\n"
    )
    assert asyncio.run(_products(db_url)) == before and asyncio.run(_entries(db_url)) == entries

    skipped = cli("import", "product", str(file), "--skip-errors", url=db_url)
    assert skipped.code == 0, skipped.err
    assert "1 new, 1 changed, 0 unchanged, 2 with errors" in skipped.out
    import_id = re.search(r"Import id: (\S+)", skipped.out)
    assert import_id is not None
    after = asyncio.run(_products(db_url))
    assert after["NEW-1"] == (Decimal("7.00"), 4, "Rake") and after["LAMP-1"][0] == Decimal("13.00")
    assert "BAD-1" not in after and "BAD-2" not in after
    audited = asyncio.run(_audit(db_url, import_id.group(1)))
    assert [action for action, _ in audited] == ["create", "import", "update"]
    assert all(actor.startswith("system:") for _, actor in audited)


def test_update_by_key(cli: Runner, db_url: str, tmp_path: Path) -> None:
    asyncio.run(_catalog(db_url))
    kettle_id = (
        cli("export", "product", "--filter", "sku=KETTLE-1", url=db_url).out.splitlines()[1].split(",")[0]
    )

    by_id = _write_csv(tmp_path / "ids.csv", [["ID", "SKU", "Name"], [kettle_id, "KETTLE-2", "Kettle two"]])
    renamed = cli("import", "product", str(by_id), "--key", "id", url=db_url)
    assert renamed.code == 0, renamed.err
    assert "0 new, 1 changed, 0 unchanged, 0 with errors (rows matched by id)" in renamed.out
    assert asyncio.run(_products(db_url))["KETTLE-2"][2] == "Kettle two"

    by_sku = _write_csv(tmp_path / "skus.csv", [["SKU", "Stock"], ["KETTLE-2", "99"]])
    restocked = cli("import", "product", str(by_sku), "--key", "SKU", url=db_url)
    assert restocked.code == 0 and "(rows matched by sku)" in restocked.out, restocked.err
    assert asyncio.run(_products(db_url))["KETTLE-2"][1] == 99

    wrong = cli("import", "product", str(by_sku), "--key", "name", url=db_url)
    assert wrong.code == 1 and wrong.err == "Error: Rows can be matched by id or sku, not by name.\n"


def test_a_bad_file_is_one_line_and_writes_nothing(cli: Runner, db_url: str, tmp_path: Path) -> None:
    entries = asyncio.run(_entries(db_url))
    pdf = tmp_path / "report.pdf"
    pdf.write_bytes(b"%PDF-1.7 not a table")
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    twice = _write_csv(tmp_path / "twice.csv", [["Name"], ["red"], ["red"]])
    for file, message in (
        (pdf, "Error: A .pdf file cannot be imported: imports take CSV (UTF-8), XLSX and JSON files"),
        (empty, "Error: The file is empty."),
        (twice, "Error: Each Name may appear once in a file, but it repeats: rows 2 and 3 (red)."),
    ):
        result = cli("import", "tag", str(file), url=db_url)
        assert result.code == 1 and result.no_traceback, result.err
        assert result.err.startswith(message) and len(result.err.splitlines()) == 1, result.err
    missing = cli("import", "tag", str(tmp_path / "nope.csv"), url=db_url)
    assert missing.code == 2 and "does not exist" in missing.err
    assert asyncio.run(_entries(db_url)) == entries


@pytest.mark.parametrize("model", ["product", "order"])
def test_export_then_import_of_the_same_file_changes_nothing(
    cli: Runner, db_url: str, tmp_path: Path, model: str
) -> None:
    asyncio.run(_catalog(db_url))
    entries = asyncio.run(_entries(db_url))
    for format_ in ("csv", "xlsx", "json"):
        file = tmp_path / f"{model}.{format_}"
        assert cli("export", model, "-o", str(file), url=db_url).code == 0
        again = cli("import", model, str(file), url=db_url)
        assert again.code == 0, again.err
        count = len(_csv(cli("export", model, url=db_url).out)) - 1
        assert f": 0 new, 0 changed, {count} unchanged, 0 with errors" in again.out, (format_, again.out)
    # Each import leaves only its own "import" entry: no record was written.
    assert asyncio.run(_entries(db_url)) == entries + 3
