"""Catalogue pages: the public search (/catalogue), collection, biobank and dataset pages with facts and
a chart, managers' edit forms, and the researchers' count query (/catalogue/count)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from sqlalchemy.orm import Session

from biobank.catalogue import counts, search, service
from biobank.catalogue.codes import AGE_LABELS
from biobank.catalogue.disclosure import disclose, policy
from biobank.catalogue.models import AccessRights
from biobank.catalogue.schemas import (
    DATA_LABELS,
    BiobankEdit,
    CollectionEdit,
    CountRequest,
    CountResult,
    SearchCriteria,
)
from biobank.consent.duo import PurposeCategory
from biobank.identity.deps import session_principal
from biobank.identity.principal import Principal
from biobank.institutions import service as institutions
from biobank.kit.deps import DbSession
from biobank.kit.errors import BiobankError, Invalid, NotFound
from biobank.kit.vocab import (
    AgeUnit,
    CollectionStatus,
    DatasetType,
    QualityStandard,
    SampleSource,
    SampleType,
    Sex,
    StorageTemperature,
    UseAccessCondition,
)
from biobank.web.forms import FormValues, form_data, many, savepoint, text
from biobank.web.render import add_template_dir, check_csrf, redirect, render

add_template_dir(Path(__file__).parent / "templates")

router = APIRouter(include_in_schema=False)
WebPrincipal = Annotated[Principal | None, Depends(session_principal)]
Posted = Annotated[FormValues, Depends(form_data)]
LIST_FIELDS = (
    "diagnoses",
    "materials",
    "sexes",
    "storage_temperatures",
    "data",
    "access",
)


def _errors(exc: ValidationError | Invalid) -> dict[str, str]:
    if isinstance(exc, Invalid):
        return {".".join(str(p) for p in e["loc"][:1]) or "form": str(e["msg"]) for e in exc.errors}
    return {
        ".".join(str(p) for p in e["loc"][:1]) or "form": str(e["msg"]).removeprefix("Value error, ")
        for e in exc.errors(include_url=False)
    }


def _criteria_values(request: Request, *, paging: bool = True) -> dict[str, Any]:
    query = request.query_params
    values: dict[str, Any] = {key: [v for v in query.getlist(key) if v.strip()] for key in LIST_FIELDS}
    values["diagnoses"] = [c.strip() for v in values["diagnoses"] for c in v.replace(";", ",").split(",") if c.strip()]
    for key in ("q", "biobank", "age_min", "age_max") + (("page",) if paging else ()):
        if query.get(key, "").strip():
            values[key] = query[key].strip()
    return values


def _vocabularies() -> dict[str, Any]:
    return {
        "materials": [t.value for t in SampleType],
        "temperatures": [t.value for t in StorageTemperature],
        "sexes": [s.value for s in Sex],
        "data_labels": {k.value: v for k, v in DATA_LABELS.items()},
        "access_conditions": [u.value for u in UseAccessCondition],
        "age_labels": AGE_LABELS,
        "access_rights": [a.value for a in AccessRights],
    }


@router.get("/catalogue", response_class=HTMLResponse)
def catalogue(request: Request, session: DbSession, principal: WebPrincipal) -> Response:
    """The public, faceted catalogue of collections (no login)."""
    values = _criteria_values(request)
    errors: dict[str, str] = {}
    try:
        criteria = SearchCriteria.model_validate(values)
    except ValidationError as exc:
        errors = _errors(exc)
        criteria = SearchCriteria()
    result = search.search(session, criteria)
    return render(
        request,
        "catalogue/search.html",
        principal,
        section="catalogue",
        result=result,
        values=values,
        errors=errors,
        biobanks=institutions.list_biobanks(session),
        pages=max(1, -(-result.total // result.size)),
        **_vocabularies(),
    )


def _collection_page(
    request: Request,
    session: Session,
    principal: Principal | None,
    public_id: str,
    *,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    collection = institutions.get_collection(session, public_id)
    own = principal is not None and principal.can_read(collection.biobank_id)
    page = search.collection_page(session, public_id, include_unlisted=own)
    chart: dict[str, int] = {}
    for cell in page.facts:
        chart[cell.sample_type] = chart.get(cell.sample_type, 0) + cell.number_of_samples
    can_edit = principal is not None and principal.can_manage(collection.biobank_id)
    quality = None
    if own:
        from biobank.clinical import service as clinical

        latest = clinical.latest_quality(session, [collection.id]).get(collection.id)
        quality = clinical.quality_read(latest, collection) if latest else None
    return render(
        request,
        "catalogue/collection.html",
        principal,
        status_code=status_code,
        section="catalogue",
        page=page,
        c=collection,
        chart=chart,
        can_edit=can_edit,
        member=own,
        quality=quality,
        errors=errors or {},
        statuses=[s.value for s in CollectionStatus],
        sources=[s.value for s in SampleSource],
        age_units=[u.value for u in AgeUnit],
        dataset_types=[d.value for d in DatasetType],
        **_vocabularies(),
    )


@router.get("/catalogue/collections/{public_id}", response_class=HTMLResponse)
def collection_page(request: Request, public_id: str, session: DbSession, principal: WebPrincipal) -> Response:
    """A collection's public page: MIABIS attributes, facts table and chart, how to access it."""
    return _collection_page(request, session, principal, public_id)


