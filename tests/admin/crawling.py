"""A bounded crawler of the admin, and the seeded site it crawls; shared by the crawl and fuzz tests.

The crawler signs in as nobody in particular: it is handed a signed-in
client and walks every same-origin link reachable from `/admin/` with GET
only. It reads links the way a browser would show them: `<a href>`, the
`data-url` of buttons (the delete modal and custom actions excepted: those
write), and GET forms (submitted with their shown values, then with each
option of each select). It never follows logout, `/action/`, `/delete`,
sign-in or static files.

It is bounded: URLs are grouped by shape (the path with numeric segments as
`{id}`, plus the names of the query parameters), and only a few URLs of each
shape are fetched; menu links, redirects and form submissions are always
fetched; and the whole walk stops after `max_requests`. That still pages
every list forwards and backwards several pages deep, sorts, filters,
searches and opens details, edit, history and export pages of every model.

From a searched or filtered list it also checks the export: the CSV must hold
exactly the rows the list shows across all its pages.
"""

from __future__ import annotations

import csv
import io
import re
import tempfile
import time
from collections import Counter, deque
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import parse_qsl, quote, quote_plus, urlencode, urljoin, urlsplit

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from starlette.applications import Starlette
from starlette.types import ASGIApp, Receive, Scope, Send

from admin.app import create_app
from backend.auth.actor import Actor
from backend.config import Settings
from backend.db.session import Database
from backend.db.uow import unit_of_work
from backend.models import AuditEntry, OrderStatus, Permission, ProductStatus, Tag
from backend.services.customers import CustomerService
from tests.admin.conftest import sign_in
from tests.factories import (
    make_category,
    make_customer,
    make_order,
    make_product,
    make_role,
    make_tag,
    make_user,
    unique,
)
from tests.jobs.factories import jobs_of_every_kind

ORIGIN = "http://testserver"
START = "/admin/"
# Path segments the crawler never follows: they write, end the session, or are files.
SKIPPED_SEGMENTS = frozenset({"logout", "login", "action", "delete", "statics"})
# Query parameters that move through a list rather than choose its rows.
PAGING_PARAMETERS = frozenset({"after", "before", "page", "pageSize", "sortBy", "sort"})
CONTROL_KINDS = frozenset({"menu", "link", "data-url", "form", "search", "redirect"})
LIST_PATH = re.compile(r"^/admin/([^/]+)/list$")
SEARCH_TERM = "1"  # every generated name holds digits: a search that matches some rows of each list
LIST_ROWS = 25  # three pages at the smallest page size offered (10)
TRASH_ROWS = 105  # the trash and the audit log show 50 a page: three pages
AUDIT_ROWS = 105
FORM_SUBMISSIONS = 6  # per GET form: as shown, then some other choices
EXPORT_CHECKS = 2  # per list
MAX_PAGES_WALKED = 20  # to collect a list's ids for comparing with its export


# Parsing ----------------------------------------------------------------------


@dataclass
class GetForm:
    action: str
    # name -> the values to try, the shown one first
    fields: list[tuple[str, list[str]]] = field(default_factory=list)


@dataclass
class Page:
    links: list[tuple[str, str]] = field(default_factory=list)  # (href, kind)
    forms: list[GetForm] = field(default_factory=list)
    row_ids: list[str] = field(default_factory=list)
    next_href: str | None = None
    has_search: bool = False


