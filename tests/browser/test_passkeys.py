"""A user adds a passkey on My account in a real browser and signs in with it: Chromium's virtual
authenticator (the DevTools protocol's WebAuthn domain) plays the device, the page's own script
(admin/static/passkeys.js) drives the browser's WebAuthn API, the server verifies with py_webauthn.

WebAuthn wants a secure context and a domain as RP id: the browser opens the live server at
http://localhost (the same loopback server), not at its IP address.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from playwright.async_api import Browser, BrowserContext, Page, expect

from tests.browser.conftest import LOGINS, SCREENSHOTS

pytestmark = pytest.mark.browser


async def _signed_in(
    browser: Browser, base: str, username: str, password: str
) -> tuple[BrowserContext, Page]:
    context = await browser.new_context(viewport={"width": 1400, "height": 900})
    page = await context.new_page()
    await page.goto(base + "/admin/login")
    await page.fill("#username", username)
    await page.fill("#password", password)
    await page.click("button[type=submit]")
    await page.wait_for_load_state("networkidle")
    return context, page


async def _virtual_authenticator(context: BrowserContext, page: Page) -> tuple[Any, str]:
    """The device: a platform authenticator with user verification, as a phone or laptop has."""
    cdp = await context.new_cdp_session(page)
    await cdp.send("WebAuthn.enable")
    added = await cdp.send(
        "WebAuthn.addVirtualAuthenticator",
        {
            "options": {
                "protocol": "ctap2",
                "transport": "internal",
                "hasResidentKey": True,
                "hasUserVerification": True,
                "isUserVerified": True,
            }
        },
    )
    return cdp, str(added["authenticatorId"])


async def test_a_user_adds_a_passkey_and_signs_in_with_it(browser: Browser, live_server: str) -> None:
    base = live_server.replace("127.0.0.1", "localhost")
    admin, admin_page = await _signed_in(browser, base, "admin", LOGINS["admin"])
    username, password = f"pk{uuid.uuid4().hex[:6]}", "passkey-long-password-1"
    await admin_page.goto(base + "/admin/user/create")
    await admin_page.fill("input[name=username]", username)
    await admin_page.fill("input[name=password]", password)
    await admin_page.fill("input[name=password_confirm]", password)
    await admin_page.click("input[value=Save]")
    await admin_page.wait_for_load_state("networkidle")
    await admin.close()

    context, page = await _signed_in(browser, base, username, password)
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    cdp, authenticator = await _virtual_authenticator(context, page)
    await page.goto(base + "/admin/me")
    await expect(page.locator("#no-passkeys")).to_be_visible()
    await page.fill("#passkey-name", "x" * 64 + "y")  # the field stops at 64: the server's limit too
    assert len(await page.input_value("#passkey-name")) == 64
    await page.fill("#passkey-name", "Virtual key")
    await page.click("#passkey-add")
    await page.wait_for_url("**/admin/me")
    await expect(page.locator("#passkey-list .passkey-name")).to_have_text(["Virtual key"])
    await page.screenshot(path=str(SCREENSHOTS / "passkey-added.png"))
    # the same name again: the server's sentence, shown by the script
    await page.fill("#passkey-name", "Virtual key")
    await page.click("#passkey-add")
    await expect(page.locator("#passkey-error")).to_contain_text("already have a passkey with this name")

    await page.goto(base + "/admin/logout")
    await page.click("button[type=submit]")
    await page.wait_for_load_state("networkidle")
    await page.goto(base + "/admin/login")
    await page.fill("#username", username)
    await page.fill("#password", password)
    await page.click("button[type=submit]")
    await page.wait_for_load_state("networkidle")
    assert "/admin/two-factor" in page.url
    await expect(page.locator("#code")).to_have_count(0)  # no app: only the passkey is offered
    await page.click("#use-passkey")
    await page.wait_for_url(base + "/admin/")
    await page.goto(base + "/admin/me")
    await expect(page.locator("#passkey-list tbody tr")).to_have_count(1)
    await expect(page.locator("#passkey-list tbody td").nth(2)).not_to_have_text("Never")
    await page.screenshot(path=str(SCREENSHOTS / "passkey-signed-in.png"))
    credentials = await cdp.send("WebAuthn.getCredentials", {"authenticatorId": authenticator})
    assert credentials["credentials"][0]["signCount"] >= 1
    assert [e for e in errors if "Failed to load resource" not in e] == []
    await context.close()
