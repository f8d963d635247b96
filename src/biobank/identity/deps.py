"""Who is calling: bearer tokens for scripts, session cookies (with CSRF) for the browser."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Request

from biobank.config import get_settings
from biobank.identity import service
from biobank.identity.principal import Principal
from biobank.kit.deps import DbSession
from biobank.kit.errors import NotAuthenticated, NotPermitted

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
CSRF_HEADER = "X-CSRF-Token"


def client_address(request: Request) -> str | None:
    """The caller's address (only ever stored as a keyed hash)."""
    return request.client.host if request.client else None


def _principal(request: Request, session: DbSession) -> Principal | None:
    if hasattr(request.state, "principal"):
        cached: Principal | None = request.state.principal
        return cached
    client = service.client_hash(client_address(request))
    principal: Principal | None = None
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        principal = service.resolve_token(session, header[7:].strip(), client=client)
        if principal is None:
            raise NotAuthenticated("the API token is unknown, expired or revoked", name="InvalidToken")
        if request.method not in SAFE_METHODS and "write" not in principal.scopes:
            raise NotPermitted("this token is read-only", name="TokenScope")
    else:
        cookie = request.cookies.get(get_settings().session_cookie_name)
        if cookie:
            principal = service.resolve_session(session, cookie, client=client)
    request.state.principal = principal
    return principal


def _csrf_checked(request: Request, principal: Principal | None) -> Principal | None:
    if principal is not None and principal.via == "session" and request.method not in SAFE_METHODS:
        sent = request.headers.get(CSRF_HEADER, "")
        if not principal.csrf_token or not hmac.compare_digest(sent, principal.csrf_token):
            raise NotPermitted("missing or wrong CSRF token", name="CsrfFailed")
    return principal


def optional_principal(request: Request, session: DbSession) -> Principal | None:
    """The caller if logged in, else None (API: CSRF is checked for cookie sessions)."""
    return _csrf_checked(request, _principal(request, session))


def require_principal(request: Request, session: DbSession) -> Principal:
    """The logged-in caller, or 401."""
    principal = optional_principal(request, session)
    if principal is None:
        raise NotAuthenticated("log in or send an API token")
    return principal


def session_principal(request: Request, session: DbSession) -> Principal | None:
    """The caller of a web page (forms check their own CSRF field)."""
    return _principal(request, session)


CurrentPrincipal = Annotated[Principal, Depends(require_principal)]
OptionalPrincipal = Annotated[Principal | None, Depends(optional_principal)]