class PageParser(HTMLParser):
    """Links, GET forms, list row ids and the "next" link of one HTML page."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.page = Page()
        self._aside_depth = 0
        self._last_hidden: str | None = None
        self._page_link: tuple[str, list[str]] | None = None  # (href, text) of an open a.page-link
        self._form: GetForm | None = None
        self._select: tuple[str, list[str], list[str]] | None = None  # (name, options, selected)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {name: value or "" for name, value in attrs}
        classes = a.get("class", "").split()
        data_url = a.get("data-url", "")
        if data_url and not {"delete", "action"} & set(data_url.split("/")):
            if "/ajax/lookup" in data_url and a.get("name"):
                data_url = with_params(data_url, name=a["name"])  # what the lookup box sends
            self.page.links.append((data_url, "data-url"))
        if tag == "aside":
            self._aside_depth += 1
        elif tag == "a" and "href" in a:
            href = a["href"]
            if href and not href.startswith(("#", "javascript:", "mailto:")):
                self.page.links.append((href, "menu" if self._aside_depth else "link"))
            if "page-link" in classes:
                self._page_link = (href, [])
        elif tag == "form":
            if a.get("method", "get").lower() == "get":
                self._form = GetForm(action=a.get("action", ""))
        elif tag == "input":
            self._input(a, classes)
        elif tag == "select" and self._form is not None and a.get("name"):
            self._select = (a["name"], [], [])
        elif tag == "option" and self._select is not None:
            value = a.get("value", "")
            self._select[1].append(value)
            if "selected" in a:
                self._select[2].append(value)

    def _input(self, a: dict[str, str], classes: list[str]) -> None:
        kind = a.get("type", "text").lower()
        if a.get("id") == "search-input":
            self.page.has_search = True
        if kind == "hidden":
            self._last_hidden = a.get("value", "")
        if "select-box" in classes and self._last_hidden is not None:
            self.page.row_ids.append(self._last_hidden)
        if self._form is None or not a.get("name") or kind in {"submit", "button", "image", "reset", "file"}:
            return
        if kind in {"checkbox", "radio"} and "checked" not in a:
            return
        self._form.fields.append((a["name"], [a.get("value", "")]))

    def handle_data(self, data: str) -> None:
        if self._page_link is not None:
            self._page_link[1].append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "aside":
            self._aside_depth = max(0, self._aside_depth - 1)
        elif tag == "a" and self._page_link is not None:
            href, text = self._page_link
            if "next" in " ".join(text).lower() and href and href != "#":
                self.page.next_href = href
            self._page_link = None
        elif tag == "select" and self._select is not None and self._form is not None:
            name, options, selected = self._select
            shown = selected[0] if selected else (options[0] if options else "")
            self._form.fields.append((name, [shown, *(o for o in options if o != shown)]))
            self._select = None
        elif tag == "form" and self._form is not None:
            self.page.forms.append(self._form)
            self._form = None


def parse_page(html: str) -> Page:
    parser = PageParser()
    parser.feed(html)
    parser.close()
    return parser.page


def form_urls(form: GetForm, page_url: str) -> list[str]:
    """The form submitted as shown, then once per other option of each select."""
    action = form.action or page_url.split("?")[0]
    shown = [(name, values[0]) for name, values in form.fields]
    urls = [f"{action}?{urlencode(shown)}"]
    for index, (_name, values) in enumerate(form.fields):
        for value in values[1:]:
            varied = list(shown)
            varied[index] = (varied[index][0], value)
            urls.append(f"{action}?{urlencode(varied)}")
    return urls


# URLs ---------------------------------------------------------------------------


def resolve(href: str, base: str) -> str | None:
    """A same-origin path (+ query) the crawler may GET, or None."""
    absolute = urljoin(ORIGIN + base, href.strip())
    parts = urlsplit(absolute)
    if f"{parts.scheme}://{parts.netloc}" != ORIGIN or not parts.path.startswith("/admin"):
        return None
    if SKIPPED_SEGMENTS & set(parts.path.split("/")):
        return None
    return parts.path + (f"?{parts.query}" if parts.query else "")


def query_of(url: str) -> list[tuple[str, str]]:
    return parse_qsl(urlsplit(url).query, keep_blank_values=True)


def path_shape(path: str) -> str:
    return "/".join("{id}" if re.fullmatch(r"[0-9]+", part) else part for part in path.split("/"))


def url_shape(url: str) -> tuple[str, tuple[str, ...]]:
    """The path with numeric segments as `{id}`, and the sorted query parameter names."""
    parts = urlsplit(url)
    return path_shape(parts.path), tuple(sorted({name for name, _ in query_of(url)}))


def list_features(url: str) -> frozenset[str]:
    """What a list URL does: page on or back, resize, sort, search, filter."""
    names = {name for name, _ in query_of(url)}
    features = set()
    if "after" in names:
        features.add("next")
    if "before" in names:
        features.add("previous")
    if names & {"pageSize", "page"}:
        features.add("page size")
    if names & {"sortBy", "sort"}:
        features.add("sort")
    if "search" in names:
        features.add("search")
    features.update(f"filter {name}" for name in names - PAGING_PARAMETERS - {"search"})
    return frozenset(features)


def budget_key(url: str, kind: str) -> tuple[object, ...] | None:
    """The group a URL counts against (a few URLs of each group are fetched), or None to skip it.

    A list is crawled with each feature alone, and each feature paged on and
    back (sorted, then next); deeper combinations multiply without finding more.
    A record page (a path with an id) counts the same whatever its query.
    """
    path = urlsplit(url).path
    shape = path_shape(path)
    if LIST_PATH.match(path):
        features = list_features(url)
        paging = features & {"next", "previous"}
        if len(features) > 2 or (len(features) == 2 and len(paging) != 1):
            return None
        return ("list", shape, features)
    if "{id}" in shape:
        return ("record", shape)
    return ("form" if kind == "form" else "page", shape, url_shape(url)[1])


def with_params(url: str, **params: str) -> str:
    parts = urlsplit(url)
    kept = [(k, v) for k, v in query_of(url) if k not in params]
    return f"{parts.path}?{urlencode([*kept, *params.items()])}"


# Crawling -------------------------------------------------------------------------


class EscapedErrors:
    """ASGI wrapper for tests: remembers every exception that escapes the app.

    Starlette answers a failure with a 500 and raises it again; a failure
    after a streamed response has started (a CSV export) cannot change the
    status any more, so the client sees a 200 and a cut-off body. The test
    client swallows both; this keeps them.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.errors: list[str] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await self.app(scope, receive, send)
        except Exception as exc:
            self.errors.append(f"{type(exc).__name__}: {str(exc)[:200]}")
            raise

    def take(self) -> list[str]:
        taken, self.errors = self.errors, []
        return taken


