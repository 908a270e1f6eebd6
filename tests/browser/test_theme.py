"""The theme follows the system until the toggle chooses; the label and the list hold at 390 px."""

from __future__ import annotations

import pytest
from playwright.async_api import Browser

from tests.browser.conftest import LOGINS, Session

pytestmark = pytest.mark.browser


async def open_in(browser: Browser, base: str, *, width: int, scheme: str) -> Session:
    context = await browser.new_context(viewport={"width": width, "height": 900}, color_scheme=scheme)
    page = await context.new_page()
    session = Session(context, page, base)
    await session.goto("/admin/login")
    await page.fill("#username", "viewer")
    await page.fill("#password", LOGINS["viewer"])
    await page.click("button[type=submit]")
    await page.wait_for_load_state("networkidle")
    return session


async def theme(session: Session) -> tuple[str | None, str | None]:
    page = session.page
    return await page.get_attribute("html", "data-custodian-theme"), await page.get_attribute(
        "html", "data-bs-theme"
    )


async def test_the_theme_follows_the_system_and_the_toggle_keeps_a_choice(
    browser: Browser, live_server: str
) -> None:
    viewer = await open_in(browser, live_server, width=1280, scheme="dark")
    try:
        await viewer.goto("/admin/product/list")
        assert await theme(viewer) == ("auto", "dark")
        for expected in (("light", "light"), ("dark", "dark"), ("auto", "dark")):
            await viewer.page.click("#theme-toggle")
            assert await theme(viewer) == expected
        await viewer.page.click("#theme-toggle")  # light, kept in this browser
        await viewer.goto("/admin/category/list")
        assert await theme(viewer) == ("light", "light")
        assert viewer.console_errors == []
    finally:
        await viewer.context.close()


async def test_at_390_px_the_list_is_usable_and_the_environment_shown(
    browser: Browser, live_server: str
) -> None:
    viewer = await open_in(browser, live_server, width=390, scheme="light")
    page = viewer.page
    try:
        await viewer.goto("/admin/product/list")
        assert await page.evaluate("document.documentElement.scrollWidth") <= 390  # no page-wide scroll
        table = await page.locator("table").first.bounding_box()
        filters = await page.locator("#filter-sidebar").bounding_box()
        assert table is not None and filters is not None
        assert table["width"] > 300 and filters["y"] > table["y"]  # the filters below, not beside
        label = page.locator("#environment-label")
        assert (await label.inner_text()).strip().lower() == "test"
        assert await label.is_visible()
        await viewer.shot("list-390px")
    finally:
        await viewer.context.close()
