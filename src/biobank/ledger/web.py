"""Ledger pages: chain status, the outbox backlog (with retry), anchors, and the consortium's records."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, Request
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse, Response

from biobank.kit.deps import DbSession
from biobank.ledger import reading
from biobank.ledger.publisher import retry_failed
from biobank.web.pages import PagePrincipal, PostedForm, checked, install, page
from biobank.web.render import add_template_dir, redirect

router = APIRouter(include_in_schema=False)
add_template_dir(Path(__file__).parent / "templates")
RowId = Annotated[int, PathParam(ge=1, le=2**62)]


def setup(app: FastAPI) -> None:
    """Anonymous visitors of these pages go to the login form."""
    install(app)


def worker_state(request: Request) -> dict[str, Any]:
    """The background runner's last known state (connected, errors, chain facts), if it runs here."""
    runner = getattr(request.app.state, "ledger_runner", None)
    if runner is None:
        return {"running": False, "connected": False, "chain": {}, "last_error": "", "last_round_at": None,
                "published": 0, "last_anchor_at": None}
    status = runner.status
    running = getattr(request.app.state, "ledger_worker", None) is not None
    return {"running": running, "connected": status.connected, "chain": status.chain, "last_error": status.last_error,
            "last_round_at": status.last_round_at, "published": status.published,
            "last_anchor_at": status.last_anchor_at}


@router.get("/ledger", response_class=HTMLResponse)
def status_page(request: Request, session: DbSession, principal: PagePrincipal) -> Response:
    """Chain, contracts, backlog with its chart, anchors, rejected writes."""
    shown = reading.overview(session, principal, worker_state(request))
    return page(request, "ledger/status.html", principal, section="ledger", shown=shown)


@router.post("/ledger/outbox/{row_id}/retry")
def retry(row_id: RowId, request: Request, session: DbSession, principal: PagePrincipal, form: PostedForm) -> Response:
    """Queue a rejected write again (after the cause was fixed)."""
    checked(principal, form)
    reading.require_ledger_admin(principal)
    from biobank.audit.service import record

    row = retry_failed(session, row_id)
    record(session, principal, "ledger.outbox.retry", "ledger_outbox", [str(row.id)], details={"kind": row.kind})
    return redirect("/ledger", flash=f"Write #{row.id} queued again.")


@router.get("/ledger/consortium", response_class=HTMLResponse)
def consortium_page(request: Request, session: DbSession, principal: PagePrincipal) -> Response:
    """Every institution's agreements, requests and anchors on the chain (mirrored by this node)."""
    chain_id = worker_state(request)["chain"].get("chain_id")
    shown = reading.consortium(session, principal, chain_id)
    return page(request, "ledger/consortium.html", principal, section="ledger", shown=shown)


@router.post("/ledger/revenue/withdraw")
def withdraw(request: Request, session: DbSession, principal: PagePrincipal, form: PostedForm) -> Response:
    """Book out part of this institution's revenue share (queued for the chain)."""
    checked(principal, form)
    reading.require_ledger_admin(principal)
    from biobank.kit.errors import Invalid
    from biobank.ledger.revenue import request_withdrawal

    text = str(form.get("amount", "")).strip()
    if not text.isdigit():
        raise Invalid.field("amount", "give a positive whole number of accounting units", value=text)
    settings = request.app.state.settings
    row = request_withdrawal(session, principal, settings, int(text), worker_state(request)["chain"].get("chain_id"))
    return redirect("/ledger/consortium", flash=f"Withdrawal of {row.payload['amount']} units queued for the chain.")