@dataclass
class Visit:
    url: str
    source: str
    kind: str
    status: int
    content_type: str
    body: str
    location: str
    escaped: list[str]  # exceptions that escaped the app while answering


@dataclass
class Crawl:
    visits: list[Visit] = field(default_factory=list)
    export_problems: list[str] = field(default_factory=list)
    exports_checked: int = 0
    seconds: float = 0.0
    stopped_early: bool = False

    @property
    def requests(self) -> int:
        return len(self.visits)


class Crawler:
    def __init__(
        self, client: httpx.AsyncClient, escaped: EscapedErrors, *, per_group: int, max_requests: int
    ) -> None:
        self.client = client
        self.escaped = escaped
        self.per_group = per_group
        self.max_requests = max_requests
        self.crawl = Crawl()
        self.seen: set[str] = set()
        self.groups: Counter[tuple[object, ...]] = Counter()
        self.queue: deque[tuple[str, str, str]] = deque()
        self.export_checks: Counter[str] = Counter()

    async def fetch(self, url: str, *, source: str, kind: str) -> Visit:
        self.seen.add(url)
        response = await self.client.get(url)
        visit = Visit(
            url=url,
            source=source,
            kind=kind,
            status=response.status_code,
            content_type=response.headers.get("content-type", ""),
            body=response.text,
            location=response.headers.get("location", ""),
            escaped=self.escaped.take(),
        )
        self.crawl.visits.append(visit)
        return visit

    def enqueue(self, href: str, *, source: str, kind: str) -> None:
        url = resolve(href, source)
        if url is None or url in self.seen:
            return
        if kind == "data-url" and "/ajax/lookup" in url:
            url = with_params(url, term=SEARCH_TERM)  # what the form's lookup box sends
        self.queue.append((url, source, kind))

    async def run(self, start: str = START) -> Crawl:
        began = time.perf_counter()
        self.queue.append((start, "(start)", "menu"))
        while self.queue:
            url, source, kind = self.queue.popleft()
            if url in self.seen:
                continue
            group = budget_key(url, kind)
            if kind not in {"menu", "redirect"}:
                limit = FORM_SUBMISSIONS if group and group[0] == "form" else self.per_group
                if group is None or self.groups[group] >= limit:
                    continue
            if self.crawl.requests >= self.max_requests:
                self.crawl.stopped_early = True
                break
            if group is not None:
                self.groups[group] += 1
            visit = await self.fetch(url, source=source, kind=kind)
            await self.follow(visit)
        self.crawl.seconds = time.perf_counter() - began
        return self.crawl

    async def follow(self, visit: Visit) -> None:
        if 300 <= visit.status < 400 and visit.location:
            self.enqueue(visit.location, source=visit.url, kind="redirect")
            return
        if visit.status != 200 or not visit.content_type.startswith("text/html"):
            return
        page = parse_page(visit.body)
        for href, kind in page.links:
            self.enqueue(href, source=visit.url, kind=kind)
        for form in page.forms:
            for url in form_urls(form, visit.url):
                self.enqueue(url, source=visit.url, kind="form")
        if LIST_PATH.match(urlsplit(visit.url).path):
            if page.has_search and not query_of(visit.url):
                self.enqueue(with_params(visit.url, search=SEARCH_TERM), source=visit.url, kind="search")
            await self.check_exports(visit, page)

    async def check_exports(self, visit: Visit, page: Page) -> None:
        """From a searched or filtered first page: the export holds exactly the list's rows."""
        names = {name for name, value in query_of(visit.url) if value}
        if not names - PAGING_PARAMETERS or names & {"after", "before"}:
            return
        path = urlsplit(visit.url).path
        export_prefix = path.removesuffix("/list") + "/export"
        exports = [
            href
            for href, kind in page.links
            if kind == "link" and (resolve(href, visit.url) or "").startswith(export_prefix)
        ]
        if not exports or self.export_checks[path] >= EXPORT_CHECKS:
            return
        self.export_checks[path] += 1
        ids, current, pages = list(page.row_ids), page, 1
        while current.next_href and pages < MAX_PAGES_WALKED:
            next_url = resolve(current.next_href, visit.url)
            if next_url is None:
                break
            walked = await self.fetch(next_url, source=visit.url, kind="link")
            if walked.status != 200:
                break  # reported with every other visit
            current = parse_page(walked.body)
            ids.extend(current.row_ids)
            pages += 1
        if current.next_href and pages >= MAX_PAGES_WALKED:
            self.crawl.export_problems.append(f"{visit.url} has over {pages} pages: seed fewer rows")
            return
        for href in exports:
            export_url = resolve(href, visit.url)
            if export_url is None:
                continue
            exported = await self.fetch(export_url, source=visit.url, kind="link")
            if exported.status == 200 and exported.content_type.startswith("text/csv"):
                self.crawl.exports_checked += 1
                problem = compare_export(exported.body, ids)
                if problem:
                    self.crawl.export_problems.append(f"{export_url} (the export on {visit.url}): {problem}")


