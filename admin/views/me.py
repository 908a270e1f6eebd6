"""My account: the signed-in user's own settings, reached from the top bar: their language and
their second factor (set up, see how many recovery codes are left, turn off: admin/two_factor.py).

Everyone signed in may open it and choose English, Deutsch or their browser's
language (no permission: it is their own account). The choice is a POST with
the CSRF token (checked with the session, admin/auth.py), saved through
`UserService.choose_locale` (audited like any change of the account) and
followed from the next page on (admin/i18n.py).
"""

from __future__ import annotations

from sqladmin import BaseView, expose
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from admin import i18n, outcomes
from admin.auth import current_actor
from admin.requests import request_uow
from admin.two_factor import TwoFactorView
from backend.errors import ValidationFailed
from backend.services.passkeys import PasskeyService
from backend.services.two_factor import TwoFactorService
from backend.services.users import LANGUAGES, UserService

BROWSER_DEFAULT = ""  # the form's value for "follow my browser"


class MyAccountView(BaseView):
    """The signed-in user's account page."""

    name = "My account"
    icon = "fa-solid fa-user-gear"
    identity = "me"

    def is_accessible(self, request: Request) -> bool:
        return current_actor(request).user_id is not None

    def is_visible(self, request: Request) -> bool:
        return False  # in the top bar, beside the user's name, not in the side menu

    @expose("/me", methods=["GET", "POST"], identity="me")
    async def me(self, request: Request) -> Response:
        uow = await request_uow(request)
        service = UserService(uow)
        if request.method != "POST":
            return await self._page(request, chosen=await service.preferred_locale())
        value = (await request.form()).get("locale")
        choice = value if isinstance(value, str) else "?"
        try:
            await service.choose_locale(choice or None)
            await uow.commit()
            i18n.remember_choice(request, choice or None)
        except ValidationFailed:
            error = i18n.gettext("Choose English, Deutsch or your browser's language.")
            return await self._page(request, chosen=None, error=error, status_code=400)
        # The message is written now, in the language just chosen, and shown on the next page.
        i18n.switch_to(choice or i18n.without_choice(request))
        language = i18n.LANGUAGE_NAMES[i18n.active_locale()]
        if choice:
            outcomes.succeeded(
                request, i18n.translated("The admin now speaks %(language)s to you.", language=language)
            )
        else:
            outcomes.succeeded(
                request,
                i18n.translated(
                    "The admin now follows your browser's language (%(language)s).", language=language
                ),
            )
        return RedirectResponse(str(request.url_for("admin:view-me")), status_code=303)

    async def _page(
        self, request: Request, *, chosen: str | None, error: str | None = None, status_code: int = 200
    ) -> Response:
        actor = current_actor(request)
        uow = await request_uow(request)
        context = {
            "username": actor.username,
            "two_factor": await TwoFactorService(uow).status(actor.user_id or 0),
            "passkeys": await PasskeyService(uow).list(actor.user_id or 0),
            "chosen": chosen or BROWSER_DEFAULT,
            "choices": [(code, i18n.LANGUAGE_NAMES[code]) for code in LANGUAGES],
            "browser_language": i18n.LANGUAGE_NAMES[i18n.without_choice(request)],
            "error": error,
        }
        return await self.templates.TemplateResponse(
            request, "custodian/me.html", context, status_code=status_code
        )


class TwoFactorPages(TwoFactorView):
    """The second factor's pages (admin/two_factor.py), found here by `discover()` beside My account."""
