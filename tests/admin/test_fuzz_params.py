"""Hostile values in every parameter and path id the crawler found: never a 5xx, never a traceback.

A superuser crawls the seeded admin once per database (tests/admin/crawling.py);
every route it reached with a 200 is then requested again with each query
parameter, and each numeric path segment, replaced by hostile values: unicode
digits, numbers beyond any column, negative, empty, 10,000 characters, NUL,
`%`, and malformed cursors (not base64, the wrong JSON shape, a real cursor
with one part replaced). One of the values is a marker, a phishing line; it
also replaces every other path segment: no 4xx page may print it back (a link
could put any sentence on a trusted page). The parameters a route may read without the crawler
having seen them (`KNOWN_PARAMETERS`) are added too. Writes that take an id
in the path or in `pks=` get the same ids with a valid CSRF token: a 4xx,
never a 5xx. Hypothesis adds random text in search and filter values.

URLs are deduplicated by path shape and parameter name, so the number of
requests grows with the routes, not with the rows.
"""

from __future__ import annotations

import base64
import binascii
import html
import json
import re
import time
from collections.abc import AsyncIterator, Iterable, Iterator
from dataclasses import dataclass, field
from urllib.parse import quote, urlsplit

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.ext.asyncio import AsyncEngine

from admin.views.base import ServiceModelView
from backend.config import Settings
from backend.services.registry import soft_deletable_tables
from tests.admin.conftest import csrf_from
from tests.admin.crawling import (
    PAGING_PARAMETERS,
    Crawl,
    SeededSite,
    crawl,
    path_shape,
    query_of,
    seeded_site,
    summary,
    with_params,
)

# Text a link could plant in an error page; "zq7x" is what is searched for in the answer.
MARKER = "Call-zq7x-to-unlock"
MARKER_TOKEN = "zq7x"
HOSTILE = (
    MARKER,
    "²",
    "١٢",
    "𝟗",
    "1e400",
    "99999999999999999999999",
    "-1",
    "0",
    "",
    "9" * 10_000,
    "\x00",
    "%",
    "nope",
)
# One of each kind, for parameters the crawl did not see on a route.
CORE_HOSTILE = (MARKER, "²", "١٢", "1e400", "99999999999999999999999", "-1", "9" * 10_000, "\x00")
KNOWN_PARAMETERS = (
    "pageSize",
    "page",
    "before",
    "after",
    "days",
    "category",
    "status",
    "search",
    "sortBy",
    "sort",
)
CURSOR_PARAMETERS = ("after", "before")
SORT_VALUES = ("nope", "password_hash", "id desc", "sideways")
# JSON put in place of one part of a real cursor.
BAD_CURSOR_PARTS = ("1e400", "99999999999999999999", '"²"', "null", "[]", "1.5", '"2026-13-45"')
MAX_REQUESTS = 4_000  # a bound on the plan: more means the dedup below stopped working


def b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


GENERIC_CURSORS = (
    "not base64!",
    "====",
    b64("{}"),
    b64("[]"),
    b64('"id"'),
    b64("[1, 2]"),
    b64('["id", 1, 2, 3]'),
    b64('["id", 1e400, 1]'),
    b64('["id", 1, 99999999999999999999]'),
    b64('["nope", 1, 1]'),
    b64(json.dumps([MARKER, MARKER, MARKER])),
)


def mutated_cursors(cursor: str) -> list[str]:
    """A real cursor with each of its parts replaced by bad JSON in turn."""
    try:
        parts = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, binascii.Error):
        return []
    if not isinstance(parts, list):
        return []
    found = []
    for index in range(len(parts)):
        for bad in BAD_CURSOR_PARTS:
            texts = [bad if i == index else json.dumps(part) for i, part in enumerate(parts)]
            found.append(b64("[" + ",".join(texts) + "]"))
    return found


@dataclass
class Route:
    """One path shape the crawl reached, with an example URL per query parameter it saw."""

    shape: str
    base: str  # the URL of this shape with the fewest parameters
    examples: dict[str, str] = field(default_factory=dict)

    @property
    def takes_parameters(self) -> bool:
        """Reads the list parameters: a list, a paged page, an export of a list."""
        return bool(set(self.examples) & set(KNOWN_PARAMETERS)) or "/export" in self.shape


# An export in any format reads its list's parameters the same way (admin/export.py): CSV stands for all.
OTHER_EXPORT_FORMAT = re.compile(r"/export/(?!csv$)[^/]+$")


def routes_of(result: Crawl) -> list[Route]:
    routes: dict[str, Route] = {}
    for visit in result.visits:
        if visit.status != 200 or OTHER_EXPORT_FORMAT.search(urlsplit(visit.url).path):
            continue
        shape = path_shape(urlsplit(visit.url).path)
        route = routes.setdefault(shape, Route(shape, visit.url))
        if len(query_of(visit.url)) < len(query_of(route.base)):
            route.base = visit.url
        for name, _ in query_of(visit.url):
            route.examples.setdefault(name, visit.url)
    return list(routes.values())


