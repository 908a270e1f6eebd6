"""Crawl the whole admin as every role: no 5xx, working menus and controls, no leak, honest exports.

Each role signs in and walks every same-origin link reachable from /admin
(tests/admin/crawling.py says how, and how it is bounded). Checked, for every
response: no 5xx and no traceback; every menu link answers an HTML 200; no
shown link, button or GET form leads to a 403 or 404; a role without
`customer.view_pii` never receives a seeded customer's email, phone or
address, CSV included; an export reached from a searched or filtered list
holds exactly that list's rows.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from admin.views.base import ServiceModelView
from backend.auth.permissions import BUILTIN_ROLES, default_roles_for, permission_specs
from backend.config import Settings
from tests.admin.crawling import SeededSite, coverage_gaps, crawl, failures, seeded_site, summary

EVERY_VIEW_NO_PII = "every-view-no-pii"
ROLES = [*sorted(BUILTIN_ROLES), "superuser", EVERY_VIEW_NO_PII]
PII_PERMISSION = "customer.view_pii"


@pytest.fixture(scope="module")
async def site(engine: AsyncEngine, settings: Settings) -> AsyncIterator[SeededSite]:
    async with seeded_site(engine, settings) as seeded:
        yield seeded


def superuser_reaches(site: SeededSite) -> list[str]:
    """The pages a superuser's crawl must reach: every model's list, details, edit, export, import
    and history, and a revert page."""
    paths = [
        "/admin/",
        "/admin/trash",
        "/admin/audit-log",
        "/admin/me",
        "/admin/me/password",
        "/admin/me/sessions",
    ]
    paths += ["/admin/jobs", "/admin/jobs/{id}", "/admin/jobs/{id}/download"]  # the crawler's own jobs
    paths += ["/admin/history/customer/{id}/revert/{id}"]  # the seed edits a customer after creating it
    for view in site.app.state.admin.views:
        if isinstance(view, ServiceModelView):
            base = f"/admin/{view.identity}"
            paths += [f"{base}/list", f"{base}/details/{{id}}", f"{base}/export/csv", f"{base}/import/upload"]
            paths += [f"{base}/edit/{{id}}"] if view.can_edit else []
            if hasattr(view.model, "deleted_at"):
                paths.append(f"/admin/history/{view.model.__tablename__}/{{id}}")
    return paths


def sees_pii(role: str) -> bool:
    if role == "superuser":
        return True
    if role == EVERY_VIEW_NO_PII:
        return False
    spec = next(spec for spec in permission_specs() if spec.codename == PII_PERMISSION)
    return role in default_roles_for(spec)


@pytest.mark.parametrize("role", ROLES)
async def test_crawl_finds_nothing_broken(role: str, site: SeededSite) -> None:
    if role == "superuser":
        client = await site.client(superuser=True)
    else:
        client = await site.client(roles=[site.every_view_role if role == EVERY_VIEW_NO_PII else role])
    try:
        result = await crawl(client, site.escaped)
    finally:
        await client.aclose()
    print(summary(role, result))
    assert result.requests > 20, f"the crawl as {role} found almost nothing: {summary(role, result)}"
    found = failures(result, hidden_values=() if sees_pii(role) else site.pii_values)
    if role == "superuser":
        found += coverage_gaps(result, superuser_reaches(site))
    assert not found, f"{len(found)} problems crawling as {role}:\n" + "\n".join(found)
