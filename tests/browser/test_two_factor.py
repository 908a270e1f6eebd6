"""A superuser sets up two-factor sign-in in a real browser and signs in with it: the test reads the
secret shown on the page and computes the codes an authenticator app would (pyotp)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pyotp
import pytest
from playwright.async_api import expect

pytestmark = pytest.mark.browser


def _code(secret: str, steps_ahead: int = 0) -> str:
    return pyotp.TOTP(secret).at(datetime.now(UTC).timestamp() + 30 * steps_ahead)


async def test_a_superuser_enrols_totp_and_signs_in_with_it(sign_in: Any) -> None:
    admin = await sign_in("admin")
    username, password = f"root{uuid.uuid4().hex[:6]}", "root-long-password-1"
    await admin.goto("/admin/user/create")
    await admin.page.fill("input[name=username]", username)
    await admin.page.fill("input[name=password]", password)
    await admin.page.fill("input[name=password_confirm]", password)
    await admin.page.check("input[name=is_superuser]")
    await admin.page.click("input[value=Save]")
    await admin.page.wait_for_load_state("networkidle")

    root = await sign_in(username, password)
    page = root.page
    await root.goto("/admin/me")
    await page.click("#two-factor-enrol")
    await page.wait_for_load_state("networkidle")
    await expect(page.locator("#totp-qr svg")).to_be_visible()
    secret = (await page.locator("#totp-secret").inner_text()).strip()
    await page.fill("#code", "123 456")  # as an app shows it: refused with a sentence, nothing stored
    await page.click("#confirm-enrolment")
    await page.wait_for_load_state("networkidle")
    await expect(page.locator("#enrol-error")).to_contain_text("no spaces")
    await page.fill("#code", _code(secret))
    await page.click("#confirm-enrolment")
    await page.wait_for_load_state("networkidle")
    await expect(page.locator("#recovery-codes li")).to_have_count(10)
    await root.shot("two-factor-recovery-codes")
    await page.click("#continue")
    await page.wait_for_load_state("networkidle")
    await expect(page.locator("#two-factor-status")).to_be_visible()
    assert root.console_errors == []

    again = await sign_in(username, password)
    assert "/admin/two-factor" in again.page.url  # the password alone opens nothing
    assert await again.goto("/admin/user/list") == 200 and "/admin/two-factor" in again.page.url
    await again.page.fill("#code", _code(secret, 1))  # the next step's code: the last one is used up
    await again.page.click("#verify-code")
    await again.page.wait_for_load_state("networkidle")
    assert await again.goto("/admin/user/list") == 200
    assert again.page.url.endswith("/admin/user/list")
    await again.shot("two-factor-signed-in")
    assert again.console_errors == []
