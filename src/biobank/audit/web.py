"""Auditor pages: browse and filter the log, one entry with its proof, verification with progress,
witness status; and the staff view of a donor's access history."""

from __future__ import annotations

import base64
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, FastAPI, Request
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse, Response

from biobank.audit import jobs, reading
from biobank.audit import repository as repo
from biobank.audit.access import access_history
from biobank.audit.routes import NodeSettings
from biobank.kit.deps import DbSession
from biobank.kit.errors import Invalid, NotFound
from biobank.web.forms import node_timezone, page_params
from biobank.web.pages import PagePrincipal, Pager, PostedForm, checked, install, page
from biobank.web.render import add_template_dir, redirect

router = APIRouter(include_in_schema=False)
add_template_dir(Path(__file__).parent / "templates")

LOG_COLUMNS = [
    {"label": "#", "sort": "index"},
    {"label": "Time", "sort": "at"},
    {"label": "Actor", "sort": None},
    {"label": "Institution", "sort": None},
    {"label": "Action", "sort": None},
    {"label": "Resource", "sort": None},
    {"label": "Purpose", "sort": None},
    {"label": "Outcome", "sort": None},
]
Index = Annotated[int, PathParam(ge=0, le=2**62)]


def setup(app: FastAPI) -> None:
    """Anonymous visitors of these pages go to the login form."""
    install(app)


def _day(request: Request, name: str, *, end: bool = False) -> datetime | None:
    """A yyyy-mm-dd filter as the start (or the end) of that day in the node's time zone."""
    text = request.query_params.get(name, "").strip()
    if not text:
        return None
    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise Invalid.field(name, "give a date as yyyy-mm-dd", value=text) from None
    return datetime.combine(day + timedelta(days=1 if end else 0), time(), tzinfo=node_timezone())


@router.get("/audit", response_class=HTMLResponse)
def log_page(request: Request, session: DbSession, principal: PagePrincipal) -> Response:
    """The log, newest first, filtered by actor, action, resource and time range."""
    query = request.query_params
    where = repo.EntryFilter(
        actor=query.get("actor", "").strip() or None,
        action=query.get("action", "").strip() or None,
        resource_type=query.get("resource_type", "").strip() or None,
        resource_id=query.get("resource", "").strip() or None,
        since=_day(request, "since"),
        until=_day(request, "until", end=True),
    )
    params = page_params(request)
    rows, total = reading.browse(session, principal, where, params)
    size, _ = repo.tree_head(session)
    return page(
        request,
        "audit/log.html",
        principal,
        section="audit",
        entries=rows,
        columns=LOG_COLUMNS,
        pager=Pager(params.page, params.size, total, params.sort or "-index"),
        filters={k: query.get(k, "") for k in ("actor", "action", "resource_type", "resource", "since", "until")},
        tree_size=size,
    )


@router.get("/audit/entries/{index}", response_class=HTMLResponse)
def entry_page(
    index: Index, request: Request, session: DbSession, principal: PagePrincipal, settings: NodeSettings
) -> Response:
    """One entry: its fields, leaf bytes, and its inclusion proof in the latest checkpoint, checked."""
    shown = reading.entry_with_proof(session, principal, settings, index)
    leaf = base64.b64decode(shown.entry.leaf).decode("utf-8", errors="replace")
    return page(request, "audit/entry.html", principal, section="audit", shown=shown, leaf_text=leaf)


@router.get("/audit/verify", response_class=HTMLResponse)
def verify_page(request: Request, session: DbSession, principal: PagePrincipal) -> Response:
    """Start a verification of the whole log and follow its progress."""
    reading.require_auditor(principal)
    runs = repo.recent_verify_runs(session)
    return page(request, "audit/verify.html", principal, section="audit", runs=runs)


@router.post("/audit/verify")
def start_verify(
    request: Request, session: DbSession, principal: PagePrincipal, form: PostedForm, settings: NodeSettings
) -> Response:
    """Start a verification in the background (progress is stored, so any worker can show it)."""
    checked(principal, form)
    run = jobs.start_verification(session, principal, request.app.state.session_factory, settings)
    return redirect(f"/audit/verify/{run.id}")


@router.get("/audit/verify/{run_id}", response_class=HTMLResponse)
def verify_run_page(run_id: Index, request: Request, session: DbSession, principal: PagePrincipal) -> Response:
    """A verification run: the progress bar (polled by htmx while running), then the result."""
    reading.require_auditor(principal)
    run = repo.verify_run(session, run_id)
    if run is None:
        raise NotFound("no such verification run", name="VerifyRunNotFound")
    fragment = request.headers.get("HX-Request") == "true"
    template = "audit/_progress.html" if fragment else "audit/verify_run.html"
    return page(request, template, principal, section="audit", run=run)


@router.get("/audit/witnesses", response_class=HTMLResponse)
def witnesses_page(request: Request, session: DbSession, principal: PagePrincipal, settings: NodeSettings) -> Response:
    """Witness peers, the latest checkpoint's cosignatures, refusals, and the logs this node witnesses."""
    status = reading.witness_status(session, principal, settings)
    return page(request, "audit/witnesses.html", principal, section="audit", status=status)


@router.get("/donors/{public_id}/access", response_class=HTMLResponse)
def donor_access_page(public_id: str, request: Request, session: DbSession, principal: PagePrincipal) -> Response:
    """Staff view of a donor's access history: when, which institution, what and why (never who)."""
    params = page_params(request)
    items, total = access_history(session, principal, public_id, params)
    return page(
        request,
        "audit/access.html",
        principal,
        section="donors",
        donor=public_id,
        items=items,
        pager=Pager(params.page, params.size, total, None),
    )
