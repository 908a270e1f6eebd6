"""The dashboard in a real browser, under the real CSP: each role's blocks, no console error, a screenshot."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest

from tests.browser.conftest import SCREENSHOTS, Session

pytestmark = pytest.mark.browser


@pytest.mark.parametrize(
    ("role", "sees_users", "sees_activity"),
    [("admin", True, True), ("manager", False, False), ("viewer", False, False), ("auditor", True, True)],
)
async def test_the_dashboard_renders_under_the_csp_for_each_role(
    sign_in: Callable[[str], Awaitable[Session]], role: str, sees_users: bool, sees_activity: bool
) -> None:
    session = await sign_in(role)
    assert await session.goto("/admin/") == 200
    page = session.page
    assert await page.locator("#count-product").is_visible()
    assert await page.locator("#count-user").count() == (1 if sees_users else 0)
    assert await page.locator("#dashboard-activity").count() == (1 if sees_activity else 0)
    chart = page.locator("#dashboard-orders-chart svg")
    assert await chart.is_visible()
    assert await page.locator("#dashboard-orders-chart rect.chart-day").count() == 30
    box = await chart.bounding_box()
    assert box is not None and box["width"] > 300 and box["height"] > 100  # drawn, not collapsed
    assert await page.locator("#dashboard-low-stock").is_visible()
    await page.click("#count-product")
    await page.wait_for_load_state("networkidle")
    assert page.url.endswith("/admin/product/list")
    await session.goto("/admin/")
    await page.screenshot(path=str(SCREENSHOTS / f"dashboard-{role}.png"), full_page=True)
    assert session.console_errors == []