def compare_export(body: str, list_ids: list[str]) -> str | None:
    rows = list(csv.reader(io.StringIO(body)))
    if not rows:
        return "an empty file"
    header = [name.strip().lower() for name in rows[0]]
    if "id" not in header:
        return f"no id column in {rows[0]}"
    column = header.index("id")
    exported = [row[column] for row in rows[1:] if len(row) > column]
    if sorted(exported) == sorted(list_ids):
        return None
    missing = sorted(set(list_ids) - set(exported), key=_numeric)
    extra = sorted(set(exported) - set(list_ids), key=_numeric)
    return (
        f"{len(exported)} rows exported, the list shows {len(list_ids)}; "
        f"not exported: {missing[:10]}, not in the list: {extra[:10]}"
    )


def _numeric(value: str) -> tuple[int, str]:
    return (int(value), "") if value.isdigit() else (0, value)


async def crawl(
    client: httpx.AsyncClient, escaped: EscapedErrors, *, per_group: int = 2, max_requests: int = 600
) -> Crawl:
    """Crawl as `client`'s user; `escaped` wraps the app the client talks to."""
    return await Crawler(client, escaped, per_group=per_group, max_requests=max_requests).run()


# What a crawl found wrong ---------------------------------------------------------


def failures(result: Crawl, *, hidden_values: Iterable[str] = ()) -> list[str]:
    """Every offending URL at once: 5xx, tracebacks, broken menu links and controls, leaks, exports."""
    hidden = [v for v in hidden_values if v]
    found: list[str] = []
    for visit in result.visits:
        where = f"{visit.url} (from {visit.source}, {visit.kind})"
        if visit.status >= 500:
            found.append(f"{visit.status} at {where}")
        elif visit.escaped:
            found.append(
                f"{visit.status} with an exception after the response started at {where}: {visit.escaped}"
            )
        if "Traceback" in visit.body:
            found.append(f"a traceback in the body of {where}")
        if visit.kind == "menu" and (visit.status != 200 or not visit.content_type.startswith("text/html")):
            found.append(f"menu link answers {visit.status} {visit.content_type!r}: {where}")
        elif visit.kind in CONTROL_KINDS and visit.status in (403, 404):
            found.append(f"shown control leads to {visit.status}: {where}")
        for value in hidden:
            if any(form in visit.body or form in visit.location for form in _forms_of(value)):
                found.append(f"hidden value {value!r} in the response to {where}")
    found.extend(f"export does not match its list: {problem}" for problem in result.export_problems)
    if result.stopped_early:
        found.append(f"the crawl stopped at its bound of {result.requests} requests: raise it or cap shapes")
    return found


