"""The README's "Adding a model", done literally: two files, two commands, and every battery checked.

The project's working tree is copied; the two code blocks of the section are written to the files
their lines name, the section's commands run with this interpreter against a database of their own
(SQLite, and PostgreSQL when selected), and the real server is driven over HTTP as the roles that
use it. Nothing else in the copy is edited: if a model or view needed a registration, this fails.
"""

from __future__ import annotations

import csv
import html
import io
import re
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.databases import throwaway_database
from tests.serving import running_server
from tests.walkthrough.project import copy_working_tree, environment, lint, manage, readme_walkthrough

MODEL_FILE, VIEW_FILE = "backend/models/supplier.py", "admin/views/supplier.py"
PASSWORD = "walkthrough-password-1234"
USERS = {"manager": "manager", "editor": "editor", "viewer": "viewer"}  # username -> built-in role
EMAIL = "orders@acme.example"
ACTIONS = ("view", "add", "change", "delete", "restore", "purge", "export", "import", "view_pii")
_CSRF = re.compile(r'name="csrf(?:_token|-token)" (?:value|content)="([^"]+)"')


@dataclass(frozen=True)
class Project:
    tree: Path
    env: dict[str, str]
    url: str
    migration: Path
    migrate_output: str


def test_the_readme_shows_two_files_and_two_commands() -> None:
    walkthrough = readme_walkthrough()
    assert set(walkthrough.files) == {MODEL_FILE, VIEW_FILE}
    assert [command[:2] for command in walkthrough.commands] == [
        ["manage.py", "makemigrations"],
        ["manage.py", "migrate"],
    ]
    model = walkthrough.files[MODEL_FILE]
    assert "policy = Policy(" in model
    assert set(re.findall(r"__\w+?__", model)) <= {"__table_args__", "__str__"}  # no policy dunders
    assert "class SupplierAdmin(ServiceModelView, model=Supplier):" in walkthrough.files[VIEW_FILE]