@dataclass(frozen=True)
class Probe:
    url: str
    what: str  # which value went where, for the failure message
    path_id: bool = False  # a hostile id in the path must never find a record


def values_for(name: str, example: str, *, added: bool = False) -> list[str]:
    """Every hostile value for a parameter the route was seen with; one of each kind for an added one."""
    if added:
        return list(CORE_HOSTILE)
    values = list(HOSTILE)
    if name in CURSOR_PARAMETERS:
        values += GENERIC_CURSORS
        real = dict(query_of(example)).get(name, "")
        values += mutated_cursors(real) if name == "after" else []
    elif name == "sortBy" or name == "sort":
        values += SORT_VALUES
    return values


def path_probes(route: Route) -> Iterator[Probe]:
    parts = urlsplit(route.base)
    segments = parts.path.split("/")
    query = f"?{parts.query}" if parts.query else ""
    for index, segment in enumerate(segments):
        if index < 2 or not segment:  # "", "admin"
            continue
        is_id = re.fullmatch(r"[0-9]+", segment) is not None
        for value in HOSTILE if is_id else (MARKER,):
            changed = [*segments[:index], quote(value, safe=""), *segments[index + 1 :]]
            yield Probe("/".join(changed) + query, f"path segment {index} = {value[:20]!r}", path_id=is_id)


