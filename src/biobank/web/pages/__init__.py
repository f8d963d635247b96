"""Pieces every page module shares: the logged-in principal, posted forms, paging and rendering."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import Depends, FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.datastructures import QueryParams

from biobank.identity.deps import session_principal
from biobank.identity.principal import Principal
from biobank.kit.validation import icd10_description
from biobank.web.forms import (
    FormState,
    FormValues,
    Outcome,
    form_data,
    form_state,
    node_timezone,
    timezone_label,
)
from biobank.web.render import check_csrf, pop_flashes, render, templates


class LoginRequired(Exception):
    """A page was asked for without a session; the browser is sent to the login form."""

    def __init__(self, target: str) -> None:
        super().__init__(target)
        self.target = target


def page_principal(request: Request, principal: Annotated[Principal | None, Depends(session_principal)]) -> Principal:
    """The logged-in user of a page, or a redirect to the login form that comes back here."""
    if principal is None:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise LoginRequired(target)
    return principal


async def _login_redirect(request: Request, exc: Exception) -> Response:
    target = exc.target if isinstance(exc, LoginRequired) else "/"
    return RedirectResponse("/login?" + urlencode({"next": target}), status_code=303)


def install(app: FastAPI) -> None:
    """Send anonymous page requests to the login form (once per app, whichever page module asks)."""
    if LoginRequired not in app.exception_handlers:
        app.add_exception_handler(LoginRequired, _login_redirect)


PagePrincipal = Annotated[Principal, Depends(page_principal)]
PostedForm = Annotated[FormValues, Depends(form_data)]


def checked(principal: Principal, form: Mapping[str, Any]) -> None:
    """Refuse a post whose hidden csrf_token does not match the session."""
    token = form.get("csrf_token")
    check_csrf(principal, token if isinstance(token, str) else None)


# -- URLs and paging ---------------------------------------------------------------------------------------


def url_with(query: QueryParams | Mapping[str, Any], **changes: Any) -> str:
    """The current query string with some parameters replaced (None removes one), e.g. for sorting."""
    items = list(query.multi_items()) if isinstance(query, QueryParams) else list(query.items())
    kept = [(k, v) for k, v in items if k not in changes and v not in (None, "")]
    kept += [(k, v) for k, v in changes.items() if v not in (None, "")]
    return "?" + urlencode(kept) if kept else "?"


@dataclass(frozen=True)
class Pager:
    """Where a list page is: page x of y, how many in all, and the sort key."""

    page: int
    size: int
    total: int
    sort: str | None

    @property
    def pages(self) -> int:
        """Number of pages (at least one)."""
        return max(1, -(-self.total // self.size))

    @property
    def first(self) -> int:
        """The number of the first row on this page."""
        return 0 if self.total == 0 else (self.page - 1) * self.size + 1

    @property
    def last(self) -> int:
        """The number of the last row on this page."""
        return min(self.total, self.page * self.size)


def localtime(value: datetime | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    """A stored UTC time as people at this node read it."""
    return value.astimezone(node_timezone()).strftime(fmt) if value is not None else "—"


def quantity(value: float | None) -> str:
    """A quantity without float noise (3.0 → 3, 0.25 → 0.25)."""
    return "—" if value is None else f"{value:.6g}"


def icd10_title(code: str) -> str:
    """The WHO title of an ICD-10 code ("" when the code is not in the table)."""
    try:
        return icd10_description(code)
    except (ValueError, KeyError):
        return ""


templates.env.globals["url_with"] = url_with
templates.env.globals["form_state"] = form_state
templates.env.filters["localtime"] = localtime
templates.env.filters["qty"] = quantity
templates.env.filters["icd10_title"] = icd10_title


# -- rendering ---------------------------------------------------------------------------------------------


def page(
    request: Request,
    template: str,
    principal: Principal,
    *,
    outcome: Outcome | None = None,
    form: FormState | None = None,
    status_code: int = 200,
    **context: Any,
) -> HTMLResponse:
    """Render a page; a refused form adds its message as an error flash and re-fills the form."""
    flashes = pop_flashes(request)
    if outcome is not None and not outcome.ok:
        status_code = outcome.status_code
        if outcome.message:
            flashes.append({"level": "error", "text": outcome.message})
        elif outcome.errors:
            flashes.append(
                {"level": "error", "text": "The form was not saved: please correct the fields marked below."}
            )
    response = render(
        request,
        template,
        principal,
        status_code=status_code,
        flashes=flashes,
        form=form,
        timezone=timezone_label(),
        **context,
    )
    response.headers["Cache-Control"] = "no-store"
    return response
