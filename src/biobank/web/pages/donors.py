"""Donor pages: the list, registration, and one donor with their specimens and the identity reveal.

Identifying data never travels in a URL: the patient id is posted in the registration form, and the
revealed identity is shown once, on the response to the POST that asked for it (never cached).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import Field
from sqlalchemy.orm import Session

from biobank.donors import service as donors
from biobank.donors.models import Donor
from biobank.donors.schemas import DonorCreate, DonorIdentity
from biobank.identity.principal import Principal
from biobank.institutions import service as institutions
from biobank.kit.deps import DbSession
from biobank.kit.pagination import PageParams
from biobank.kit.schemas import Schema
from biobank.kit.vocab import Sex
from biobank.specimens import service as specimens
from biobank.web.forms import FormState, Outcome, codes, page_params, parse_form, present, submit, text
from biobank.web.pages import PagePrincipal, Pager, PostedForm, checked, install, page
from biobank.web.render import redirect

router = APIRouter(include_in_schema=False)
SPECIMENS_ON_DONOR_PAGE = 100
DONOR_COLUMNS = [
    {"label": "Donor", "sort": "public_id"},
    {"label": "Biobank", "sort": None},
    {"label": "Sex", "sort": None},
    {"label": "Birth year", "sort": "birth_year"},
    {"label": "Diagnoses", "sort": None},
    {"label": "Registered", "sort": "created_at"},
]


def setup(app: FastAPI) -> None:
    """Anonymous visitors of these pages go to the login form."""
    install(app)


class IdentityForm(Schema):
    """Why a manager needs a donor's identifying data (kept in the audit log)."""

    reason: str = Field(min_length=3, max_length=200)


def _readable_biobanks(session: Session, principal: Principal) -> list[Any]:
    return [b for b in institutions.list_biobanks(session) if principal.can_read(b.id)]


def _writable_biobanks(session: Session, principal: Principal) -> list[Any]:
    return [b for b in institutions.list_biobanks(session) if principal.can_write(b.id)]


@router.get("/donors", response_class=HTMLResponse)
def donor_list(request: Request, session: DbSession, principal: PagePrincipal, biobank: str = "") -> Response:
    """Donors of the user's biobanks: sortable, paged, filtered by biobank."""
    params = page_params(request)
    biobanks = _readable_biobanks(session, principal)
    rows, total = donors.list_page(session, principal, params, biobank=biobank or None)
    return page(
        request,
        "donors/list.html",
        principal,
        section="donors",
        donors=donors.to_read(session, rows),
        pager=Pager(params.page, params.size, total, params.sort or "-id"),
        columns=DONOR_COLUMNS,
        biobanks=biobanks,
        lookup_biobanks=[(b.code, f"{b.name} ({b.code})") for b in biobanks],
        biobank=biobank,
        can_register=any(principal.can_write(b.id) for b in biobanks),
    )


class LookupForm(Schema):
    """A hospital patient id to find a donor by (posted, never in a URL)."""

    biobank: str = Field(min_length=1)
    patient_id: str = Field(min_length=1, max_length=64)


@router.post("/donors/lookup", response_class=HTMLResponse)
def lookup_donor(request: Request, session: DbSession, principal: PagePrincipal, form: PostedForm) -> Response:
    """Find a donor by hospital patient id (through its keyed pseudonym) and open their page."""
    checked(principal, form)
    values = present(form, ("biobank", "patient_id"))

    def find() -> Donor:
        data = parse_form(LookupForm, values)
        return donors.find_by_patient_id(session, principal, data.biobank, data.patient_id)

    outcome = submit(session, find)
    if not outcome.ok:
        if not outcome.errors:  # not found (or a biobank they cannot read): one answer for both
            outcome.errors = {"patient_id": "no donor with this patient id in that biobank"}
            outcome.message = None
        return page(
            request,
            "donors/lookup.html",
            principal,
            section="donors",
            outcome=outcome,
            form=outcome.state("lookup", form),
            lookup_biobanks=[(b.code, f"{b.name} ({b.code})") for b in _readable_biobanks(session, principal)],
        )
    return redirect(f"/donors/{outcome.value.public_id}")


def _donor_values(form: Mapping[str, Any]) -> dict[str, Any]:
    values = present(form, ("biobank", "patient_id", "sex", "birth_year", "name", "contact"))
    diagnoses = codes(form, "diagnoses")
    if diagnoses:
        values["diagnoses"] = [{"icd10": code.strip()} for code in diagnoses]
    return values


def _new_form(
    request: Request, session: Session, principal: Principal, *, form: FormState | None, outcome: Outcome | None
) -> Response:
    return page(
        request,
        "donors/new.html",
        principal,
        section="donors",
        outcome=outcome,
        form=form,
        biobanks=[(b.code, f"{b.name} ({b.code})") for b in _writable_biobanks(session, principal)],
        sexes=[s.value for s in Sex],
    )


@router.get("/donors/new", response_class=HTMLResponse)
def new_donor_form(request: Request, session: DbSession, principal: PagePrincipal) -> Response:
    """The registration form."""
    return _new_form(request, session, principal, form=None, outcome=None)


@router.post("/donors/new", response_class=HTMLResponse)
def create_donor(request: Request, session: DbSession, principal: PagePrincipal, form: PostedForm) -> Response:
    """Register a donor; on refusal the form comes back with the entered values and the errors."""
    checked(principal, form)
    outcome = submit(session, lambda: donors.register(session, principal, parse_form(DonorCreate, _donor_values(form))))
    if not outcome.ok:
        return _new_form(request, session, principal, form=outcome.state("donor", form), outcome=outcome)
    donor: Donor = outcome.value
    return redirect(f"/donors/{donor.public_id}", flash=f"Donor {donor.public_id} registered.")


def _detail(
    request: Request,
    session: Session,
    principal: Principal,
    donor: Donor,
    *,
    identity: DonorIdentity | None = None,
    form: FormState | None = None,
    outcome: Outcome | None = None,
) -> Response:
    rows, total = specimens.list_page(
        session, principal, PageParams(1, SPECIMENS_ON_DONOR_PAGE, "-id"), donor=donor.public_id
    )
    return page(
        request,
        "donors/detail.html",
        principal,
        section="donors",
        outcome=outcome,
        form=form,
        donor=donors.to_read(session, [donor])[0],
        specimens=specimens.to_read(session, rows),
        specimen_total=total,
        can_reveal=principal.can_manage(donor.biobank_id),
        identity=identity,
    )


@router.get("/donors/{public_id}", response_class=HTMLResponse)
def donor_detail(request: Request, public_id: str, session: DbSession, principal: PagePrincipal) -> Response:
    """One donor: sex, birth year, diagnoses and specimens (never identifying data)."""
    return _detail(request, session, principal, donors.get(session, principal, public_id))


@router.post("/donors/{public_id}/identity", response_class=HTMLResponse)
def reveal_identity(
    request: Request, public_id: str, session: DbSession, principal: PagePrincipal, form: PostedForm
) -> Response:
    """Show a donor's identifying data once, on this response, to a manager who gives a reason (audited)."""
    checked(principal, form)
    donor = donors.get(session, principal, public_id, audit_read=False)
    outcome = submit(
        session,
        lambda: donors.reveal_identity(
            session, principal, donor, reason=parse_form(IdentityForm, {"reason": text(form, "reason")}).reason
        ),
    )
    if not outcome.ok:
        return _detail(request, session, principal, donor, form=outcome.state("identity", form), outcome=outcome)
    return _detail(request, session, principal, donor, identity=outcome.value)
