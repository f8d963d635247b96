"""Collection pages: the catalogue of this node's collections, one collection's MIABIS attributes,
its QC pass rate (for members of its biobank) and the edit form for the biobank's managers."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session

from biobank.identity.principal import Principal
from biobank.institutions import service as institutions
from biobank.institutions.models import Collection
from biobank.institutions.schemas import CollectionUpdate
from biobank.kit.deps import DbSession
from biobank.kit.vocab import CollectionStatus, DatasetType, UseAccessCondition
from biobank.specimens import service as specimens
from biobank.web.forms import FormState, Outcome, codes, many, page_params, parse_form, submit, text
from biobank.web.pages import PagePrincipal, Pager, PostedForm, checked, install, page
from biobank.web.render import redirect

router = APIRouter(include_in_schema=False)
COLLECTION_COLUMNS = [
    {"label": "Collection", "sort": "name"},
    {"label": "Biobank", "sort": None},
    {"label": "Status", "sort": None},
    {"label": "Materials", "sort": None},
    {"label": "Diseases (ICD-10)", "sort": None},
    {"label": "Created", "sort": "created_at"},
]


def setup(app: FastAPI) -> None:
    """Anonymous visitors of these pages go to the login form."""
    install(app)


@router.get("/collections", response_class=HTMLResponse)
def collection_list(request: Request, session: DbSession, principal: PagePrincipal, biobank: str = "") -> Response:
    """The node's collections (catalogue metadata, readable by every member), sortable and paged."""
    params = page_params(request)
    selected = institutions.get_biobank(session, biobank) if biobank else None
    rows, total = institutions.list_collections(session, params, biobank=selected)
    biobanks = institutions.list_biobanks(session)
    return page(
        request,
        "collections/list.html",
        principal,
        section="collections",
        collections=rows,
        codes={b.id: b.code for b in biobanks},
        biobanks=biobanks,
        biobank=biobank,
        pager=Pager(params.page, params.size, total, params.sort or "name"),
        columns=COLLECTION_COLUMNS,
    )


def _detail(
    request: Request,
    session: Session,
    principal: Principal,
    collection: Collection,
    *,
    form: FormState | None = None,
    outcome: Outcome | None = None,
) -> Response:
    member = principal.can_read(collection.biobank_id)
    return page(
        request,
        "collections/detail.html",
        principal,
        section="collections",
        outcome=outcome,
        form=form,
        c=collection,
        biobank_code=institutions.biobank_codes(session, [collection.biobank_id])[collection.biobank_id],
        pass_rate=specimens.pass_rate(session, principal, collection.public_id) if member else None,
        member=member,
        can_edit=principal.can_manage(collection.biobank_id),
        statuses=[s.value for s in CollectionStatus],
        access_conditions=[u.value for u in UseAccessCondition],
        dataset_types=[d.value for d in DatasetType],
    )


@router.get("/collections/{public_id}", response_class=HTMLResponse)
def collection_detail(request: Request, public_id: str, session: DbSession, principal: PagePrincipal) -> Response:
    """One collection: its MIABIS attributes and QC pass rate."""
    return _detail(request, session, principal, institutions.get_collection(session, public_id))


def _update_values(form: Mapping[str, Any]) -> dict[str, Any]:
    # Every field of the edit form is sent, so an emptied field is cleared rather than left unchanged.
    subjects = text(form, "number_of_subjects")
    return {
        "name": text(form, "name"),
        "acronym": text(form, "acronym"),
        "description": text(form, "description"),
        "status": text(form, "status"),
        "diseases": [c.strip() for c in codes(form, "diseases")],
        "use_access_conditions": many(form, "use_access_conditions"),
        "dataset_types": many(form, "dataset_types"),
        "number_of_subjects": subjects or None,
    }


@router.post("/collections/{public_id}", response_class=HTMLResponse)
def update_collection(
    request: Request, public_id: str, session: DbSession, principal: PagePrincipal, form: PostedForm
) -> Response:
    """Save the edit form (the biobank's managers)."""
    checked(principal, form)
    collection = institutions.get_collection(session, public_id)
    outcome = submit(
        session,
        lambda: institutions.update_collection(
            session, principal, collection, parse_form(CollectionUpdate, _update_values(form))
        ),
    )
    if not outcome.ok:
        return _detail(request, session, principal, collection, form=outcome.state("collection", form), outcome=outcome)
    return redirect(f"/collections/{collection.public_id}", flash="Collection saved.")
