"""The headers every response carries: a request id, and security headers with the admin's CSP.

One middleware on the outer app, so SQLAdmin's pages, its error pages and the probes all get them.
"""

from __future__ import annotations

import base64
import hashlib
import re
import uuid
from pathlib import Path

import sqladmin
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

REQUEST_ID_HEADER = "X-Request-ID"
_INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.DOTALL)


def _inline_script_hashes() -> list[str]:
    """Hashes of SQLAdmin's static inline scripts (the flash toasts), allowed by the CSP."""
    templates = Path(sqladmin.__file__).parent / "templates" / "sqladmin"
    hashes = []
    for template in sorted(templates.rglob("*.html")):
        for body in _INLINE_SCRIPT.findall(template.read_text(encoding="utf-8")):
            if "{{" in body or "{%" in body:
                continue  # templated: its text varies, so no fixed hash
            digest = base64.b64encode(hashlib.sha256(body.encode()).digest()).decode()
            hashes.append(f"'sha256-{digest}'")
    return hashes


def content_security_policy() -> str:
    script_sources = " ".join(["'self'", *_inline_script_hashes()])
    return "; ".join(
        [
            "default-src 'self'",
            f"script-src {script_sources}",
            # Tabler, select2 and flatpickr set inline styles.
            "style-src 'self' 'unsafe-inline'",
            "img-src 'self' data:",
            "font-src 'self' data:",
            "connect-src 'self'",
            "form-action 'self'",
            "frame-ancestors 'none'",
            "base-uri 'self'",
            "object-src 'none'",
        ]
    )


class ResponseHeadersMiddleware:
    """Gives every request an id (`request.state.request_id`), echoed in `X-Request-ID`, and adds
    anti-framing, no-sniff, referrer and CSP headers, and `no-store` on everything but static files.
    """

    def __init__(self, app: ASGIApp, *, hsts: bool = False) -> None:
        self.app = app
        self.headers = {
            "X-Frame-Options": "DENY",
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "same-origin",
            "Content-Security-Policy": content_security_policy(),
            "Cross-Origin-Opener-Policy": "same-origin",
            "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
        }
        if hsts:
            self.headers["Strict-Transport-Security"] = "max-age=31536000; includeSubDomains"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        is_static = "/statics/" in scope.get("path", "")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                headers = MutableHeaders(scope=message)
                headers.setdefault(REQUEST_ID_HEADER, request_id)
                for name, value in self.headers.items():
                    headers.setdefault(name, value)
                if not is_static:
                    # Pages hold business data and PII: keep them out of shared caches.
                    headers.setdefault("Cache-Control", "no-store")
            await send(message)

        await self.app(scope, receive, send_with_headers)
