"""The admin in English and German: which language a request gets, and the catalog that speaks it.

One rule picks the language: the signed-in user's choice (their account page,
`User.locale`, copied into their session at sign-in), else `?lang=` (kept in a
cookie) or that cookie, else the browser's Accept-Language, else English. Only
the languages an account may choose (`backend.services.users.LANGUAGES`) are
ever picked: an unknown code or a garbled header falls through to the next
source, never to an error.

SQLAdmin's own i18n (`I18nConfig`) is not switched on: its middleware runs
after ours, accepts languages we have no catalog for (ru, ja, ...) and lets
`?lang=` win over a user's choice. We keep its public pieces: `set_locale`
is the one place the request's language lives (SQLAdmin's own code reads it
to recognise its translated Save buttons), and its German catalog answers
every message ours does not (admin/locale/de/LC_MESSAGES/custodian.po).
The CLI never imports this module: manage.py speaks English.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from babel.support import LazyProxy, NullTranslations, Translations
from jinja2 import Environment
from sqladmin.i18n import get_locale, set_locale
from sqladmin.i18n import gettext as sqladmin_gettext
from sqladmin.i18n import ngettext as sqladmin_ngettext
from starlette.datastructures import MutableHeaders
from starlette.requests import HTTPConnection, Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from admin.auth import CustodianAuthentication, current_actor
from admin.locale.service_messages import MODEL_NAME_VALUES, NUMBER_VALUES, REASON_VALUES, SERVICE_MESSAGES
from backend.auth.actor import Actor
from backend.db.uow import unit_of_work
from backend.labels import readable_label
from backend.services.auth import LoginOutcome
from backend.services.users import LANGUAGES, UserService

DEFAULT_LOCALE = "en"
LOCALE_DIR = Path(__file__).parent / "locale"
DOMAIN = "custodian"
LANGUAGE_PARAM = "lang"
LANGUAGE_COOKIE = "custodian_language"
LANGUAGE_COOKIE_MAX_AGE = 365 * 24 * 3600
# Each language by its own name, as a menu of languages shows it.
LANGUAGE_NAMES = {"en": "English", "de": "Deutsch"}
# A header longer than this is read only this far: nobody prefers forty languages.
MAX_HEADER_LENGTH = 500
LOCALE_SESSION_KEY = "locale"  # the signed-in user's choice, copied from `User.locale`


class _SQLAdminCatalog(NullTranslations):
    """SQLAdmin's catalog for the request's language: what ours does not translate, SQLAdmin may."""

    def gettext(self, message: str) -> str:
        return sqladmin_gettext(message)

    def ngettext(self, msgid1: str, msgid2: str, n: int) -> str:
        return sqladmin_ngettext(msgid1, msgid2, n)


_PLACEHOLDER = re.compile(r"%\((\w+)\)s")


class _ServiceMessages(NullTranslations):
    """The one rule for the services' sentences with values in them (English, shared with the CLI).

    Each pattern of admin/locale/service_messages.py ("A user named %(value)s already exists.")
    is matched against the whole message; a match is the pattern's translation with the values
    put back. A value named in `MODEL_NAME_VALUES` ("product") is a model's name, shown as the
    catalog names it ("Produkt"); one in `REASON_VALUES` is a refusal quoted inside another
    ("Cannot restore this tag: ...") and is translated too; any other stays as written (a name,
    a SKU, a number). A message no pattern matches goes on to SQLAdmin's catalog.
    """

    def __init__(self, ours: NullTranslations, exact: NullTranslations, patterns: Iterable[str]) -> None:
        super().__init__()
        self.ours = ours  # the whole chain, for a quoted refusal
        self.exact = exact  # our catalog alone: a pattern it lacks stays English, never loops
        self.patterns = [str(pattern) for pattern in patterns if _PLACEHOLDER.search(str(pattern))]
        alternatives = [
            f"(?P<p{index}>{_pattern_regex(pattern, index)})" for index, pattern in enumerate(self.patterns)
        ]
        self.regex = re.compile("|".join(alternatives), re.DOTALL)

    def gettext(self, message: str) -> str:
        match = self.regex.fullmatch(message) if self.patterns else None
        if match is None or match.lastgroup is None:
            return super().gettext(message)
        index = int(match.lastgroup[1:])
        pattern = self.patterns[index]
        values = {
            name: self._value(name, match.group(f"p{index}_{name}")) for name in _PLACEHOLDER.findall(pattern)
        }
        return self.exact.gettext(pattern) % values

    def _value(self, name: str, value: str) -> str:
        if name in MODEL_NAME_VALUES:
            name_as_declared = value[:1].upper() + value[1:]
            shown = self.exact.gettext(name_as_declared)
            return value if shown == name_as_declared else shown
        return self.ours.gettext(value) if name in REASON_VALUES else value


def _pattern_regex(pattern: str, index: int) -> str:
    """`pattern` as a regular expression: its text as written, each placeholder any text (a number
    for one of `NUMBER_VALUES`, so "Order item 7" is the model "order item" and the id 7)."""
    parts: list[str] = []
    seen: set[str] = set()
    position = 0
    for found in _PLACEHOLDER.finditer(pattern):
        parts.append(re.escape(pattern[position : found.start()]))
        name = found.group(1)
        text = r"-?[\d.,]+" if name in NUMBER_VALUES else ".+?"
        parts.append(f"(?P=p{index}_{name})" if name in seen else f"(?P<p{index}_{name}>{text})")
        seen.add(name)
        position = found.end()
    parts.append(re.escape(pattern[position:]))
    return "".join(parts)


def _load_catalogs() -> dict[str, NullTranslations]:
    catalogs: dict[str, NullTranslations] = {}
    for locale in LANGUAGES:
        # English has no catalog of ours: its messages are their own translation.
        ours = Translations.load(str(LOCALE_DIR), [locale], DOMAIN)
        if locale != DEFAULT_LOCALE:
            exact = Translations.load(str(LOCALE_DIR), [locale], DOMAIN)
            ours.add_fallback(_ServiceMessages(ours, exact, SERVICE_MESSAGES))
        ours.add_fallback(_SQLAdminCatalog())
        catalogs[locale] = ours
    return catalogs


_CATALOGS = _load_catalogs()


def active_locale() -> str:
    """The language of the request being served ("en" outside a request)."""
    locale = get_locale()
    return locale if locale in _CATALOGS else DEFAULT_LOCALE


def gettext(message: str) -> str:
    """`message` in the request's language: ours, else a service message's pattern
    (admin/locale/service_messages.py), else SQLAdmin's catalog, else as written."""
    # str(): a lazy label (a form field's) is looked up by its English text.
    return _CATALOGS[active_locale()].gettext(str(message))