@pytest.fixture(scope="module")
async def walkthrough_database(
    db_backend: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[str]:
    async with throwaway_database(db_backend, tmp_path_factory.mktemp("walkthrough-db")) as url:
        yield url


@pytest.fixture(scope="module")
def project(walkthrough_database: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Project]:
    """The copy with the README's two files and commands applied, its users, and its server running."""
    tree = tmp_path_factory.mktemp("walkthrough") / "custodian"
    copy_working_tree(tree)
    env = environment(tree, walkthrough_database)
    manage(tree, env, "migrate")  # a database at the head, as the section starts from

    walkthrough = readme_walkthrough()
    for path, code in walkthrough.files.items():
        assert not (tree / path).exists(), f"{path} already exists: the walkthrough adds a new module"
        (tree / path).write_text(code, encoding="utf-8")
    lint(tree, list(walkthrough.files))  # the README's code passes the project's own checks
    versions = tree / "migrations" / "versions"
    before = set(versions.glob("*.py"))
    outputs = [manage(tree, env, *command[1:]) for command in walkthrough.commands]
    created = sorted(set(versions.glob("*.py")) - before)
    assert len(created) == 1, f"makemigrations wrote {created}:\n{outputs[0]}"

    manage(tree, env, "createsuperuser", "--username", "root", "--password", PASSWORD, "--no-input")
    for username, role in USERS.items():
        manage(tree, env, "users", "create", "--username", username, "--role", role, "--password", PASSWORD)

    def runserver(port: int) -> list[str]:
        # --traceback: a server that refuses to start shows why in the failure.
        return [sys.executable, "manage.py", "--traceback", "runserver", "--port", str(port)]

    with running_server(runserver, cwd=tree, env=env, log=tree / "server.log") as server:
        yield Project(tree=tree, env=env, url=server.url, migration=created[0], migrate_output=outputs[-1])


@pytest.fixture(scope="module")
def clients(project: Project) -> Iterator[dict[str, httpx.Client]]:
    """One signed-in client per user: root (a superuser) and one per built-in role."""
    signed_in = {username: _sign_in(project.url, username) for username in ("root", *USERS)}
    yield signed_in
    for client in signed_in.values():
        client.close()


def _sign_in(base: str, username: str) -> httpx.Client:
    client = httpx.Client(base_url=base, timeout=30)
    page = client.get("/admin/login")
    response = client.post(
        "/admin/login", data={"username": username, "password": PASSWORD, "csrf_token": _token(page.text)}
    )
    assert response.status_code == 302, f"{username} could not sign in: {response.status_code}"
    return client


def _token(page: str) -> str:
    found = _CSRF.search(page)
    assert found, "no CSRF token on the page"
    return found.group(1)


def _page_token(client: httpx.Client) -> str:
    return _token(client.get("/admin/logout").text)  # the sign-out page asks first: a form


def _flash_after(client: httpx.Client, response: httpx.Response) -> str:
    assert response.status_code in (302, 303), f"{response.status_code}: {response.text[:2000]}"
    return html.unescape(client.get(response.headers["location"]).text)


def _create(client: httpx.Client, name: str, email: str) -> int:
    form = client.get("/admin/supplier/create")
    assert form.status_code == 200
    response = client.post(
        "/admin/supplier/create",
        data={"name": name, "email": email, "csrf_token": _token(form.text), "save": "Save"},
    )
    assert f"Supplier “{name}” was created." in _flash_after(client, response)
    listing = client.get("/admin/supplier/list", params={"search": name})
    found = re.findall(r"/admin/supplier/details/(\d+)", listing.text)
    assert len(set(found)) == 1, f"searching {name!r} found {found}"
    return int(found[0])


def test_makemigrations_writes_a_migration_that_creates_the_supplier_table(project: Project) -> None:
    source = project.migration.read_text(encoding="utf-8")
    assert project.migration.name.endswith("_add_supplier.py")
    assert re.search(r"create_table\(\s*['\"]supplier['\"]", source)
    assert "uq_supplier_email" in source and "ix_supplier_name" in source
    assert "Applied" in project.migrate_output and project.migration.name[:4] in project.migrate_output


def test_permissions_are_generated_and_granted_by_policy(
    project: Project, clients: dict[str, httpx.Client]
) -> None:
    roles_page = clients["root"].get("/admin/role/create")
    assert roles_page.status_code == 200
    for action in ACTIONS:
        assert f"supplier.{action}" in roles_page.text
    granted = _role_permissions(manage(project.tree, project.env, "roles", "list"))
    supplier = {role: {p for p in perms if p.startswith("supplier.")} for role, perms in granted.items()}
    assert supplier["editor"] == {
        "supplier.view",
        "supplier.add",
        "supplier.change",
        "supplier.import",
    }  # a catalog model
    assert supplier["viewer"] == {"supplier.view"}
    assert "supplier.view_pii" in supplier["manager"] and "supplier.purge" not in supplier["manager"]


def _role_permissions(output: str) -> dict[str, set[str]]:
    roles: dict[str, set[str]] = {}
    name = ""
    for line in output.splitlines():
        if line.startswith("    "):
            roles[name] = {codename.strip() for codename in line.split(",")}
        elif line.strip():
            name = line.split(":", 1)[0].split(" ", 1)[0]
    return roles


def test_the_menu_links_to_the_supplier_list(clients: dict[str, httpx.Client]) -> None:
    for username in ("root", "manager", "viewer"):
        index = clients[username].get("/admin/")
        assert index.status_code == 200
        assert re.search(r'href="[^"]*/admin/supplier/list"', index.text), (
            f"no Supplier menu link for {username}"
        )


def test_a_manager_creates_edits_finds_exports_deletes_and_restores_a_supplier(
    clients: dict[str, httpx.Client],
) -> None:
    manager, root = clients["manager"], clients["root"]
    pk = _create(manager, "Acme Parts", EMAIL)
    _create(manager, "Baltic Timber", "sales@baltic.example")

    details = manager.get(f"/admin/supplier/details/{pk}")
    assert details.status_code == 200 and EMAIL in details.text
    edit = manager.get(f"/admin/supplier/edit/{pk}")
    assert edit.status_code == 200
    assert re.search(r'name="_version"[^>]*value="1"|value="1"[^>]*name="_version"', edit.text)
    saved = manager.post(
        f"/admin/supplier/edit/{pk}",
        data={
            "name": "Acme Parts Ltd",
            "email": EMAIL,
            "_version": "1",
            "csrf_token": _token(edit.text),
            "save": "Save",
        },
    )
    assert "Supplier “Acme Parts Ltd” was saved." in _flash_after(manager, saved)
    stale = manager.post(
        f"/admin/supplier/edit/{pk}",
        data={
            "name": "Lost update",
            "email": EMAIL,
            "_version": "1",
            "csrf_token": _token(edit.text),
            "save": "Save",
        },
    )
    assert stale.status_code == 409

    found = manager.get("/admin/supplier/list?search=Acme").text
    assert "Acme Parts Ltd" in found and "Baltic Timber" not in found
    assert "Baltic Timber" in manager.get("/admin/supplier/list").text

    exported = manager.get("/admin/supplier/export/csv")
    assert exported.status_code == 200 and exported.headers["content-type"].startswith("text/csv")
    rows = [list(row) for row in csv.reader(io.StringIO(exported.text))]
    assert any("Acme Parts Ltd" in row and EMAIL in row for row in rows[1:]), rows

    deleted = manager.delete(
        f"/admin/supplier/delete?pks={pk}", headers={"X-CSRF-Token": _page_token(manager)}
    )
    assert deleted.status_code == 200
    assert "was moved to the trash" in manager.get("/admin/supplier/list").text
    assert manager.get(f"/admin/supplier/details/{pk}").status_code == 404
    trash = manager.get("/admin/trash?model=supplier")
    assert f'data-model="supplier" data-pk="{pk}"' in trash.text
    restored = manager.post(f"/admin/trash/supplier/{pk}/restore", data={"csrf_token": _token(trash.text)})
    assert "was restored." in _flash_after(manager, restored)
    assert manager.get(f"/admin/supplier/details/{pk}").status_code == 200

    history = root.get(f"/admin/history/supplier/{pk}")
    assert history.status_code == 200
    for action in ("create", "update", "delete", "restore"):
        assert f"history-{action}" in history.text, f"no {action} in the history"
    audit = root.get(f"/admin/audit-log?model=supplier&object_id={pk}")
    assert audit.status_code == 200 and audit.text.count('class="audit-row"') == 4
    assert "manager" in audit.text


def test_a_viewer_lists_suppliers_but_may_not_change_them(clients: dict[str, httpx.Client]) -> None:
    pk = _create(clients["manager"], "Viewer's Supplier", "viewer-case@supplier.example")
    viewer = clients["viewer"]
    assert viewer.get("/admin/supplier/list").status_code == 200
    assert viewer.get(f"/admin/supplier/details/{pk}").status_code == 200
    token = _page_token(viewer)
    assert viewer.get("/admin/supplier/create").status_code == 403
    form = {"name": "Not allowed", "email": "no@supplier.example", "csrf_token": token, "save": "Save"}
    assert viewer.post("/admin/supplier/create", data=form).status_code == 403
    assert viewer.get(f"/admin/supplier/edit/{pk}").status_code == 403
    assert viewer.post(f"/admin/supplier/edit/{pk}", data={**form, "_version": "1"}).status_code == 403
    assert (
        viewer.delete(f"/admin/supplier/delete?pks={pk}", headers={"X-CSRF-Token": token}).status_code == 403
    )
    assert viewer.get("/admin/supplier/export/csv").status_code == 403
    assert clients["manager"].get(f"/admin/supplier/details/{pk}").status_code == 200  # nothing happened


def test_the_email_is_masked_for_roles_without_view_pii(clients: dict[str, httpx.Client]) -> None:
    email = "private-contact@supplier.example"
    pk = _create(clients["manager"], "Discreet Supplies", email)
    assert email in clients["root"].get(f"/admin/supplier/details/{pk}").text
    for username in ("editor", "viewer"):
        for path in ("/admin/supplier/list", f"/admin/supplier/details/{pk}"):
            page = clients[username].get(path)
            assert page.status_code == 200 and "Discreet Supplies" in page.text
            assert email not in page.text and "•••" in page.text, f"{username} sees the email on {path}"
