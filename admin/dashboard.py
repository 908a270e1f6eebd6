"""The dashboard at /admin: blocks declared by the views, each shown only to whom may see it.

Every model view gets a `CountWidget` (its live rows, capped or estimated);
a view adds its own blocks with `dashboard_widgets = [OrdersPerDayChart()]`;
`SITE_WIDGETS` are the blocks of no one model (the user's own recent
changes, everyone's latest activity). A widget checks its own permission
(`allowed`), gets its figures from backend/services/dashboard.py and names
the template partial that draws them.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, ClassVar

from sqladmin import BaseView, ModelView
from starlette.requests import Request

from admin.auth import current_actor
from admin.i18n import lazy_gettext
from admin.requests import request_uow
from admin.views.audit import AuditLogView
from backend.services import dashboard as figures
from backend.services.dashboard import DashboardService
from backend.services.masking import table_of


@dataclass(frozen=True)
class Block:
    """One rendered widget: its partial, its grid width and what the partial shows."""

    template: str
    width: str
    data: dict[str, Any] = field(default_factory=dict)


def may_list(request: Request, view: ModelView) -> bool:
    """The menu's rule (visible and accessible), and the view's records may be listed."""
    return view.is_visible(request) and view.is_accessible(request) and view.has_permission(request, "list")


class Widget(ABC):
    """A block a model view declares (`dashboard_widgets`); shown when its records may be listed."""

    template: ClassVar[str]
    width: ClassVar[str] = "col-12 col-xl-6"
    place: ClassVar[int] = 50  # below the counts, lower first: a wide chart goes above half-width tables

    def allowed(self, request: Request, view: ModelView) -> bool:
        return may_list(request, view)

    @abstractmethod
    async def data(self, request: Request, view: ModelView, service: DashboardService) -> dict[str, Any]:
        """What the widget's partial shows, read through the dashboard service."""

    async def block(self, request: Request, view: ModelView, service: DashboardService) -> Block:
        return Block(self.template, self.width, await self.data(request, view, service))


class SiteWidget(ABC):
    """A block of no one model (recent changes, activity), with its own permission check."""

    template: ClassVar[str]
    width: ClassVar[str] = "col-12 col-xl-6"
    place: ClassVar[int] = 100

    @abstractmethod
    def allowed(self, request: Request) -> bool:
        """Whether the signed-in actor may see this block."""

    @abstractmethod
    async def data(self, request: Request, service: DashboardService) -> dict[str, Any]:
        """What the block's partial shows, read through the dashboard service."""

    async def block(self, request: Request, service: DashboardService) -> Block:
        return Block(self.template, self.width, await self.data(request, service))


class CountWidget(Widget):
    """How many live records a view lists; every model view has one."""

    template = "custodian/dashboard_count.html"
    width = "col-6 col-md-4 col-xl-3"
    cap: ClassVar[int] = figures.COUNT_CAP

    async def data(self, request: Request, view: ModelView, service: DashboardService) -> dict[str, Any]:
        count = await service.count(table_of(view.model), cap=self.cap)
        url = request.url_for("admin:list", identity=view.identity)
        return {"name": view.name_plural, "icon": view.icon, "count": count, "url": url, "id": view.identity}


class OrdersPerDayChart(Widget):
    """Orders and revenue per day over the last 30 days, drawn as SVG on the server (no script)."""

    template = "custodian/dashboard_orders_chart.html"
    width = "col-12"
    place = 10
    days: ClassVar[int] = figures.CHART_DAYS

    async def data(self, request: Request, view: ModelView, service: DashboardService) -> dict[str, Any]:
        chart = await service.orders_per_day(days=self.days)
        url = request.url_for("admin:list", identity=view.identity)
        return {"chart": chart, "svg": ChartGeometry.of(chart), "url": url}


class LowStockTable(Widget):
    """Products running out: live, not archived, stock below the threshold."""

    template = "custodian/dashboard_low_stock.html"
    below: ClassVar[int] = figures.LOW_STOCK_BELOW

    async def data(self, request: Request, view: ModelView, service: DashboardService) -> dict[str, Any]:
        products = await service.low_stock(below=self.below)
        rows = [
            (product, request.url_for("admin:details", identity=view.identity, pk=product.id))
            for product in products
        ]
        list_url = request.url_for("admin:list", identity=view.identity)
        return {"rows": rows, "below": self.below, "list_url": list_url}


