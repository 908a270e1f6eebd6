"""Importing a file from the admin: upload, preview (writes nothing), confirm (all or nothing), audited.

Every route answers by the role's `<table>.import` permission; the kept upload is its user's only,
is claimed by one confirm, and must be the file the preview saw; the upload alone takes a file part,
capped at IMPORT_MAX_BYTES.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from starlette.applications import Starlette

from admin.app import create_app
from admin.import_uploads import UploadGone, UploadStore
from backend.auth.permissions import BUILTIN_ROLES
from backend.config import Settings
from backend.db.session import Database
from backend.models import AuditEntry, Permission, Product, Role, Tag
from backend.models.rbac import role_permission
from tests.admin.conftest import ClientFactory, client_for, page_token, sign_in
from tests.factories import make_category, make_product, make_tag, make_user, unique

PRODUCT_HEADER = "SKU,Name,Price,Stock,Status,Category,Tags\n"
AppFactory = Callable[..., Starlette]


@pytest.fixture
def make_app(
    settings: Settings, engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession], tmp_path: Path
) -> AppFactory:
    """Apps over the test transaction, keeping uploads under the test's own directory."""

    def build(**overrides: Any) -> Starlette:
        local = settings.model_copy(update={"job_files_dir": tmp_path / "jobs", **overrides})
        return create_app(local, database=Database(local, engine=engine, sessions=sessions))

    return build


@pytest.fixture
def app(make_app: AppFactory) -> Starlette:
    return make_app()


async def upload(
    client: httpx.AsyncClient,
    content: bytes,
    *,
    identity: str = "product",
    name: str = "file.csv",
    key: str = "sku",
) -> httpx.Response:
    token = await page_token(client)
    return await client.post(
        f"/admin/{identity}/import/upload",
        data={"csrf_token": token, "key": key},
        files={"file": (name, content, "text/csv")},
    )


def kept_upload(preview: httpx.Response) -> tuple[str, str]:
    """The token and hash the preview's confirm form posts."""
    token = re.search(r'name="token" value="([^"]+)"', preview.text)
    digest = re.search(r'name="file_hash" value="([^"]+)"', preview.text)
    assert token and digest, f"no confirm form on the page ({preview.status_code})"
    return token.group(1), digest.group(1)


async def confirm(
    client: httpx.AsyncClient,
    token: str,
    digest: str,
    *,
    identity: str = "product",
    skip_errors: bool = False,
) -> httpx.Response:
    data = {"csrf_token": await page_token(client), "token": token, "file_hash": digest}
    if skip_errors:
        data["skip_errors"] = "yes"
    return await client.post(f"/admin/{identity}/import/confirm", data=data)


async def count(session: AsyncSession, model: Any) -> int:
    return int(await session.scalar(select(func.count()).select_from(model)) or 0)


def page_message(response: httpx.Response) -> str:
    found = re.search(r'id="(?:import-error|error-message)"[^>]*>([^<]+)<', response.text)
    return found.group(1).strip() if found else ""


def rows_shown(response: httpx.Response) -> dict[int, str]:
    """Row number -> status, as the preview table shows them."""
    return {
        int(n): s for s, n in re.findall(r'class="import-row import-(\w+)" data-row="(\d+)"', response.text)
    }


async def products_csv(session: AsyncSession) -> tuple[bytes, int, str]:
    """A file with a new product, a changed one (priced 9.99, now 7.25: its id is returned) and one
    whose price is refused (row 4)."""
    category = await make_category(session)
    product = await make_product(session, category_id=category.id, price=Decimal("9.99"))
    await session.commit()
    new_sku = unique("IMP-")
    content = (
        PRODUCT_HEADER
        + f"{new_sku},Imported lamp,12.50,4,active,{category.slug},\n"
        + f"{product.sku},{product.name},7.25,{product.stock},active,{category.slug},\n"
        + f"{unique('BAD-')},Broken,-1,1,active,{category.slug},\n"
    )
    return content.encode(), product.id, new_sku


# Preview and confirm ---------------------------------------------------------------------------------