def ngettext(singular: str, plural: str, n: int) -> str:
    return _CATALOGS[active_locale()].ngettext(singular, plural, n)


def lazy_gettext(message: str) -> str:
    """`message` translated each time it is shown: for texts made before any request (labels)."""
    return LazyProxy(gettext, message, enable_cache=False)  # type: ignore[return-value]  # a str stand-in


def localise_names(view: type[Any]) -> None:
    """A view's names (menu, page titles, its menu group) shown in the request's language.

    SQLAdmin reads them on every page, so a lazy translation follows each request; in English
    they equal the names as declared. Applied once per view class (a second app finds it done).
    """
    for attribute in ("name", "name_plural", "category"):
        value = getattr(view, attribute, None)
        if isinstance(value, str) and value:  # a lazy name is no str: already done
            setattr(view, attribute, lazy_gettext(value))


def translated(message: str, **values: Any) -> str:
    """`message` in the request's language with `values` put in: `translated("No %(name)s.", name=...)`."""
    text = gettext(message)
    return text % values if values else text


def translated_plural(singular: str, plural: str, n: int, **values: Any) -> str:
    """The form of the message for `n` in the request's language, with `n` as `count` and `values` put in."""
    return ngettext(singular, plural, n) % {"count": n, **values}


def noun(word: str) -> str:
    """A model's name inside a sentence: lower case in English ("no product 5"), as written in German."""
    return word if active_locale() == "de" else word.lower()


def model_name(table: str, *, in_sentence: bool = False) -> str:
    """A model's name from its table, as the catalog names it: "order_item" -> "Order item"
    ("Bestellposition"); `in_sentence` writes it as `noun` does ("order item" in English)."""
    name = gettext(readable_label(table))
    return noun(name) if in_sentence else name


def supported(code: str | None) -> str | None:
    """`code` when it names a language the admin speaks exactly ("de"), else None."""
    return code if code in LANGUAGES else None


def from_accept_language(header: str) -> str | None:
    """The language the browser prefers most among ours; None when it names none of them.

    Tolerant of anything: a malformed part or weight is skipped, "de-AT" counts as "de",
    a weight of 0 means "not this one".
    """
    ranked: list[tuple[float, int, str]] = []
    for position, part in enumerate(header[:MAX_HEADER_LENGTH].split(",")):
        tag, _, params = part.strip().partition(";")
        language = tag.strip().split("-")[0].split("_")[0].lower()
        if language not in LANGUAGES:
            continue
        weight = _weight(params)
        if weight > 0:
            ranked.append((-weight, position, language))
    return min(ranked)[2] if ranked else None