def coverage_gaps(result: Crawl, expected_paths: Iterable[str]) -> list[str]:
    """Path shapes the crawl should have answered with a 200 but did not reach, and lists not paged."""
    reached = {path_shape(urlsplit(v.url).path) for v in result.visits if v.status == 200}
    gaps = [f"never reached {path}" for path in expected_paths if path not in reached]
    paged = {
        (urlsplit(v.url).path, feature)
        for v in result.visits
        if v.status == 200 and LIST_PATH.match(urlsplit(v.url).path)
        for feature in list_features(v.url) & {"next", "previous"}
    }
    for path in expected_paths:
        if LIST_PATH.match(path):
            gaps += [f"never paged {path} to {f}" for f in ("next", "previous") if (path, f) not in paged]
    return gaps


def _forms_of(value: str) -> set[str]:
    """A value as it may appear in a page, a URL or a JSON diff."""
    return {value, quote_plus(value), quote(value)}


def summary(role: str, result: Crawl) -> str:
    statuses = Counter(visit.status for visit in result.visits)
    return (
        f"crawl as {role}: {result.requests} requests in {result.seconds:.1f}s, "
        f"{result.exports_checked} exports checked, statuses {dict(sorted(statuses.items()))}"
    )


# The site to crawl ------------------------------------------------------------------


@dataclass
class SeededSite:
    app: Starlette
    sessions: async_sessionmaker[AsyncSession]
    pii_values: list[str]
    every_view_role: str  # `view` on every model and page, no `customer.view_pii`
    escaped: EscapedErrors = field(init=False)

    def __post_init__(self) -> None:
        self.escaped = EscapedErrors(self.app)

    async def client(self, *, roles: Iterable[str] = (), superuser: bool = False) -> httpx.AsyncClient:
        """A new client signed in as a new user with `roles` (close it when done)."""
        async with self.sessions() as session:
            user = await make_user(session, roles=list(roles), is_superuser=superuser)
            # Jobs are their owner's alone: each crawling user gets one of every kind to reach.
            await jobs_of_every_kind(session, user, self.app.state.settings)
            await session.commit()
        transport = httpx.ASGITransport(app=self.escaped, raise_app_exceptions=False)
        client = httpx.AsyncClient(transport=transport, base_url=ORIGIN)
        response = await sign_in(client, user.username)
        assert response.status_code == 302, f"cannot sign in as {roles or 'superuser'}: {response.text[:300]}"
        return client


