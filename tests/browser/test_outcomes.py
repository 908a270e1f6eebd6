"""What a person sees after a write, a refusal or a wrong address, in a real browser under the CSP."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from playwright.async_api import expect

from tests.browser.test_journeys import pick_ajax_option, wait_until_shown

pytestmark = pytest.mark.browser


async def test_a_save_ends_with_a_toast_saying_what_happened(sign_in: Any) -> None:
    editor = await sign_in("editor")
    page = editor.page
    sku = f"TOAST-{uuid.uuid4().hex[:6]}"
    await editor.goto("/admin/product/create")
    await page.fill("input[name=sku]", sku)
    await page.fill("input[name=name]", "Toasted kettle")
    await page.fill("input[name=price]", "12.50")
    await pick_ajax_option(page, "category", "Kitchen")
    await page.click("input[value=Save]")
    await page.wait_for_load_state("networkidle")
    toast = page.locator("#flash-messages .toast")
    await expect(toast).to_be_visible()
    await expect(toast).to_contain_text(f"Product “{sku} Toasted kettle” was created.")
    await editor.shot("toast")
    await page.reload()
    await expect(page.locator("#flash-messages")).to_have_count(0)  # shown once
    assert editor.console_errors == []  # no CSP refusal, no script error


async def test_a_refused_delete_keeps_the_modal_open_with_the_reason(sign_in: Any) -> None:
    manager = await sign_in("manager")
    page = manager.page
    await manager.goto("/admin/category/list?search=Kitchen")
    row = page.locator("tbody tr").first
    await row.locator("a[aria-label=Delete]").click()
    await wait_until_shown(page, "modal-delete")
    await expect(page.locator("#modal-delete")).to_contain_text("Move to the trash?")
    await expect(page.locator("#modal-delete")).not_to_contain_text("permanently")
    async with page.expect_response(lambda response: response.request.method == "DELETE") as deleted:
        await page.click("#modal-delete-confirm")
    assert 400 <= (await deleted.value).status < 500
    error = page.locator("#modal-delete-error")
    await expect(error).to_be_visible()
    await expect(error).to_contain_text("product")  # what is in the way
    await expect(page.locator("#modal-delete")).to_be_visible()  # still open, page not replaced
    await expect(page.locator("tbody tr").first).to_be_visible()
    await manager.shot("delete-refused")

    # Closing and reopening starts clean.
    await page.keyboard.press("Escape")
    await expect(page.locator("#modal-delete")).to_be_hidden()
    await row.locator("a[aria-label=Delete]").click()
    await wait_until_shown(page, "modal-delete")
    await expect(page.locator("#modal-delete-error")).to_be_hidden()
    assert manager.console_errors == []


async def test_a_delete_that_works_says_so_after_the_reload(sign_in: Any) -> None:
    manager = await sign_in("manager")
    page = manager.page
    await manager.goto("/admin/tag/list")
    row = page.locator("tbody tr").first
    tag_id = (await row.locator("input[type=hidden]").input_value()).strip()
    await row.locator("a[aria-label=Delete]").click()
    await wait_until_shown(page, "modal-delete")
    await page.click("#modal-delete-confirm")
    await page.wait_for_load_state("networkidle")
    await expect(page.locator("#flash-messages")).to_contain_text("was moved to the trash")
    await expect(page.locator(f"tbody input[type=hidden][value='{tag_id}']")).to_have_count(0)
    assert manager.console_errors == []


async def test_a_refusal_page_keeps_the_menu_and_says_what_is_missing(sign_in: Any) -> None:
    viewer = await sign_in("viewer")
    page = viewer.page
    assert await viewer.goto("/admin/product/create") == 403
    await expect(page.locator("#error-message")).to_have_text(
        "You need the permission product.add to add products."
    )
    await expect(page.locator("#navbar-menu")).to_be_visible()
    await expect(page.locator("#navbar-menu")).not_to_contain_text("Accounts")  # nothing in it opens
    await viewer.shot("error-page")
    assert await viewer.goto("/admin/order/details/999999999") == 404
    await expect(page.locator("#error-message")).to_have_text("No order 999999999 exists.")
    assert viewer.console_errors == []
