"""A manager puts a product's price back from its history; an auditor finds the revert and cannot revert."""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest
from playwright.async_api import expect

from tests.browser.conftest import SCREENSHOTS
from tests.browser.test_journeys import pick_ajax_option

pytestmark = pytest.mark.browser


async def test_manager_reverts_a_price_and_the_auditor_finds_it_in_the_audit_log(sign_in: Any) -> None:
    manager = await sign_in("manager")
    page = manager.page
    await page.emulate_media(color_scheme="light")
    sku = f"REV-{uuid.uuid4().hex[:6]}"
    await manager.goto("/admin/product/create")
    await page.fill("input[name=sku]", sku)
    await page.fill("input[name=name]", f"Enamel kettle {sku}")
    await page.fill("input[name=price]", "24.90")
    await pick_ajax_option(page, "category", "Kitchen")
    await page.click("input[value=Save]")
    await page.wait_for_load_state("networkidle")

    await manager.goto(f"/admin/product/list?search={sku}")
    await page.locator("a[aria-label=Edit]").first.click()
    await page.wait_for_load_state("networkidle")
    await page.fill("input[name=price]", "31.50")
    await page.click("input[value=Save]")
    await page.wait_for_load_state("networkidle")

    await manager.goto(f"/admin/product/list?search={sku}")
    await page.locator("a[aria-label=View]").first.click()
    await page.wait_for_load_state("networkidle")
    await page.click("#history-link")
    await page.wait_for_load_state("networkidle")
    history_url = page.url
    await expect(page.locator(".revert-link")).to_have_count(1)  # the creation; the newest is today's
    await page.click(".revert-link")
    await page.wait_for_load_state("networkidle")

    price = page.locator("tr.revert-field[data-field=price]")
    await expect(price).to_contain_text("31.50")
    await expect(price).to_contain_text("24.90")
    await expect(page.locator("tr.revert-field[data-field=name]")).to_have_count(0)  # unchanged
    await page.screenshot(path=str(SCREENSHOTS / "revert.png"), full_page=True)
    await page.click("#revert-form button[type=submit]")
    await page.wait_for_load_state("networkidle")
    assert page.url == history_url, page.url
    await expect(page.locator("#flash-messages")).to_contain_text("was reverted to the state of")
    await expect(page.locator("tr.history-revert")).to_have_count(1)

    await manager.goto(f"/admin/product/list?search={sku}")
    await expect(page.locator("tbody")).to_contain_text("24.90")
    assert manager.console_errors == []

    auditor = await sign_in("auditor")
    await auditor.goto("/admin/audit-log")
    await auditor.page.select_option("#audit-filters select[name=action]", "revert")
    await auditor.page.select_option("#audit-filters select[name=model]", "product")
    await auditor.page.click("#audit-filters button[type=submit]")
    await auditor.page.wait_for_load_state("networkidle")
    assert "action=revert" in auditor.page.url
    row = auditor.page.locator("tr.audit-row", has_text=sku)
    await expect(row).to_have_count(1)
    await expect(row).to_contain_text("manager")
    await expect(row).to_contain_text("reverted to the state of")
    # Reading the history is the auditor's; putting it back is not (no product.change).
    await auditor.goto(re.sub(r"^https?://[^/]+", "", history_url))
    await expect(auditor.page.locator("tr.history-revert")).to_have_count(1)
    await expect(auditor.page.locator(".revert-link")).to_have_count(0)
    assert auditor.console_errors == []
