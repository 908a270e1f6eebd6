"""Browser journeys: the real app under uvicorn, a migrated and seeded database, Debian's Chromium.

Chromium comes from Debian's `chromium` package (`./dev test` installs it when missing); Playwright
drives it at /usr/bin/chromium and never downloads a browser.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, BrowserContext, Page, async_playwright

from tests.databases import TEST_SECRET_KEY
from tests.serving import running_server

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENSHOTS = REPO / "var" / "screenshots"
LOGINS = {
    "admin": "admin-demo-password",
    "manager": "manager-demo-password",
    "editor": "editor-demo-password",
    "viewer": "viewer-demo-password",
    "auditor": "auditor-demo-password",
}


@pytest.fixture(scope="session")
def live_server(fresh_server_url: str, db_backend: str) -> Iterator[str]:
    """The admin under uvicorn on a free loopback port, over a migrated, seeded database."""
    env = {
        **os.environ,
        "DATABASE_URL": fresh_server_url,
        "SECRET_KEY": TEST_SECRET_KEY,
        "ENVIRONMENT": "test",
        "PASSWORD_HASH_MEMORY_KIB": "1024",
        "PASSWORD_HASH_TIME_COST": "1",
    }
    for command in (["migrate"], ["seed", "--demo"]):
        subprocess.run(
            [sys.executable, "manage.py", *command],
            cwd=REPO,
            env=env,
            check=True,
            capture_output=True,
            timeout=300,
        )

    def runserver(port: int) -> list[str]:
        return [sys.executable, "manage.py", "runserver", "--port", str(port)]

    log = SCREENSHOTS.parent / f"browser-server-{db_backend}.log"
    with running_server(runserver, cwd=REPO, env=env, log=log) as server:
        yield server.url


@pytest.fixture(scope="session")
async def fresh_server_url(db_backend: str, run_tmp: Path) -> AsyncIterator[str]:
    from tests.databases import throwaway_database

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    async with throwaway_database(db_backend, run_tmp) as url:
        yield url


@pytest.fixture(scope="session")
async def browser() -> AsyncIterator[Browser]:
    if not os.path.exists(CHROMIUM):  # noqa: ASYNC240 - one stat, before the browser starts
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium package (./dev test does it as root).")
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        yield browser
        await browser.close()


class Session:
    """One signed-in browser context; collects console errors and failed requests."""

    def __init__(self, context: BrowserContext, page: Page, base: str) -> None:
        self.context, self.page, self.base = context, page, base
        self.console_errors: list[str] = []
        page.on("console", lambda message: self._console(message.type, message.text))

    def _console(self, kind: str, text: str) -> None:
        # A refused resource is reported as a console error too; the test asserts on those itself.
        if kind == "error" and "Failed to load resource" not in text:
            self.console_errors.append(text)

    async def goto(self, path: str) -> int:
        response = await self.page.goto(self.base + path)
        await self.page.wait_for_load_state("networkidle")
        return response.status if response else 0

    async def shot(self, name: str) -> None:
        await self.page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=False)


@pytest.fixture
async def sign_in(browser: Browser, live_server: str) -> AsyncIterator[object]:
    contexts: list[BrowserContext] = []

    async def open_as(username: str, password: str | None = None) -> Session:
        context = await browser.new_context(viewport={"width": 1400, "height": 900})
        contexts.append(context)
        page = await context.new_page()
        session = Session(context, page, live_server)
        await session.goto("/admin/login")
        await page.fill("#username", username)
        await page.fill("#password", password or LOGINS[username])
        await page.click("button[type=submit]")
        await page.wait_for_load_state("networkidle")
        return session

    yield open_as
    for context in contexts:
        await context.close()
