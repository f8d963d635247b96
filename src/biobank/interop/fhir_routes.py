"""FHIR R4 read API (/fhir/...): Organization (public); Specimen, Patient, Condition (members, audited)."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse

from biobank import __version__, audit
from biobank.clinical import service as clinical
from biobank.config import get_settings
from biobank.donors import service as donors
from biobank.identity.deps import CurrentPrincipal
from biobank.interop import exports, fhir
from biobank.kit.deps import DbSession
from biobank.kit.errors import BiobankError, NotFound
from biobank.specimens import service as specimens

router = APIRouter(prefix="/fhir", tags=["fhir"])
FHIR_JSON = "application/fhir+json"

Count = Annotated[int, Query(alias="_count", ge=1, le=exports.MAX_PAGE)]
Cursor = Annotated[str | None, Query(alias="_cursor")]
Validate = Annotated[bool, Query(alias="_validate", description="validate each resource with fhir.resources")]


class InvalidResource(BiobankError):
    """A resource we built does not validate: a bug, reported as a server error."""

    status_code = 500
    default_name = "InvalidResource"


def respond(body: dict[str, Any], *, validate: bool = False) -> JSONResponse:
    """A FHIR JSON response; with validate, every resource is checked with fhir.resources first."""
    if validate:
        resources = [e["resource"] for e in body.get("entry", [])] if body["resourceType"] == "Bundle" else [body]
        for resource in resources:
            try:
                fhir.validate(resource)
            except ValueError as exc:
                raise InvalidResource(f"{resource['resourceType']}/{resource.get('id')}: {exc}") from None
    return JSONResponse(body, media_type=FHIR_JSON)


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/") + "/fhir"


def _searchset(
    request: Request, resources: list[dict[str, Any]], next_cursor: str | None, count: int, **params: Any
) -> dict[str, Any]:
    base = _base(request)
    path = request.url.path
    query = {k: v for k, v in params.items() if v}
    next_url = None
    if next_cursor:
        next_url = f"{str(request.base_url).rstrip('/')}{path}?" + urlencode(
            {**query, "_count": count, "_cursor": next_cursor}
        )
    return fhir.bundle(
        resources, base_url=base, kind="searchset", total=None, next_url=next_url, self_url=str(request.url)
    )


@router.get("/metadata")
def metadata(request: Request) -> JSONResponse:
    """The CapabilityStatement."""
    return respond(fhir.capability_statement(_base(request), __version__))


@router.get("/Organization")
def organizations(request: Request, session: DbSession, validate: Validate = False) -> JSONResponse:
    """Biobanks and listed collections (public)."""
    resources = exports.fhir_organizations(session)
    return respond(
        fhir.bundle(resources, base_url=_base(request), kind="searchset", total=len(resources)), validate=validate
    )


@router.get("/Organization/{resource_id}")
def organization(resource_id: str, session: DbSession) -> JSONResponse:
    """One biobank or listed collection."""
    for resource in exports.fhir_organizations(session):
        if resource["id"] == resource_id:
            return respond(resource)
    raise NotFound(f"no Organization {resource_id!r}", name="OrganizationNotFound")


@router.get("/Specimen")
def search_specimens(
    request: Request,
    session: DbSession,
    principal: CurrentPrincipal,
    collection: str | None = None,
    count: Count = 100,
    cursor: Cursor = None,
    validate: Validate = False,
) -> JSONResponse:
    """The caller's specimens, a page at a time (audited)."""
    resources, next_cursor = exports.fhir_specimens(
        session, principal, collection=collection, cursor=cursor, limit=count
    )
    return respond(_searchset(request, resources, next_cursor, count, collection=collection), validate=validate)


@router.get("/Specimen/{resource_id}")
def read_specimen(resource_id: str, session: DbSession, principal: CurrentPrincipal) -> JSONResponse:
    """One specimen (members of its biobank; audited)."""
    public_id = fhir.public_id_from_fhir(resource_id, get_settings().institution_code)
    specimen = specimens.get(session, principal, public_id)
    return respond(exports.specimen_resources(session, [specimen])[0])


@router.get("/Patient")
def search_patients(
    request: Request,
    session: DbSession,
    principal: CurrentPrincipal,
    count: Count = 100,
    cursor: Cursor = None,
    validate: Validate = False,
) -> JSONResponse:
    """The caller's donors as Patients: gender and birth year only (audited)."""
    resources, next_cursor = exports.fhir_patients(session, principal, cursor=cursor, limit=count)
    return respond(_searchset(request, resources, next_cursor, count), validate=validate)


@router.get("/Patient/{resource_id}")
def read_patient(resource_id: str, session: DbSession, principal: CurrentPrincipal) -> JSONResponse:
    """One donor as a Patient (members of its biobank; audited)."""
    public_id = fhir.public_id_from_fhir(resource_id, get_settings().institution_code)
    donor = donors.get(session, principal, public_id)
    return respond(fhir.patient(donor))


@router.get("/Condition")
def search_conditions(
    request: Request,
    session: DbSession,
    principal: CurrentPrincipal,
    count: Count = 100,
    cursor: Cursor = None,
    validate: Validate = False,
) -> JSONResponse:
    """Diagnoses of the caller's donors, a page of donors at a time (audited)."""
    resources, next_cursor = exports.fhir_conditions(session, principal, cursor=cursor, limit=count)
    return respond(_searchset(request, resources, next_cursor, count), validate=validate)


@router.get("/Condition/{resource_id}")
def read_condition(resource_id: str, session: DbSession, principal: CurrentPrincipal) -> JSONResponse:
    """One diagnosis (members of the donor's biobank; audited)."""
    if resource_id.startswith("dd-"):
        patient_part = resource_id[3:].rsplit("-", 1)[0]
        public_id = fhir.public_id_from_fhir(patient_part, get_settings().institution_code)
        donor = donors.get(session, principal, public_id)
        for resource in exports.condition_resources(session, [donor]):
            if resource["id"] == resource_id:
                return respond(resource)
        raise NotFound(f"no Condition {resource_id!r}", name="ConditionNotFound")
    record = clinical.diagnosis(session, principal, resource_id)
    donor_public = donors.public_ids_by_id(session, [record.donor_id])[record.donor_id]
    audit.record(session, principal, "clinical.read", "donor", [donor_public])
    for resource in exports.condition_resources(session, list(donors.by_ids(session, [record.donor_id]).values())):
        if resource["id"] == resource_id:
            return respond(resource)
    raise NotFound(f"no Condition {resource_id!r}", name="ConditionNotFound")