class RecentChanges(SiteWidget):
    """The signed-in user's own latest changes."""

    template = "custodian/dashboard_changes.html"

    def allowed(self, request: Request) -> bool:
        return current_actor(request).user_id is not None

    async def data(self, request: Request, service: DashboardService) -> dict[str, Any]:
        entries = await service.own_changes()
        return {
            "id": "dashboard-own-changes",
            "title": lazy_gettext("Your recent changes"),
            "entries": entries,
        }


class LatestActivity(SiteWidget):
    """Everyone's latest changes, for who may read the audit log."""

    template = "custodian/dashboard_changes.html"
    width = "col-12"

    def allowed(self, request: Request) -> bool:
        return current_actor(request).has_perm(AuditLogView.required_permission)

    async def data(self, request: Request, service: DashboardService) -> dict[str, Any]:
        entries = await service.latest_activity()
        return {
            "id": "dashboard-activity",
            "title": lazy_gettext("Latest activity"),
            "entries": entries,
            "show_actor": True,
        }


SITE_WIDGETS: Sequence[SiteWidget] = (RecentChanges(), LatestActivity())


async def dashboard_blocks(request: Request, views: Sequence[BaseView | ModelView]) -> list[Block]:
    """The blocks this request's user may see: counts, then the views' widgets, then the site's."""
    model_views = [view for view in views if isinstance(view, ModelView)]
    service = DashboardService(await request_uow(request))
    counting = CountWidget()
    blocks = [
        await counting.block(request, view, service)
        for view in model_views
        if counting.allowed(request, view)
    ]
    declared = [(widget, view) for view in model_views for widget in getattr(view, "dashboard_widgets", ())]
    placed: list[tuple[int, Block]] = []
    for widget, view in declared:
        if widget.allowed(request, view):
            placed.append((widget.place, await widget.block(request, view, service)))
    for site_widget in SITE_WIDGETS:
        if site_widget.allowed(request):
            placed.append((site_widget.place, await site_widget.block(request, service)))
    return blocks + [block for _, block in sorted(placed, key=lambda found: found[0])]


def history_tables(request: Request, views: Sequence[BaseView | ModelView]) -> set[str]:
    """Tables whose records' history pages the user may open (the history service's rule)."""
    actor = current_actor(request)
    tables = {table_of(view.model) for view in views if isinstance(view, ModelView)}
    return {table for table in tables if actor.has_perm("audit.view") or actor.has_perm(f"{table}.view")}


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    height: float
    day: str
    orders: int
    revenue: Decimal


@dataclass(frozen=True)
class ChartGeometry:
    """Revenue bars and an orders line in a 600 x 200 viewBox, scaled to the largest day."""

    WIDTH: ClassVar[int] = 600
    HEIGHT: ClassVar[int] = 200
    TOP: ClassVar[int] = 10
    BOTTOM: ClassVar[int] = 20  # room for the day labels

    bars: list[Bar]
    bar_width: float
    line: str  # the orders polyline's points
    max_revenue: Decimal
    max_orders: int

    @classmethod
    def of(cls, chart: figures.OrdersChart) -> ChartGeometry:
        days = chart.days
        plot = cls.HEIGHT - cls.TOP - cls.BOTTOM
        step = cls.WIDTH / max(len(days), 1)
        max_revenue = max((day.revenue for day in days), default=Decimal(0)) or Decimal(1)
        max_orders = max((day.orders for day in days), default=0) or 1
        bars, points = [], []
        for index, day in enumerate(days):
            height = float(day.revenue / max_revenue) * plot
            x = index * step
            bars.append(
                Bar(
                    x=round(x + step * 0.15, 2),
                    y=round(cls.TOP + plot - height, 2),
                    height=round(height, 2),
                    day=day.day.isoformat(),
                    orders=day.orders,
                    revenue=day.revenue,
                )
            )
            y = cls.TOP + plot - day.orders / max_orders * plot
            points.append(f"{x + step / 2:.2f},{y:.2f}")
        return cls(
            bars=bars,
            bar_width=round(step * 0.7, 2),
            line=" ".join(points),
            max_revenue=max_revenue if chart.revenue else Decimal(0),
            max_orders=max_orders if chart.orders else 0,
        )