def _weight(params: str) -> float:
    name, _, value = params.strip().partition("=")
    if name.strip().lower() != "q":
        return 1.0 if not params.strip() else 0.0
    try:
        weight = float(value.strip())
    except ValueError:
        return 0.0
    return weight if 0 <= weight <= 1 else 0.0  # NaN, "inf" and 1e400 are not weights


def locale_for(*, chosen: str | None, requested: str | None, cookie: str | None, header: str | None) -> str:
    """The one rule: the user's choice, `?lang=`, the cookie, Accept-Language, English."""
    return (
        supported(chosen)
        or supported(requested)
        or supported(cookie)
        or from_accept_language(header or "")
        or DEFAULT_LOCALE
    )


class LanguageMiddleware:
    """Sets each admin request's language before anything renders; the user's choice follows sign-in.

    `?lang=en|de` is remembered in a cookie for the admin's pages (a choice for
    whoever uses this browser, before or without signing in); any other value
    is ignored.
    """

    def __init__(self, app: ASGIApp, *, cookie_path: str = "/") -> None:
        self.app = app
        self.cookie_path = cookie_path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        connection = HTTPConnection(scope)
        requested = supported(connection.query_params.get(LANGUAGE_PARAM))
        set_locale(
            locale_for(
                chosen=None,
                requested=requested,
                cookie=connection.cookies.get(LANGUAGE_COOKIE),
                header=connection.headers.get("accept-language"),
            )
        )
        if requested is None:
            await self.app(scope, receive, send)
            return

        async def remember(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message).append(
                    "set-cookie",
                    f"{LANGUAGE_COOKIE}={requested}; Path={self.cookie_path}; "
                    f"Max-Age={LANGUAGE_COOKIE_MAX_AGE}; HttpOnly; SameSite=Lax",
                )
            await send(message)

        await self.app(scope, receive, remember)


def without_choice(request: Request) -> str:
    """The language this request gets when its user has chosen none (the cookie, Accept-Language, English)."""
    return locale_for(
        chosen=None,
        requested=None,
        cookie=request.cookies.get(LANGUAGE_COOKIE),
        header=request.headers.get("accept-language"),
    )


def switch_to(locale: str | None) -> None:
    """Speak `locale` for the rest of this request (English for a language we do not speak)."""
    set_locale(supported(locale) or DEFAULT_LOCALE)


def remember_choice(request: Request, locale: str | None) -> None:
    """Keep the user's choice in their session (set at sign-in and on their account page).

    Read from there on every request, so choosing a language costs no query per page. Another
    browser's session of the same user follows the new choice from its next sign-in.
    """
    if supported(locale):
        request.session[LOCALE_SESSION_KEY] = locale
    else:
        request.session.pop(LOCALE_SESSION_KEY, None)


def use_chosen_locale(request: Request) -> None:
    """Switch this request to the signed-in user's own choice of language, if they made one."""
    if current_actor(request).user_id is None:
        return
    chosen = supported(request.session.get(LOCALE_SESSION_KEY))
    if chosen is not None:
        set_locale(chosen)


class LanguageAwareAuthentication(CustodianAuthentication):
    """Sign-in as CustodianAuthentication does it; the user's language is looked up once, at sign-in.

    Once a request's user is known their choice applies, also when the check then refuses
    the request (a CSRF failure raises 403 after the user is known): the refusal is shown in
    their language too.
    """

    async def sign_in(self, request: Request, username: str, password: str) -> LoginOutcome:
        outcome = await super().sign_in(request, username, password)
        if outcome.ok and outcome.user_id is not None:
            actor = Actor(user_id=outcome.user_id, username=username)
            async with unit_of_work(self.database, actor, writes=False) as uow:
                remember_choice(request, await UserService(uow).preferred_locale())
        return outcome

    async def authenticate(self, request: Request) -> Response | bool:
        try:
            return await super().authenticate(request)
        finally:
            use_chosen_locale(request)


def install(env: Environment) -> None:
    """Give the admin's templates `_()`/`gettext`/`ngettext` in the request's language."""
    env.install_gettext_callables(  # type: ignore[attr-defined]  # added by jinja2.ext.i18n
        gettext, ngettext, newstyle=True
    )
    env.globals["active_locale"] = active_locale
    env.globals["model_name"] = model_name
    env.globals["language_names"] = LANGUAGE_NAMES
