"""Web pages: login/logout and home. Packages add their pages through biobank.web.pages modules."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from biobank.config import get_settings
from biobank.identity import service as identity
from biobank.identity.deps import client_address, session_principal
from biobank.identity.models import UserKind
from biobank.identity.principal import Principal
from biobank.kit.deps import DbSession
from biobank.kit.errors import BiobankError
from biobank.web.render import check_csrf, redirect, render

router = APIRouter(include_in_schema=False)

WebPrincipal = Annotated[Principal | None, Depends(session_principal)]

STATIC_DIR = __import__("pathlib").Path(__file__).parent / "static"


def setup(app: FastAPI) -> None:
    """Mount static assets (vendor files are installed from npm by `make assets`)."""
    STATIC_DIR.mkdir(parents=True, exist_ok=True)
    app.mount("/static", StaticFiles(directory=str(STATIC_DIR)), name="static")


def login_required(principal: Principal | None, request: Request) -> Principal | RedirectResponse:
    """The principal, or a redirect to the login page."""
    if principal is None:
        return RedirectResponse(f"/login?next={request.url.path}", status_code=303)
    return principal


@router.get("/", response_class=HTMLResponse)
def home(request: Request, session: DbSession, principal: WebPrincipal) -> Response:
    """Dashboard for staff; the login page for everyone else."""
    if principal is None:
        return RedirectResponse("/login", status_code=303)
    if principal.kind is UserKind.DONOR:
        return RedirectResponse("/portal", status_code=303)
    from biobank.web.dashboard import dashboard_context

    return render(request, "home.html", principal, section="home", **dashboard_context(session, principal))


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request, principal: WebPrincipal, next: str = "/") -> Response:
    """The login form."""
    return render(request, "login.html", principal, next=_safe_next(next))


def _safe_next(target: str) -> str:
    return target if target.startswith("/") and not target.startswith("//") else "/"


@router.post("/login")
def login(
    request: Request,
    session: DbSession,
    username: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "/",
) -> Response:
    """Check the credentials and start a session (the cookie is HttpOnly, SameSite=Lax)."""
    client = identity.client_hash(client_address(request))
    try:
        user = identity.authenticate(session, username, password, client=client)
    except BiobankError as exc:
        # The failed attempt is committed (keep_changes) before this page is returned.
        session.commit()
        return render(
            request,
            "login.html",
            None,
            status_code=exc.status_code,
            next=_safe_next(next),
            error=str(exc.detail),
            username=username,
        )
    token, _ = identity.start_session(session, user, client=client)
    settings = get_settings()
    response = redirect(_safe_next(next))
    response.set_cookie(
        settings.session_cookie_name,
        token,
        httponly=True,
        samesite="lax",
        secure=settings.secure_cookies,
        max_age=settings.session_hours * 3600,
    )
    return response


@router.post("/logout")
def logout(
    request: Request, session: DbSession, principal: WebPrincipal, csrf_token: Annotated[str, Form()] = ""
) -> Response:
    """End the session."""
    if principal is None:
        return redirect("/login")
    check_csrf(principal, csrf_token)
    cookie = request.cookies.get(get_settings().session_cookie_name, "")
    identity.end_session(session, cookie)
    response = redirect("/login", flash="You are logged out.")
    response.delete_cookie(get_settings().session_cookie_name)
    return response
