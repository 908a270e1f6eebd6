"""Every signed-in page says which environment it belongs to, carries the theme script and the
favicon; the files they name are served (the browser side is tests/browser/test_theme.py)."""

from __future__ import annotations

import re

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from admin.app import create_app
from backend.config import Environment, Settings
from backend.db.session import Database
from tests.admin.conftest import ClientFactory, sign_in
from tests.factories import make_user

LABEL = re.compile(r'<span class="badge ([^"]+) text-uppercase" id="environment-label"[^>]*>([^<]*)</span>')


@pytest.mark.parametrize(
    ("environment", "label", "css"),
    [
        (Environment.DEVELOPMENT, None, "bg-green-lt"),
        (Environment.TEST, None, "bg-purple-lt"),
        (Environment.PRODUCTION, None, "bg-red-lt"),
        (Environment.DEVELOPMENT, "staging <eu>", "bg-green-lt"),
    ],
)
async def test_every_page_names_its_environment(
    settings: Settings,
    database: Database,
    session: AsyncSession,
    environment: Environment,
    label: str | None,
    css: str,
) -> None:
    changed = settings.model_copy(update={"environment": environment, "environment_label": label})
    app = create_app(changed, database=database)
    user = await make_user(session, roles=["viewer"])
    await session.commit()
    # Production's session cookie is Secure: it travels over https only.
    scheme = "https" if environment is Environment.PRODUCTION else "http"
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url=f"{scheme}://testserver"
    ) as client:
        assert (await sign_in(client, user.username)).status_code == 302
        for path in ("/admin/", "/admin/product/list", "/admin/jobs"):
            page = (await client.get(path)).text
            found = LABEL.search(page)
            assert found, path
            shown = "staging &lt;eu&gt;" if label else environment.value
            assert found.groups() == (css, shown), path


async def test_pages_carry_the_theme_script_first_the_toggle_and_the_favicon(
    new_client: ClientFactory,
) -> None:
    client = await new_client(roles=["viewer"])
    page = (await client.get("/admin/product/list")).text
    head = page.split("</head>", 1)[0]
    assert re.search(r'<script src="[^"]*/admin/statics/theme\.js"></script>', head)  # drawn dark at once
    assert head.index("theme.js") < head.index("tabler.min.css")
    assert re.search(r'<link rel="stylesheet" href="[^"]*/admin/statics/custodian\.css">', head)
    assert '<link rel="icon" href="/admin/statics/favicon.svg">' in head
    assert 'id="theme-toggle"' in page
    assert "<script>" not in page  # still no inline script: the CSP allows none


@pytest.mark.parametrize(
    ("path", "media_type"),
    [
        ("/admin/statics/theme.js", "javascript"),
        ("/admin/statics/custodian.css", "text/css"),
        ("/admin/statics/favicon.svg", "image/svg+xml"),
    ],
)
async def test_the_files_are_served(new_client: ClientFactory, path: str, media_type: str) -> None:
    client = await new_client(signed_in=False)
    answer = await client.get(path)
    assert answer.status_code == 200 and media_type in answer.headers["content-type"]


async def test_the_favicon_asked_at_the_root_is_found(new_client: ClientFactory) -> None:
    client = await new_client(signed_in=False)
    answer = await client.get("/favicon.ico")
    assert answer.status_code == 301 and answer.headers["location"] == "/admin/statics/favicon.svg"
