"""Pages and form posts of fulfilment (/access/requests/{public_id}/fulfilment…). The request page of the
access package includes `access/_fulfilment.html`; its forms post here and come back to the page they
were sent from (`next`), or to the stand-alone fulfilment page."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel
from sqlalchemy.orm import Session

from biobank.access import agreements, grants, reservations, results, shipments
from biobank.access import fulfilment_common as common
from biobank.access.fulfilment_schemas import (
    AgreementCreate,
    AgreementSign,
    GrantCreate,
    ReservationCreate,
    ReservationRelease,
    ResultsCreate,
    ShipmentCreate,
    ShipmentReceive,
)
from biobank.access.fulfilment_view import context
from biobank.identity.principal import Principal
from biobank.kit.deps import DbSession
from biobank.web.forms import local_datetime, many, parse_form, submit, text
from biobank.web.pages import PagePrincipal, PostedForm, checked, install, page
from biobank.web.render import add_template_dir, redirect

router = APIRouter(prefix="/access/requests/{public_id}/fulfilment", include_in_schema=False)
add_template_dir(Path(__file__).parent / "templates")


def setup(app: FastAPI) -> None:
    """Anonymous visitors of these pages go to the login form."""
    install(app)


def _page_url(public_id: str) -> str:
    return "/access/requests/" + quote(public_id, safe=":") + "/fulfilment"


def _request_url(public_id: str) -> str:
    """The request's own page (access.pages), which includes the fulfilment section."""
    return "/access/" + quote(public_id, safe=":")


def _back(form: dict[str, Any], public_id: str) -> str:
    """Where a form returns: the page it came from when that is a page of this request."""
    target = text(form, "next")
    own = "/access/requests/" + quote(public_id, safe=":")
    if "//" in target or "\\" in target:
        return _page_url(public_id)
    if target.startswith(own) or target == _request_url(public_id):
        return target
    return _page_url(public_id)


@router.get("", response_class=HTMLResponse)
def fulfilment_page(public_id: str, request: Request, session: DbSession, principal: PagePrincipal) -> Response:
    """Agreements, reservations, shipments, data access and results of one request."""
    access_request = common.get_request(session, principal, public_id)
    return page(
        request,
        "access/fulfilment/page.html",
        principal,
        section="access",
        access_request=access_request,
        fulfilment_next=_page_url(public_id),
        request_url=_request_url(public_id),
        **context(session, principal, access_request),
    )


def _run(
    session: Session,
    principal: Principal,
    public_id: str,
    form: dict[str, Any],
    call: Callable[[Any], Any],
    success: str,
) -> Response:
    checked(principal, form)
    access_request = common.get_request(session, principal, public_id)
    outcome = submit(session, lambda: call(access_request))
    back = _back(form, public_id)
    if not outcome.ok:
        message = outcome.message or "; ".join(f"{f}: {m}" if f else m for f, m in outcome.summary) or "refused"
        return redirect(back, flash=message, level="error")
    return redirect(back, flash=success)


def _parsed(schema: type[BaseModel], values: dict[str, Any]) -> Any:
    return parse_form(schema, {k: v for k, v in values.items() if v not in ("", None, [])})


@router.post("/agreements")
def generate(public_id: str, session: DbSession, principal: PagePrincipal, form: PostedForm) -> Response:
    """Generate the agreement with the user's provider institution."""
    values = {
        "provider": text(form, "provider"),
        "fee_amount": text(form, "fee_amount"),
        "data_access_days": text(form, "data_access_days"),
    }
    return _run(
        session,
        principal,
        public_id,
        form,
        lambda r: agreements.generate(session, principal, r, _parsed(AgreementCreate, values)),
        "Agreement generated: both parties can now read and sign it.",
    )


