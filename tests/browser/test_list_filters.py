"""A date range applied from the sidebar and removed with its chip; a category found by searching."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from playwright.async_api import Browser

from tests.browser.test_theme import open_in

pytestmark = pytest.mark.browser


async def test_a_date_range_is_applied_and_removed_with_its_chip(browser: Browser, live_server: str) -> None:
    viewer = await open_in(browser, live_server, width=1280, scheme="light")
    page = viewer.page
    today = datetime.now(UTC).date()
    start, end = (today - timedelta(days=10)).isoformat(), today.isoformat()
    try:
        await viewer.goto("/admin/order/list?sortBy=id&sort=desc")
        await page.fill("#placed_from", start)
        await page.fill("#placed_to", end)
        async with page.expect_navigation():
            await page.click("#placed_between-apply")
        assert f"placed_from={start}" in page.url and f"placed_to={end}" in page.url
        assert "sortBy=id" in page.url  # the rest of the list's state is kept
        chip = page.locator(".filter-chip", has_text="Placed between")
        text = (await chip.inner_text()).split("\n")[0].strip()
        assert text.startswith(f"Placed between: {start} to {end}")
        await viewer.shot("list-date-range")

        async with page.expect_navigation():
            await chip.locator("a.filter-chip-remove").click()
        assert "placed_from" not in page.url and "placed_to" not in page.url and "sortBy=id" in page.url
        assert await page.locator(".filter-chip").count() == 0

        # Only one day chosen: the empty one is not sent.
        await page.fill("#placed_to", end)
        async with page.expect_navigation():
            await page.click("#placed_between-apply")
        assert f"placed_to={end}" in page.url and "placed_from" not in page.url
        assert await page.locator(".filter-chip", has_text=f"until {end}").count() == 1
        assert viewer.console_errors == []
    finally:
        await viewer.context.close()


async def test_a_category_is_found_by_searching_and_chosen(browser: Browser, live_server: str) -> None:
    viewer = await open_in(browser, live_server, width=1280, scheme="light")
    page = viewer.page
    try:
        await viewer.goto("/admin/product/list")
        box = page.locator("input.filter-search[data-parameter=category]")
        assert await box.is_visible()  # shown once the script runs
        # The category filter's first link is "All"; the second, a category the search must find too.
        links = box.locator("xpath=..").locator("a.d-block")
        first = (await links.nth(1).inner_text()).strip()
        await box.fill(first[:4])
        result = page.locator("a.filter-search-result").first
        await result.wait_for()
        chosen = (await result.inner_text()).strip()
        async with page.expect_navigation():
            await result.click()
        assert "category=" in page.url
        assert await page.locator(".filter-chip", has_text=f"Category: {chosen}").count() == 1
        assert viewer.console_errors == []
    finally:
        await viewer.context.close()
