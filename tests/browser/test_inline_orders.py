"""A manager places an order with its lines in one form, in a real browser under the CSP."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.async_api import Page, expect

from tests.browser.conftest import SCREENSHOTS
from tests.browser.test_journeys import pick_ajax_option

pytestmark = pytest.mark.browser


async def _active_products(page: Page, count: int) -> list[tuple[str, int]]:
    """(SKU, stock) of `count` active products with at least 2 in stock, read from the product list."""
    found: list[tuple[str, int]] = []
    for row in await page.locator("tbody tr").all():
        cells = [" ".join(text.split()) for text in await row.locator("td").all_inner_texts()]
        sku = next((cell for cell in cells if cell.startswith("DEMO-")), None)
        stock = cells[cells.index(sku) + 3] if sku else ""
        if sku and stock.isdigit() and int(stock) >= 2 and "active" in cells:
            found.append((sku, int(stock)))
    assert len(found) >= count, found
    return found[:count]


async def test_manager_creates_an_order_with_three_lines_fixes_the_one_out_of_stock_and_saves(
    sign_in: Any,
) -> None:
    manager = await sign_in("manager")
    page = manager.page
    await page.emulate_media(color_scheme="light")
    await manager.goto("/admin/product/list?status=active")
    (first, _), (second, stock), (third, _) = await _active_products(page, 3)

    await manager.goto("/admin/order/create")
    await pick_ajax_option(page, "customer", "Ada")
    await page.click("[data-inline-add=items]")
    await page.click("[data-inline-add=items]")
    await expect(page.locator("tr.custodian-inline-new")).to_have_count(3)
    for row, (sku, quantity) in enumerate([(first, 1), (second, stock + 1000), (third, 2)]):
        await pick_ajax_option(page, f"items-{row}-product", sku)
        await page.fill(f"input[name=items-{row}-quantity]", str(quantity))
    await page.click("input[value=Save]")
    await page.wait_for_load_state("networkidle")

    short_row = page.locator("tr[data-row='1']")
    await expect(short_row).to_contain_text(f"Only {stock} of {second} in stock.")
    await expect(page.locator(".alert-danger")).to_contain_text(f"Not enough stock for {second}.")
    # What was chosen and typed is all still there.
    await expect(page.locator("#items-0-product option:checked")).to_contain_text(first)
    await expect(page.locator("#items-2-product option:checked")).to_contain_text(third)
    assert await page.input_value("input[name=items-1-quantity]") == str(stock + 1000)

    await page.fill("input[name=items-1-quantity]", "1")
    await page.click("input[value=Save]")
    await page.wait_for_load_state("networkidle")
    assert page.url.endswith("/admin/order/list"), page.url
    await expect(page.locator("#flash-messages")).to_contain_text("was created")

    await page.locator("a[aria-label=Edit]").first.click()
    await page.wait_for_load_state("networkidle")
    rows = page.locator("tr.custodian-inline-row:not(.custodian-inline-new)")
    await expect(rows).to_have_count(3)
    for sku in (first, second, third):
        await expect(page.locator("#inline-items")).to_contain_text(sku)
    await page.screenshot(path=str(SCREENSHOTS / "order-inline.png"), full_page=True)
    assert manager.console_errors == []  # no CSP refusal, no script error
