"""A manager imports products from a file, fixing its bad row after the preview; an auditor finds it."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from playwright.async_api import Page, expect

pytestmark = pytest.mark.browser

HEADER = "SKU,Name,Price,Stock,Status,Category,Tags\n"


async def choose_and_preview(page: Page, file_name: str, content: str) -> None:
    await page.set_input_files(
        "#import-file", files=[{"name": file_name, "mimeType": "text/csv", "buffer": content.encode()}]
    )
    await page.click("#import-preview-button")
    await page.wait_for_load_state("networkidle")


async def test_manager_previews_fixes_and_imports_then_an_auditor_finds_the_import(sign_in: Any) -> None:
    run = uuid.uuid4().hex[:6]
    lamp, vase = f"IMP-{run}-LAMP", f"IMP-{run}-VASE"
    file_name = f"spring-{run}.csv"
    bad = (
        HEADER + f"{lamp},Imported lamp,24.90,5,active,kitchen,\n{vase},Imported vase,-3,2,active,kitchen,\n"
    )

    manager = await sign_in("manager")
    page = manager.page
    await manager.goto("/admin/product/list")
    await page.click("#import-file")
    await page.wait_for_load_state("networkidle")
    await expect(page.locator("#import-columns")).to_contain_text("Category")
    await manager.shot("import-upload")

    await choose_and_preview(page, file_name, bad)
    await expect(page.locator("[data-total=new]")).to_have_text("1")
    await expect(page.locator("[data-total=error]")).to_have_text("1")
    bad_row = page.locator("#import-rows tr[data-row='3']")
    await expect(bad_row).to_contain_text(vase)
    await expect(bad_row.locator(".import-error[data-field='Price']")).to_contain_text("Price:")
    await expect(page.locator("#import-rows tbody tr").first).to_have_attribute(
        "data-row", "3"
    )  # errors first
    await manager.shot("import-preview-with-error")

    await page.click("text=Upload another file")
    await page.wait_for_load_state("networkidle")
    await choose_and_preview(page, file_name, bad.replace(",-3,", ",18.50,"))
    await expect(page.locator("[data-total=new]")).to_have_text("2")
    await expect(page.locator("[data-total=error]")).to_have_text("0")
    await expect(page.locator("#import-skip-errors")).to_have_count(0)
    await page.click("#import-confirm-button")
    await page.wait_for_load_state("networkidle")
    assert page.url.endswith("/admin/product/list")
    await expect(page.locator("#flash-messages")).to_contain_text(f"Imported {file_name}: 2 new, 0 changed")
    await manager.shot("import-done")
    await manager.goto(f"/admin/product/list?search=IMP-{run}")
    await expect(page.locator("tbody")).to_contain_text("Imported vase")
    assert manager.console_errors == []

    auditor = await sign_in("auditor")
    page = auditor.page
    await auditor.goto("/admin/audit-log")
    await page.select_option("select[name=action]", "import")
    await page.click("#audit-filters button[type=submit]")
    await page.wait_for_load_state("networkidle")
    entry = page.locator("#audit-table tr.audit-row", has_text=file_name)
    import_id = await entry.locator(".import-id").get_attribute("data-import-id")
    assert import_id

    await page.select_option("select[name=action]", "")
    await page.fill("input[name=import_id]", import_id)
    await page.click("#audit-filters button[type=submit]")
    await page.wait_for_load_state("networkidle")
    rows = page.locator("#audit-table tr.audit-row")
    await expect(rows).to_have_count(3)  # the two products and the file
    await expect(page.locator("#audit-table")).to_contain_text(lamp)
    await expect(page.locator("#audit-table")).to_contain_text(vase)
    await expect(rows.filter(has_text="create")).to_have_count(2)
    await auditor.shot("import-audit-log")
    assert auditor.console_errors == []