async def test_preview_shows_each_row_and_writes_nothing(
    new_client: ClientFactory, session: AsyncSession
) -> None:
    content, product_id, new_sku = await products_csv(session)
    manager = await new_client(roles=["manager"])
    products, entries = await count(session, Product), await count(session, AuditEntry)

    preview = await upload(manager, content.replace(b"Tags\n", b"Tags,Colour\n", 1))

    assert preview.status_code == 200, page_message(preview)
    assert rows_shown(preview) == {4: "error", 3: "changed", 2: "new"}  # errors first, then changes
    assert list(rows_shown(preview)) == [4, 3, 2]
    totals = dict(re.findall(r'data-total="(\w+)">(\d+)<', preview.text))
    assert totals == {"new": "1", "changed": "1", "unchanged": "0", "error": "1"}
    error_row = preview.text.split('data-row="4"')[1].split("</tr>")[0]
    assert 'data-field="Price"' in error_row
    change_row = preview.text.split('data-row="3"')[1].split("</tr>")[0]
    assert "9.99" in change_row and "7.25" in change_row
    assert "Not imported: Colour." in preview.text
    assert await count(session, Product) == products and await count(session, AuditEntry) == entries
    session.expire_all()
    assert await session.scalar(select(Product.price).where(Product.id == product_id)) == Decimal("9.99")
    assert await session.scalar(select(func.count()).where(Product.sku == new_sku)) == 0


async def test_confirm_is_all_or_nothing_then_skips_the_rows_with_errors(
    new_client: ClientFactory, session: AsyncSession
) -> None:
    content, product_id, new_sku = await products_csv(session)
    manager = await new_client(roles=["manager"])
    token, digest = kept_upload(await upload(manager, content, name="spring.csv"))
    products, entries = await count(session, Product), await count(session, AuditEntry)

    refused = await confirm(manager, token, digest)

    assert refused.status_code == 400
    assert page_message(refused).startswith("Nothing was imported: 1 row has errors.")
    assert await count(session, Product) == products and await count(session, AuditEntry) == entries

    done = await confirm(manager, token, digest, skip_errors=True)  # the same upload, kept for this

    assert done.status_code == 303 and done.headers["location"].endswith("/admin/product/list")
    listing = await manager.get(done.headers["location"])
    assert re.search(
        r"Imported spring\.csv: 1 new, 1 changed, 0 unchanged \(import [0-9a-f]{8}…\)\.", listing.text
    )
    assert "1 row with errors skipped." in listing.text
    assert "flash-link" not in listing.text  # a manager does not read the audit log: no link there
    session.expire_all()
    assert await count(session, Product) == products + 1
    assert await session.scalar(select(Product.price).where(Product.id == product_id)) == Decimal("7.25")
    assert await session.scalar(select(func.count()).where(Product.sku == new_sku)) == 1
    file_entry = select(AuditEntry).where(
        AuditEntry.action == "import", AuditEntry.object_repr == "spring.csv"
    )
    summary = (await session.execute(file_entry)).scalar_one()
    assert summary.import_id and summary.changes["skipped_errors"] == 1
    written = await session.scalar(select(func.count()).where(AuditEntry.import_id == summary.import_id))
    assert written == 3  # the new product, the changed one, the file

    again = await confirm(manager, token, digest, skip_errors=True)
    assert again.status_code == 404 and "no longer available" in page_message(again)
    assert await count(session, Product) == products + 1


async def test_rows_update_the_record_their_key_names(
    new_client: ClientFactory, session: AsyncSession
) -> None:
    tag_id = (await make_tag(session, name=unique("keyed-"))).id
    await session.commit()
    editor = await new_client(roles=["editor"])
    renamed = unique("renamed-")

    by_id = await upload(editor, f"ID,Name\n{tag_id},{renamed}\n".encode(), identity="tag", key="id")
    assert by_id.status_code == 200, page_message(by_id)
    assert rows_shown(by_id) == {2: "changed"}
    done = await confirm(editor, *kept_upload(by_id), identity="tag")
    assert done.status_code == 303
    session.expire_all()
    assert await session.scalar(select(Tag.name).where(Tag.id == tag_id)) == renamed

    # Matched by the natural key (a tag's name): the same tag, unchanged.
    by_name = await upload(editor, f"Name\n{renamed}\n".encode(), identity="tag", key="name")
    assert rows_shown(by_name) == {2: "unchanged"}

    no_key_column = await upload(editor, b"Name\nx\n", identity="tag", key="id")
    assert no_key_column.status_code == 400
    assert page_message(no_key_column) == "The file has no ID column to match rows by."


