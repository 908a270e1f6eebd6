"""A user switches the admin to German on their account page, sees it in German, switches the theme,
then goes back to their browser's language (English here)."""

from __future__ import annotations

import pytest
from playwright.async_api import Browser

from tests.browser.conftest import LOGINS, Session

pytestmark = pytest.mark.browser


async def test_a_user_switches_to_german_and_changes_the_theme(browser: Browser, live_server: str) -> None:
    context = await browser.new_context(viewport={"width": 1400, "height": 900}, locale="en-US")
    page = await context.new_page()
    admin = Session(context, page, live_server)
    try:
        await admin.goto("/admin/login")
        await page.fill("#username", "admin")
        await page.fill("#password", LOGINS["admin"])
        await page.click("button[type=submit]")
        await page.wait_for_load_state("networkidle")
        assert "Catalog" in await page.inner_text("#navbar-menu")

        await page.click("#my-account-link")
        await page.check("#locale-de")
        await page.click("#save-language")
        await page.wait_for_load_state("networkidle")
        assert "Die Verwaltung spricht jetzt Deutsch mit Ihnen." in await page.inner_text("#flash-messages")
        assert await page.is_checked("#locale-de")

        await admin.goto("/admin/")
        menu = await page.inner_text("#navbar-menu")
        assert "Katalog" in menu and "Verkauf" in menu and "Meine Aufträge" in menu
        assert "Ihre letzten Änderungen" in await page.inner_text("#dashboard")
        await admin.goto("/admin/product/list")
        assert "Produkt anlegen" in await page.inner_text("body")

        before = await page.get_attribute("html", "data-custodian-theme")
        await page.click("#theme-toggle")
        after = await page.get_attribute("html", "data-custodian-theme")
        assert before != after
        await admin.goto("/admin/")
        assert await page.get_attribute("html", "data-custodian-theme") == after  # kept in this browser
        await admin.shot("dashboard-de")
    finally:
        # Back to the browser's language: the other journeys sign in as this user too.
        await admin.goto("/admin/me")
        await page.check("#locale-browser")
        await page.click("#save-language")
        await page.wait_for_load_state("networkidle")
        flash = await page.inner_text("#flash-messages")
        await context.close()
    assert "follows your browser's language (English)" in flash
    assert admin.console_errors == []