def _lines(text: str) -> list[str]:
    return [line.strip() for line in text.replace("\r", "").split("\n") if line.strip()]


def _collection_edit_values(form: Mapping[str, Any]) -> dict[str, Any]:
    def one(key: str) -> str:
        return text(form, key)

    def several(key: str) -> list[str]:
        return many(form, key)

    values: dict[str, Any] = {
        "name": one("name"),
        "acronym": one("acronym"),
        "description": one("description"),
        "sample_source": one("sample_source"),
        "status": one("status"),
        "age_unit": one("age_unit"),
        "age_low": one("age_low") or None,
        "age_high": one("age_high") or None,
        "number_of_subjects": one("number_of_subjects") or None,
        "sexes": several("sexes"),
        "sample_types": several("sample_types"),
        "storage_temperatures": several("storage_temperatures"),
        "dataset_types": several("dataset_types"),
        "use_access_conditions": several("use_access_conditions"),
        "diseases": [c.strip() for c in one("diseases").replace(";", ",").split(",") if c.strip()],
        "design": _lines(one("design")),
        "inclusion_criteria": _lines(one("inclusion_criteria")),
        "publications": _lines(one("publications")),
        "listed": form.get("listed") == "true",
        "licence": one("licence") or None,
        "access_rights": one("access_rights"),
        "access_url": one("access_url") or None,
        "contact_email": one("contact_email"),
        "access_description": one("access_description"),
        "keywords": [k.strip() for k in one("keywords").split(",") if k.strip()],
    }
    return values


@router.post("/catalogue/collections/{public_id}", response_class=HTMLResponse)
def edit_collection_form(
    request: Request, public_id: str, session: DbSession, principal: WebPrincipal, form: Posted
) -> Response:
    """Save a manager's edit of a collection (MIABIS attributes and publication)."""
    if principal is None:
        return RedirectResponse(f"/login?next={quote(request.url.path)}", status_code=303)
    check_csrf(principal, text(form, "csrf_token"))
    collection = service.collection_for_edit(session, principal, public_id)
    try:
        with savepoint(session):
            data = CollectionEdit.model_validate(_collection_edit_values(form))
            service.edit_collection(session, principal, collection, data)
    except (ValidationError, Invalid) as exc:
        return _collection_page(request, session, principal, public_id, errors=_errors(exc), status_code=422)
    return redirect(search.collection_url(public_id), flash="Collection saved.")


@router.get("/catalogue/biobanks/{ref}", response_class=HTMLResponse)
def biobank_page(request: Request, ref: str, session: DbSession, principal: WebPrincipal) -> Response:
    """A biobank's public page with its listed collections."""
    page = search.biobank_page(session, ref)
    biobank = institutions.get_biobank(session, ref)
    return render(
        request,
        "catalogue/biobank.html",
        principal,
        section="catalogue",
        page=page,
        can_edit=principal is not None and principal.can_manage(biobank.id),
        standards=[q.value for q in QualityStandard],
        errors={},
    )


@router.post("/catalogue/biobanks/{ref}", response_class=HTMLResponse)
def edit_biobank_form(
    request: Request, ref: str, session: DbSession, principal: WebPrincipal, form: Posted
) -> Response:
    """Save a manager's edit of a biobank."""
    if principal is None:
        return RedirectResponse(f"/login?next={quote(request.url.path)}", status_code=303)
    check_csrf(principal, text(form, "csrf_token"))
    biobank = institutions.get_biobank(session, ref)
    values = {
        "name": text(form, "name"),
        "acronym": text(form, "acronym"),
        "url": text(form, "url"),
        "juristic_person": text(form, "juristic_person"),
        "contact_email": text(form, "contact_email"),
        "description": text(form, "description"),
        "infrastructural_capabilities": _lines(text(form, "infrastructural_capabilities")),
        "organisational_capabilities": _lines(text(form, "organisational_capabilities")),
        "bioprocessing_capabilities": _lines(text(form, "bioprocessing_capabilities")),
        "quality_standards": many(form, "quality_standards"),
    }
    try:
        with savepoint(session):
            service.edit_biobank(session, principal, biobank, BiobankEdit.model_validate(values))
    except (ValidationError, Invalid) as exc:
        return render(
            request,
            "catalogue/biobank.html",
            principal,
            status_code=422,
            section="catalogue",
            page=search.biobank_page(session, ref),
            can_edit=True,
            standards=[q.value for q in QualityStandard],
            errors=_errors(exc),
        )
    return redirect(search.biobank_url(biobank.public_id), flash="Biobank saved.")


