"""Every page writes a moment one way: "2026-11-07 06:40:00 UTC" (admin/formatting.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from sqlalchemy.ext.asyncio import AsyncSession

from admin.formatting import moment
from tests.admin.conftest import ClientFactory
from tests.factories import make_order

PLACED = datetime(2026, 11, 7, 6, 40, 0, 917_474, tzinfo=UTC)


def test_a_moment_is_written_in_utc_to_the_second() -> None:
    assert moment(PLACED) == "2026-11-07 06:40:00 UTC"
    assert moment(PLACED.astimezone(timezone(timedelta(hours=5, minutes=30)))) == "2026-11-07 06:40:00 UTC"
    assert moment(datetime(2026, 1, 2, 3, 4, 5)) == "2026-01-02 03:04:05 UTC"  # naive: UTC already
    assert moment(None) == ""


async def test_lists_and_details_write_moments_alike(
    new_client: ClientFactory, session: AsyncSession
) -> None:
    order = await make_order(session, placed_at=PLACED)
    await session.commit()
    client = await new_client(roles=["manager"])
    day = {"placed_from": "2026-11-07", "placed_to": "2026-11-07"}
    listed = (await client.get("/admin/order/list", params=day)).text
    shown = (await client.get(f"/admin/order/details/{order.id}")).text
    for page in (listed, shown):
        assert "2026-11-07 06:40:00 UTC" in page
        assert "917474" not in page and "+00:00" not in page