@router.post("/agreements/{agreement_id}/sign")
def sign(public_id: str, agreement_id: str, session: DbSession, principal: PagePrincipal, form: PostedForm) -> Response:
    """Sign an agreement after re-entering the password."""
    values = {"password": text(form, "password"), "party": text(form, "party")}

    def call(r: Any) -> Any:
        data = _parsed(AgreementSign, values)
        return agreements.sign(session, principal, r, agreements.get(session, principal, r, agreement_id), data)

    return _run(session, principal, public_id, form, call, f"Agreement {agreement_id} signed.")


@router.post("/reservations")
def reserve(public_id: str, session: DbSession, principal: PagePrincipal, form: PostedForm) -> Response:
    """Reserve the ticked specimens."""
    values = {"biobank": text(form, "biobank"), "specimens": many(form, "specimens")}
    return _run(
        session,
        principal,
        public_id,
        form,
        lambda r: reservations.reserve(session, principal, r, _parsed(ReservationCreate, values)),
        "Specimens reserved.",
    )


@router.post("/reservations/{reservation_id}/release")
def release(
    public_id: str, reservation_id: str, session: DbSession, principal: PagePrincipal, form: PostedForm
) -> Response:
    """Release one reservation."""
    values = {"reason": text(form, "reason")}
    return _run(
        session,
        principal,
        public_id,
        form,
        lambda r: reservations.release(session, principal, r, reservation_id, _parsed(ReservationRelease, values)),
        "Reservation released.",
    )


@router.post("/shipments")
def dispatch(public_id: str, session: DbSession, principal: PagePrincipal, form: PostedForm) -> Response:
    """Record the dispatch of the reserved specimens."""
    values: dict[str, Any] = {
        k: text(form, k) for k in ("agreement", "courier", "tracking_number", "temperature_logger")
    }
    values["dispatched_at"] = local_datetime(text(form, "dispatched_at")) if text(form, "dispatched_at") else ""
    return _run(
        session,
        principal,
        public_id,
        form,
        lambda r: shipments.dispatch(session, principal, r, _parsed(ShipmentCreate, values)),
        "Shipment dispatched.",
    )


@router.post("/shipments/{shipment_id}/receive")
def receive(
    public_id: str, shipment_id: str, session: DbSession, principal: PagePrincipal, form: PostedForm
) -> Response:
    """Record the receipt of a shipment and its condition."""
    values: dict[str, Any] = {"condition": text(form, "condition"), "notes": text(form, "notes")}
    values["received_at"] = local_datetime(text(form, "received_at")) if text(form, "received_at") else ""
    return _run(
        session,
        principal,
        public_id,
        form,
        lambda r: shipments.receive(session, principal, r, shipment_id, _parsed(ShipmentReceive, values)),
        "Receipt recorded.",
    )


@router.post("/grants")
def grant(public_id: str, session: DbSession, principal: PagePrincipal, form: PostedForm) -> Response:
    """Grant data access until a date."""
    values = {"agreement": text(form, "agreement"), "until": text(form, "until")}
    return _run(
        session,
        principal,
        public_id,
        form,
        lambda r: grants.grant(session, principal, r, _parsed(GrantCreate, values)),
        "Data access granted.",
    )


@router.post("/results")
def return_results(public_id: str, session: DbSession, principal: PagePrincipal, form: PostedForm) -> Response:
    """Return a publication and/or a dataset."""
    publications = [{"doi": text(form, "doi"), "title": text(form, "title")}] if text(form, "doi") else []
    datasets = (
        [{"url": text(form, "dataset_url"), "description": text(form, "dataset_description")}]
        if text(form, "dataset_url") or text(form, "dataset_description")
        else []
    )
    values = {"publications": publications, "datasets": datasets}
    return _run(
        session,
        principal,
        public_id,
        form,
        lambda r: results.return_results(session, principal, r, parse_form(ResultsCreate, values)),
        "Results recorded.",
    )


@router.post("/close")
def close(public_id: str, session: DbSession, principal: PagePrincipal, form: PostedForm) -> Response:
    """Close the request."""
    return _run(session, principal, public_id, form, lambda r: results.close(session, principal, r), "Request closed.")