@asynccontextmanager
async def seeded_site(engine: AsyncEngine, settings: Settings) -> AsyncIterator[SeededSite]:
    """The app over a database seeded for crawling, in a transaction rolled back afterwards.

    One per module (the function-scoped `session` fixture would seed it again
    for every test); built like tests/conftest.py's `connection` and `sessions`.
    """
    # Job files (a done export's) go to a folder of the site's own, removed afterwards.
    jobs_folder = tempfile.TemporaryDirectory(prefix="custodian-crawl-jobs-")
    settings = settings.model_copy(update={"job_files_dir": Path(jobs_folder.name)})
    async with engine.connect() as connection:
        transaction = await connection.begin()
        try:
            sessions = async_sessionmaker(
                bind=connection,
                expire_on_commit=False,
                autoflush=False,
                join_transaction_mode="create_savepoint",
            )
            database = Database(settings, engine=engine, sessions=sessions)
            async with sessions() as session:
                pii, role = await seed(session, database)
            yield SeededSite(create_app(settings, database=database), sessions, pii, role)
        finally:
            if transaction.is_active:
                await transaction.rollback()
            jobs_folder.cleanup()


async def seed(session: AsyncSession, database: Database) -> tuple[list[str], str]:
    """Rows for three pages of every list, customers with distinctive personal data, trash and audit.

    Returns the personal values a role without `customer.view_pii` must never
    see, and the name of a role with every `view` permission but that one.
    """
    marker = unique("")  # digits only: a phone number may hold nothing else
    pii: list[str] = []
    categories = [await make_category(session) for _ in range(LIST_ROWS)]
    for index in range(LIST_ROWS):
        await make_tag(session)
        await make_product(
            session,
            category_id=categories[index].id,
            status=list(ProductStatus)[index % len(ProductStatus)],
        )
        email, phone, address = _pii(marker, index)
        pii += [email, phone, address]
        customer = await make_customer(session, email=email, phone=phone, address=address)
        await make_order(session, customer_id=customer.id, status=list(OrderStatus)[index % len(OrderStatus)])
        await make_user(session)
        await make_role(session)
    view_codenames = list(
        (
            await session.execute(
                select(Permission.codename).where(
                    Permission.codename.like("%.view"), Permission.codename != "customer.view_pii"
                )
            )
        ).scalars()
    )
    role = await make_role(session, name=unique("every-view-no-pii-"), permissions=view_codenames)
    now = datetime.now(UTC)
    deleted = [
        Tag(name=unique("deleted tag "), deleted_at=now - timedelta(minutes=index))
        for index in range(TRASH_ROWS)
    ]
    session.add_all(deleted)
    await session.flush()
    session.add_all(
        AuditEntry(
            actor_name="crawl-seed",
            action="update",
            model="tag",
            object_id=str(deleted[index % len(deleted)].id),
            object_repr="a tag",
            changes={"name": ["before", "after"]},
        )
        for index in range(AUDIT_ROWS)
    )
    await session.commit()
    pii += await _audited_customers(database, marker)
    return pii, role.name


def _pii(marker: str, index: int) -> tuple[str, str, str]:
    return (
        f"pii-{marker}-{index}@leak.example",
        f"+1 555 {marker} {index:04d}",
        f"{index} Leakcheck Lane {marker}",
    )


async def _audited_customers(database: Database, marker: str) -> list[str]:
    """Customers created, changed and deleted through the service, so their data is in the audit log."""
    values: list[str] = []
    async with unit_of_work(database, Actor.system("crawl-seed")) as uow:
        service = CustomerService(uow)
        for index in range(100, 103):
            email, phone, address = _pii(marker, index)
            values += [email, phone, address]
            customer = await service.create(
                {"name": unique("Audited customer "), "email": email, "phone": phone, "address": address}
            )
            if index == 101:
                new_email, new_phone, new_address = _pii(marker, index + 100)
                values += [new_email, new_phone, new_address]
                await service.update(
                    customer.id, {"email": new_email, "phone": new_phone, "address": new_address}
                )
            if index == 102:
                await service.delete(customer.id)
        await uow.commit()
    return values