async def test_a_bad_file_shows_the_upload_form_again_with_the_reason(new_client: ClientFactory) -> None:
    manager = await new_client(roles=["manager"])
    for content, name in (
        (b"", "empty.csv"),
        (b"%PDF-1.7 not a table", "scan.pdf"),
        (b"SKU,SKU\nA,B\n", "twice.csv"),
    ):
        response = await upload(manager, content, name=name)
        assert response.status_code == 400, (name, response.status_code)
        assert page_message(response), name
        assert 'id="import-upload-form"' in response.text
    missing = await manager.post(
        "/admin/product/import/upload", data={"csrf_token": await page_token(manager), "key": "sku"}
    )
    assert missing.status_code == 400 and page_message(missing) == "Choose a file to import."


async def test_another_users_upload_cannot_be_confirmed(
    new_client: ClientFactory, session: AsyncSession
) -> None:
    content, _product_id, new_sku = await products_csv(session)
    owner = await new_client(roles=["manager"])
    other = await new_client(roles=["manager"])
    token, digest = kept_upload(await upload(owner, content))

    stolen = await confirm(other, token, digest, skip_errors=True)
    assert stolen.status_code == 404 and "not uploaded by you" in page_message(stolen)
    elsewhere = await confirm(owner, token, digest, identity="tag", skip_errors=True)  # another model's route
    assert elsewhere.status_code == 404
    for forged in ("", "../../etc/passwd", "x" * 43, token[:-1] + ("A" if token[-1] != "A" else "B")):
        assert (await confirm(owner, forged, digest)).status_code == 404, forged
    session.expire_all()
    assert await session.scalar(select(func.count()).where(Product.sku == new_sku)) == 0

    assert (await confirm(owner, token, digest, skip_errors=True)).status_code == 303  # still the owner's


async def test_a_file_other_than_the_previewed_one_is_refused(
    new_client: ClientFactory, session: AsyncSession
) -> None:
    content, _product_id, new_sku = await products_csv(session)
    manager = await new_client(roles=["manager"])
    token, _digest = kept_upload(await upload(manager, content))

    response = await confirm(manager, token, "0" * 64, skip_errors=True)

    assert response.status_code == 409
    assert "not the one that was previewed" in page_message(response)
    session.expire_all()
    assert await session.scalar(select(func.count()).where(Product.sku == new_sku)) == 0


def race_two_claims(store: UploadStore, token: str) -> list[str]:
    """Two threads claim `token` at the same moment; what each got."""
    start = threading.Barrier(2)
    outcomes: list[str] = []

    def claim() -> None:
        start.wait()
        try:
            store.claim(token, user_id=1, table="tag")
            outcomes.append("claimed")
        except UploadGone:
            outcomes.append("gone")

    threads = [threading.Thread(target=claim) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcomes


def test_of_two_claims_of_one_upload_only_one_succeeds(tmp_path: Path) -> None:
    """The claim is a rename: however two confirms interleave, one of them gets the file."""
    store = UploadStore(tmp_path)
    for _attempt in range(20):
        info = store.store(b"Name\nx\n", user_id=1, table="tag", file_name="t.csv", file_hash="h", key="name")
        assert sorted(race_two_claims(store, info.token)) == ["claimed", "gone"]


# Limits and the multipart guard ----------------------------------------------------------------------


async def test_a_file_over_the_limit_is_refused_with_413(make_app: AppFactory, session: AsyncSession) -> None:
    app = make_app(import_max_bytes=1024)
    user = await make_user(session, roles=["manager"])
    await session.commit()
    async with client_for(app) as client:
        assert (await sign_in(client, user.username)).status_code == 302
        products = await count(session, Product)
        just_over = await upload(client, PRODUCT_HEADER.encode() + b"x" * 1024)
        assert just_over.status_code == 413
        assert page_message(just_over).startswith("The file is larger than the import limit of 1 KB")
        assert 'id="import-upload-form"' in just_over.text
        # A body far over the limit is refused before it is read whole.
        far_over = await upload(client, b"x" * (1024 + 128 * 1024))
        assert far_over.status_code == 413 and "IMPORT_MAX_BYTES" in far_over.text
        assert await count(session, Product) == products


@pytest.mark.parametrize(
    "path", ["/admin/product/import/confirm", "/admin/product/import", "/admin/product/create"]
)
async def test_a_file_part_is_refused_everywhere_but_the_upload(new_client: ClientFactory, path: str) -> None:
    manager = await new_client(roles=["manager"])
    token = await page_token(manager)
    response = await manager.post(
        path,
        data={"csrf_token": token, "token": "x", "name": "x"},
        files={"file": ("a.csv", b"Name\nx\n", "text/csv")},
    )
    assert response.status_code == 400 and "takes no files" in response.text


def multipart(fields: dict[str, str], file_name: str, content: bytes) -> tuple[bytes, str]:
    """A multipart body written by hand: httpx percent-encodes what a hostile client would send raw."""
    boundary = "import-test-boundary"
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
        for name, value in fields.items()
    ]
    head = f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{file_name}"\r\n'
    parts.append(head.encode() + b"Content-Type: text/csv\r\n\r\n" + content + b"\r\n")
    return b"".join(parts) + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


