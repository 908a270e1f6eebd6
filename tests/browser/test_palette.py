"""The command palette in Chromium: Ctrl+K opens it, a SKU typed and Enter open the product, the arrows
move through the results, Escape closes it and gives the focus back; readable in the dark theme."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from playwright.async_api import Browser, Page, expect

from tests.browser.conftest import LOGINS, Session

pytestmark = pytest.mark.browser

SKU = "DEMO-00042"  # `manage.py seed --demo` makes DEMO-00001 to DEMO-00500


async def active_option(page: Page) -> str:
    active = await page.get_attribute("#palette-input", "aria-activedescendant")
    assert active, "no option is active"
    return await page.inner_text(f"#{active}")


async def test_ctrl_k_a_sku_and_enter_open_the_product_and_escape_closes(sign_in: Callable[..., Any]) -> None:
    editor: Session = await sign_in("editor")
    page = editor.page
    dialog, field = page.locator("#palette"), page.locator("#palette-input")
    await expect(page.locator("#palette-open")).to_be_visible()  # shown once the script is ready
    await expect(dialog).to_be_hidden()

    await page.keyboard.press("Control+k")
    await expect(dialog).to_be_visible()
    await expect(field).to_be_focused()
    assert await dialog.get_attribute("role") == "dialog"
    await expect(page.locator("#palette-results [role=option]").first).to_be_visible()  # the pages

    await field.type(SKU)
    option = page.locator("#palette-results [role=option]", has_text=SKU)
    await expect(option).to_have_count(1)
    assert SKU in await active_option(page)
    await page.keyboard.press("Enter")
    await page.wait_for_url(re.compile(r"/admin/product/details/\d+$"))
    await expect(page.locator("body")).to_contain_text(SKU)

    # The top bar's button opens it too; the arrows move; Escape closes and hands the focus back.
    opener = page.locator("#palette-open")
    await opener.click()
    await expect(field).to_be_focused()
    await field.fill("prod")
    await expect(page.locator("#palette-results [role=option]").first).to_contain_text("Products")
    first = await active_option(page)
    await page.keyboard.press("ArrowDown")
    second = await active_option(page)
    assert "Products" in first and "New Product" in second
    await page.keyboard.press("ArrowUp")
    assert await active_option(page) == first
    await page.keyboard.press("Escape")
    await expect(dialog).to_be_hidden()
    await expect(opener).to_be_focused()
    assert editor.console_errors == []


async def test_the_open_palette_reads_well_in_the_dark_theme(browser: Browser, live_server: str) -> None:
    context = await browser.new_context(viewport={"width": 1280, "height": 800}, color_scheme="dark")
    page = await context.new_page()
    viewer = Session(context, page, live_server)
    try:
        await viewer.goto("/admin/login")
        await page.fill("#username", "viewer")
        await page.fill("#password", LOGINS["viewer"])
        await page.click("button[type=submit]")
        await page.wait_for_load_state("networkidle")
        await page.keyboard.press("Meta+k")  # a Mac's shortcut works too
        await page.locator("#palette-input").type("DEMO-0004")
        await expect(page.locator("#palette-results [role=option]")).to_have_count(5)  # at most 5 a model
        assert not await page.locator("#palette-results [role=option]", has_text="New ").count()
        await expect(page.locator(".modal-backdrop.show")).to_have_count(1)  # the page behind is dimmed
        background = await page.eval_on_selector(
            "#palette .modal-content", "element => getComputedStyle(element).backgroundColor"
        )
        red, green, blue = (int(part) for part in re.findall(r"\d+", background)[:3])
        assert red + green + blue < 3 * 100, background  # a dark surface, not a white box
        await viewer.shot("palette")  # docs/screenshots/palette.png is a copy
        assert viewer.console_errors == []
    finally:
        await context.close()