def query_probes(route: Route) -> Iterator[Probe]:
    for name, example in route.examples.items():
        for value in values_for(name, example):
            yield Probe(with_params(example, **{name: value}), f"{name}={value[:40]!r}")
    absent = [name for name in KNOWN_PARAMETERS if name not in route.examples]
    if route.takes_parameters:
        for name in absent:
            for value in values_for(name, route.base, added=True):
                yield Probe(with_params(route.base, **{name: value}), f"added {name}={value[:40]!r}")
    elif absent:
        # A page that reads no list parameter: every known one at once, once per value.
        for value in CORE_HOSTILE:
            # httpx refuses URLs over 64 KiB: long values go a few parameters at a time.
            step = max(1, 40_000 // (len(value) + 20))
            for start in range(0, len(absent), step):
                names = absent[start : start + step]
                added = dict.fromkeys(names, value)
                yield Probe(with_params(route.base, **added), f"added {', '.join(names)} = {value[:20]!r}")


def plan(routes: Iterable[Route]) -> list[Probe]:
    probes: dict[str, Probe] = {}
    for route in routes:
        for probe in (*path_probes(route), *query_probes(route)):
            probes.setdefault(probe.url, probe)
    return list(probes.values())


def problem(response: httpx.Response, probe: Probe, escaped: list[str]) -> str | None:
    where = f"GET {probe.url[:160]} ({probe.what})"
    if response.status_code >= 500:
        return f"{response.status_code} at {where}: {_first_line(response.text)}"
    if escaped:
        return f"{response.status_code} with an exception after the response started at {where}: {escaped}"
    if "Traceback" in response.text:
        return f"a traceback at {where}"
    if probe.path_id and response.status_code < 300:
        return f"{response.status_code}: a hostile id found a record at {where}"
    if 400 <= response.status_code < 500 and echoes_marker(response):
        return f"{response.status_code} prints text from its URL at {where}: {_around_marker(response.text)}"
    return None


def echoes_marker(response: httpx.Response) -> bool:
    return MARKER_TOKEN in html.unescape(response.text)


def _around_marker(text: str) -> str:
    unescaped = html.unescape(text)
    at = unescaped.find(MARKER_TOKEN)
    return " ".join(unescaped[max(0, at - 120) : at + 40].split())


def _first_line(text: str) -> str:
    stripped = re.sub(r"<[^>]+>", " ", text)
    return " ".join(stripped.split())[:160]


# Fixtures: one seeded site and one superuser crawl per database ------------------------------


@dataclass
class Target:
    site: SeededSite
    client: httpx.AsyncClient
    crawl: Crawl
    routes: list[Route]


@pytest.fixture(scope="module")
async def target(engine: AsyncEngine, settings: Settings) -> AsyncIterator[Target]:
    async with seeded_site(engine, settings) as site:
        client = await site.client(superuser=True)
        try:
            result = await crawl(client, site.escaped)
            print(summary("superuser (for the fuzzer)", result))
            yield Target(site, client, result, routes_of(result))
        finally:
            await client.aclose()


# Tests ------------------------------------------------------------------------------------------


async def test_the_crawl_gives_the_fuzzer_every_kind_of_route(target: Target) -> None:
    shapes = {route.shape for route in target.routes}
    missing = []
    for view in target.site.app.state.admin.views:
        if isinstance(view, ServiceModelView):
            base = f"/admin/{view.identity}"
            missing += [s for s in (f"{base}/list", f"{base}/details/{{id}}") if s not in shapes]
    missing += [
        s for s in ("/admin/trash", "/admin/audit-log", "/admin/jobs", "/admin/jobs/{id}") if s not in shapes
    ]
    assert not missing, f"the crawl never reached {missing}; the fuzzer would not cover them"


async def test_hostile_query_values_and_path_ids_never_5xx(target: Target) -> None:
    probes = plan(target.routes)
    assert len(probes) <= MAX_REQUESTS, f"{len(probes)} probes: deduplicate harder"
    began, cpu = time.perf_counter(), time.process_time()
    found = []
    for probe in probes:
        response = await target.client.get(probe.url)
        issue = problem(response, probe, target.site.escaped.take())
        if issue:
            found.append(issue)
    print(
        f"fuzzed {len(target.routes)} routes with {len(probes)} requests in "
        f"{time.perf_counter() - began:.1f}s ({time.process_time() - cpu:.1f}s CPU)"
    )
    still = await target.client.get("/admin/")
    assert still.status_code == 200, (
        "the fuzzer's session ended on the way: the requests after it proved nothing"
    )
    assert not found, f"{len(found)} hostile requests went wrong:\n" + "\n".join(found)


# Text for search boxes and filters: any unicode but lone surrogates (no browser sends those).
FREE_TEXT = st.text(st.characters(exclude_categories=("Cs",)), max_size=300)


@settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(data=st.data())
async def test_random_search_and_filter_text_never_5xx(target: Target, data: st.DataObject) -> None:
    fields = sorted(
        (name, example)
        for route in target.routes
        for name, example in route.examples.items()
        if name not in PAGING_PARAMETERS
    )
    assert fields, "the crawl found no search or filter parameter"
    name, example = data.draw(st.sampled_from(fields), label="parameter")
    value = data.draw(FREE_TEXT, label="value")
    probe = Probe(with_params(example, **{name: value}), f"{name}={value!r}")
    response = await target.client.get(probe.url)
    issue = problem(response, probe, target.site.escaped.take())
    assert issue is None, issue


def write_probes(target: Target) -> Iterator[tuple[str, str, dict[str, str]]]:
    """(method, url, form) for every write that takes an id, with each hostile id."""
    for table in soft_deletable_tables():
        for what in ("restore", "purge"):
            for value in HOSTILE:
                yield "POST", f"/admin/trash/{table}/{quote(value, safe='')}/{what}", {}
    for table in ("nope", "²", "%00", "audit_entry", MARKER):
        yield "POST", f"/admin/trash/{quote(table, safe='')}/1/restore", {}
    views = [v for v in target.site.app.state.admin.views if isinstance(v, ServiceModelView)]
    lists = ("1,²", ",,,", "1,1e400", "1," + "9" * 30, " 1", "1 ")
    for view in views:
        base = f"/admin/{view.identity}"
        for value in (*HOSTILE, *lists):
            yield "DELETE", f"{base}/delete?pks={quote(value, safe=',')}", {}
        for value in HOSTILE:
            yield "POST", f"{base}/edit/{quote(value, safe='')}", {"save": "Save"}
            # A kept upload is named by its token in the form: any other text names none.
            yield "POST", f"{base}/import/confirm", {"token": value, "file_hash": value, "skip_errors": "yes"}
            yield "POST", f"{base}/import/upload", {"key": value}
    for value in (*HOSTILE, *lists):
        yield "POST", f"/admin/product/action/mark-active?pks={quote(value, safe=',')}", {}
    for value in HOSTILE:
        yield "POST", f"/admin/jobs/{quote(value, safe='')}/retry", {}
        previewed = {"file_hash": value, "skip_errors": "yes"}  # "Import these rows" of a preview job
        yield "POST", f"/admin/jobs/{quote(value, safe='')}/import", previewed
    for value in HOSTILE:
        password = {"password": "fuzz-password-123", "password_confirm": "fuzz-password-123"}
        yield "POST", f"/admin/user/set-password/{quote(value, safe='')}", password


async def test_hostile_ids_in_writes_answer_4xx(target: Target) -> None:
    token = csrf_from((await target.client.get("/admin/")).text)
    began, count = time.perf_counter(), 0
    found = []
    for method, url, form in write_probes(target):
        count += 1
        response = await target.client.request(
            method, url, data={**form, "csrf_token": token}, headers={"X-CSRF-Token": token}
        )
        # A bulk action answers a form post: back to the list with a message is fine too.
        redirected = "/action/" in url and response.status_code in (302, 303)
        escaped = target.site.escaped.take()
        refused = 400 <= response.status_code < 500
        echoed = refused and echoes_marker(response)
        if not (refused or redirected) or "Traceback" in response.text or escaped or echoed:
            said = _around_marker(response.text) if echoed else _first_line(response.text)
            found.append(f"{method} {url[:160]} -> {response.status_code}: {escaped or said}")
    print(f"{count} hostile writes in {time.perf_counter() - began:.1f}s")
    assert not found, f"{len(found)} writes with hostile ids went wrong:\n" + "\n".join(found)