async def test_nul_in_the_upload_form_is_refused(new_client: ClientFactory) -> None:
    manager = await new_client(roles=["manager"])
    token = await page_token(manager)
    for key, name in (("sku\x00", "a.csv"), ("sku", "a\x00.csv")):
        body, content_type = multipart({"csrf_token": token, "key": key}, name, b"SKU\nA\n")
        response = await manager.post(
            "/admin/product/import/upload", content=body, headers={"content-type": content_type}
        )
        assert response.status_code == 400 and "NUL character" in response.text, repr(name)


async def test_every_import_post_needs_the_csrf_token(
    new_client: ClientFactory, session: AsyncSession
) -> None:
    content, _product_id, _sku = await products_csv(session)
    manager = await new_client(roles=["manager"])
    token, digest = kept_upload(await upload(manager, content))
    products = await count(session, Product)

    no_token = await manager.post(
        "/admin/product/import/upload", data={"key": "sku"}, files={"file": ("p.csv", content, "text/csv")}
    )
    assert no_token.status_code == 403 and "security token" in page_message(no_token)
    unconfirmed = await manager.post(
        "/admin/product/import/confirm", data={"token": token, "file_hash": digest, "skip_errors": "yes"}
    )
    assert unconfirmed.status_code == 403
    assert await count(session, Product) == products


# Permissions -------------------------------------------------------------------------------------------


async def _codenames(session: AsyncSession, role: str) -> set[str]:
    stmt = (
        select(Permission.codename)
        .join(role_permission, role_permission.c.permission_id == Permission.id)
        .join(Role, Role.id == role_permission.c.role_id)
        .where(Role.name == role)
    )
    return set((await session.execute(stmt)).scalars())


@pytest.mark.parametrize("role", sorted(BUILTIN_ROLES))
async def test_each_import_route_answers_by_the_import_permission(
    role: str, new_client: ClientFactory, session: AsyncSession
) -> None:
    held = await _codenames(session, role)
    client = await new_client(roles=[role])
    expected_by_role = {
        "manager": {"product", "customer"},
        "editor": {"product"},
        "viewer": set(),
        "auditor": set(),
    }
    found: list[str] = []
    for identity, table in (("product", "product"), ("customer", "customer"), ("user", "user")):
        allowed = f"{table}.import" in held
        assert allowed == (identity in expected_by_role[role]), (role, identity)
        entries = await count(session, AuditEntry)
        listing = await client.get(f"/admin/{identity}/list")
        if listing.status_code == 200 and ('id="import-file"' in listing.text) != allowed:
            found.append(f"{identity} list: Import button shown={not allowed}")
        form = await client.get(f"/admin/{identity}/import/upload")
        posted = await upload(client, b"ID,Name\n,x\n", identity=identity, key="id")
        claimed = await confirm(client, "A" * 43, "0" * 64, identity=identity)
        for what, response, ok in (("form", form, 200), ("upload", posted, 200), ("confirm", claimed, 404)):
            want = ok if allowed else 403
            if response.status_code != want:
                found.append(f"{identity} {what}: {response.status_code}, expected {want}")
            if not allowed and f"{table}.import" not in page_message(response):
                found.append(f"{identity} {what}: the refusal does not name {table}.import")
        assert await count(session, AuditEntry) == entries  # the previews and refusals wrote nothing
    assert not found, f"{role}:\n" + "\n".join(found)


async def test_the_upload_form_shows_the_limits_and_the_columns(new_client: ClientFactory) -> None:
    editor = await new_client(roles=["editor"])
    page = await editor.get("/admin/product/import/upload")
    assert page.status_code == 200
    columns = re.findall(r'class="import-column"><td[^>]*>([^<]+)<', page.text)
    assert columns[:3] == ["ID", "SKU", "Name"] and "Category" in columns and "Tags" in columns
    assert "at most 50 MB and 200,000 rows" in page.text
    assert re.search(r'value="sku"\s+checked', page.text) and 'value="id"' in page.text
    assert 'accept=".csv,.xlsx,.json"' in page.text


