"""Rendering pages: one Jinja environment, the layout's context, flash messages, CSRF for forms."""

from __future__ import annotations

import hmac
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from itsdangerous import BadSignature, URLSafeSerializer

from biobank import __version__
from biobank.config import get_settings
from biobank.identity.principal import Principal
from biobank.kit.errors import NotPermitted

TEMPLATE_DIRS = [Path(__file__).parent / "templates"]
FLASH_COOKIE = "bb_flash"

templates = Jinja2Templates(directory=[str(p) for p in TEMPLATE_DIRS])
templates.env.globals["version"] = __version__


def add_template_dir(path: Path) -> None:
    """Let a package contribute its own templates folder."""
    if path not in TEMPLATE_DIRS:
        TEMPLATE_DIRS.append(path)
        templates.env.loader.searchpath.append(str(path))  # type: ignore[union-attr]


def _serializer() -> URLSafeSerializer:
    return URLSafeSerializer(get_settings().secret("secret_key"), salt="flash")


def pop_flashes(request: Request) -> list[dict[str, str]]:
    """Messages queued for this page by the previous request."""
    raw = request.cookies.get(FLASH_COOKIE)
    if not raw:
        return []
    try:
        value = _serializer().loads(raw)
    except BadSignature:
        return []
    return [m for m in value if isinstance(m, dict)]


def redirect(url: str, *, flash: str | None = None, level: str = "success") -> RedirectResponse:
    """A 303 redirect, optionally carrying a flash message to the next page."""
    response = RedirectResponse(url, status_code=303)
    if flash:
        response.set_cookie(
            FLASH_COOKIE,
            _serializer().dumps([{"level": level, "text": flash}]),
            max_age=60,
            httponly=True,
            samesite="lax",
            secure=get_settings().secure_cookies,
        )
    return response


def render(
    request: Request, template: str, principal: Principal | None = None, *, status_code: int = 200, **context: Any
) -> HTMLResponse:
    """Render a page with the layout's context (user, CSRF token, flashes, active section)."""
    flashes = pop_flashes(request)
    response = templates.TemplateResponse(
        request,
        template,
        {
            "principal": principal,
            "csrf_token": principal.csrf_token if principal else None,
            "flashes": flashes,
            "settings": get_settings(),
            **context,
        },
        status_code=status_code,
    )
    if flashes:
        response.delete_cookie(FLASH_COOKIE)
    return response


def error_page(request: Request, status_code: int, name: str, detail: Any) -> Response:
    """The HTML version of an error for browsers."""
    principal = getattr(request.state, "principal", None) or None
    return render(request, "error.html", principal, status_code=status_code, error=name, detail=detail)


def check_csrf(principal: Principal, token: str | None) -> None:
    """Refuse a form post whose csrf_token field does not match the session."""
    if not principal.csrf_token or not token or not hmac.compare_digest(token, principal.csrf_token):
        raise NotPermitted("the form expired or did not come from this site; reload the page", name="CsrfFailed")