@router.get("/catalogue/datasets/{public_id}", response_class=HTMLResponse)
def dataset_page(request: Request, public_id: str, session: DbSession, principal: WebPrincipal) -> Response:
    """The public page of an omics dataset covering a listed collection (metadata, thresholded numbers)."""
    from biobank.omics import service as omics

    items = search.listings(session)
    datasets = omics.public_datasets(session, [i.collection.id for i in items])
    covering = [(i, d) for i in items for d in datasets.get(i.collection.id, []) if d.public_id == public_id]
    if not covering:
        raise NotFound(f"no dataset {public_id!r} in the catalogue", name="DatasetNotFound")
    dataset = covering[0][1]
    coverage = omics.coverage_counts(session, [i.collection.id for i, _ in covering])
    current = policy()
    rows = [
        (i, disclose(coverage.get(i.collection.id, (0, {}))[1].get(str(dataset.kind), 0), current)) for i, _ in covering
    ]
    return render(request, "catalogue/dataset.html", principal, section="catalogue", dataset=dataset, rows=rows)


# -- the count query ---------------------------------------------------------------------------------------


def _count_values(form: Mapping[str, Any]) -> dict[str, Any]:
    def one(key: str) -> str:
        return text(form, key)

    def several(key: str) -> list[str]:
        return many(form, key)

    criteria: dict[str, Any] = {
        "diagnoses": [c.strip() for c in one("diagnoses").replace(";", ",").split(",") if c.strip()],
        "materials": several("materials"),
        "sexes": several("sexes"),
        "storage_temperatures": several("storage_temperatures"),
        "collections": several("collections"),
    }
    for key in ("age_min", "age_max"):
        if one(key):
            criteria[key] = one(key)
    purpose: dict[str, Any] = {
        "category": one("category"),
        "diseases": [c.strip() for c in one("purpose_diseases").replace(";", ",").split(",") if c.strip()],
        "project_id": one("project_id") or None,
    }
    for key in ("ethics_approval", "commercial", "genetic"):
        if one(key) in ("yes", "no"):
            purpose[key] = one(key) == "yes"
    if one("country"):
        purpose["country"] = one("country").upper()
    return {"criteria": criteria, "purpose": purpose}


def _count_page(
    request: Request,
    session: Session,
    principal: Principal,
    *,
    values: dict[str, Any] | None = None,
    result: CountResult | None = None,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    return render(
        request,
        "catalogue/count.html",
        principal,
        status_code=status_code,
        section="catalogue",
        values=values or {"criteria": {}, "purpose": {"category": "DS"}},
        result=result,
        errors=errors or {},
        collections=search.listings(session),
        categories=[c.value for c in PurposeCategory],
        **_vocabularies(),
    )


@router.get("/catalogue/count", response_class=HTMLResponse)
def count_form(request: Request, session: DbSession, principal: WebPrincipal) -> Response:
    """The count query form (registered researchers and staff)."""
    if principal is None:
        return RedirectResponse(f"/login?next={quote('/catalogue/count')}", status_code=303)
    return _count_page(request, session, principal)


@router.post("/catalogue/count", response_class=HTMLResponse)
def count_submit(request: Request, session: DbSession, principal: WebPrincipal, form: Posted) -> Response:
    """Run a count query: thresholded counts consent allows for the purpose (audited)."""
    if principal is None:
        return RedirectResponse(f"/login?next={quote('/catalogue/count')}", status_code=303)
    check_csrf(principal, text(form, "csrf_token"))
    values = _count_values(form)
    try:
        result = counts.count(session, principal, CountRequest.model_validate(values))
    except ValidationError as exc:
        errors = {
            ".".join(str(p) for p in e["loc"][:2]): str(e["msg"]).removeprefix("Value error, ")
            for e in exc.errors(include_url=False)
        }
        return _count_page(request, session, principal, values=values, errors=errors, status_code=422)
    except Invalid as exc:
        errors = {".".join(str(p) for p in e["loc"][:2]): str(e["msg"]) for e in exc.errors}
        return _count_page(request, session, principal, values=values, errors=errors, status_code=422)
    except BiobankError as exc:
        return _count_page(
            request, session, principal, values=values, errors={"form": str(exc.detail)}, status_code=exc.status_code
        )
    return _count_page(request, session, principal, values=values, result=result)