# The audit log -------------------------------------------------------------------------------------------


async def test_the_audit_log_finds_an_import_by_its_id(
    new_client: ClientFactory, session: AsyncSession
) -> None:
    first, second = unique("imported-"), unique("imported-")
    editor = await new_client(roles=["editor"])
    preview = await upload(editor, f"Name\n{first}\n{second}\n".encode(), identity="tag", key="name")
    token, digest = kept_upload(preview)
    done = await confirm(editor, token, digest, identity="tag")
    assert done.status_code == 303
    latest = select(AuditEntry.import_id).where(AuditEntry.action == "import").order_by(AuditEntry.id.desc())
    import_id = (await session.execute(latest)).scalars().first()
    assert import_id

    auditor = await new_client(roles=["auditor"])
    log = await auditor.get(f"/admin/audit-log?import_id={import_id.upper()}")
    assert log.status_code == 200
    assert log.text.count('class="audit-row"') == 3  # two tags and the file
    assert first in log.text and second in log.text
    assert log.text.count(f'data-import-id="{import_id}"') == 3
    by_action = await auditor.get(f"/admin/audit-log?action=import&import_id={import_id}")
    assert by_action.text.count('class="audit-row"') == 1
    assert f'<td colspan="2" class="text-break">{digest}</td>' in by_action.text  # the file's entry, as text
    exported = await auditor.get(f"/admin/audit-log/export?import_id={import_id}")
    assert exported.text.count(import_id) == 3

    tag_id = await session.scalar(select(Tag.id).where(Tag.name == first))
    history = await auditor.get(f"/admin/history/tag/{tag_id}")
    assert f'href="http://testserver/admin/audit-log?import_id={import_id}"' in history.text

    for bad in ("nope", "Call-zq7x-to-unlock", "{" + import_id + "}", import_id.replace("-", ""), "١" * 32):
        refused = await auditor.get("/admin/audit-log", params={"import_id": bad})
        assert refused.status_code == 400, bad
        assert "import_id must be an id like" in page_message(refused)
        assert "zq7x" not in refused.text


async def test_whoever_reads_the_audit_log_gets_a_link_to_the_import(
    new_client: ClientFactory, session: AsyncSession
) -> None:
    """Whoever may read the audit log finds the import there from the message's link."""
    importer = await new_client(roles=["editor", "auditor"])
    name = unique("linked-")
    preview = await upload(importer, f"Name\n{name}\n".encode(), identity="tag", key="name")
    done = await confirm(importer, *kept_upload(preview), identity="tag")
    listing = await importer.get(done.headers["location"])
    link = re.search(r'class="text-reset fw-bold flash-link" href="([^"]+)"', listing.text)
    assert link and "/admin/audit-log?import_id=" in link.group(1)
    log = await importer.get(link.group(1).replace("&amp;", "&"))
    assert log.status_code == 200 and name in log.text


@pytest.mark.postgres
async def test_a_file_over_the_job_threshold_is_imported_by_a_job(
    make_app: AppFactory, session: AsyncSession
) -> None:
    """A file that large is previewed by a job (tests/admin/test_preview_jobs.py); one previewed here
    while the threshold was higher is still imported by a job when confirmed above it."""
    app = make_app(job_threshold_rows=1)
    user = await make_user(session, roles=["manager"])
    content, _product_id, new_sku = await products_csv(session)
    good_rows = b"\n".join(line for line in content.split(b"\n") if b"BAD-" not in line)
    async with client_for(make_app()) as previewing:
        assert (await sign_in(previewing, user.username)).status_code == 302
        token, digest = kept_upload(await upload(previewing, good_rows))
    async with client_for(app) as client:
        assert (await sign_in(client, user.username)).status_code == 302
        products = await count(session, Product)

        answer = await confirm(client, token, digest)

        assert answer.status_code == 303 and "/admin/jobs/" in answer.headers["location"]
        job_page = await client.get(answer.headers["location"])
        assert job_page.status_code == 200 and "being imported as a job" in job_page.text
    # Queued for `manage.py worker`: nothing is written by the request itself.
    assert await count(session, Product) == products
    assert await session.scalar(select(func.count()).select_from(Product).where(Product.sku == new_sku)) == 0
