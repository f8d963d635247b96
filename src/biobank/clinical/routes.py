"""REST: clinical imports (tables with a mapping, FHIR Bundles), donors' records, data quality reports."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from starlette.datastructures import UploadFile

from biobank.clinical import service
from biobank.clinical.mapping import FORMAT, TARGETS
from biobank.clinical.quality import known_fields
from biobank.clinical.schemas import BatchRead, DonorClinicalRead, ImportReport, QualityReportRead, QualityRequest
from biobank.clinical.settings import get_clinical_settings
from biobank.identity.deps import CurrentPrincipal
from biobank.kit.deps import DbSession
from biobank.kit.errors import BiobankError, Invalid

router = APIRouter(prefix="/api/v1/clinical", tags=["clinical"])

TRUE = {"1", "true", "yes", "on"}


class TooLarge(BiobankError):
    status_code = 413
    default_name = "TooLarge"


def _limit() -> int:
    return get_clinical_settings().max_upload_mb * 1024 * 1024


async def read_multipart(request: Request) -> tuple[dict[str, tuple[str, bytes]], dict[str, str]]:
    """Uploaded files (name → (filename, bytes)) and plain fields of a multipart form, size-checked."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > _limit() * 2:
        raise TooLarge(f"the upload is larger than {get_clinical_settings().max_upload_mb} MB")
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise Invalid.field("file", "send the data file (and the mapping) as multipart/form-data")
    form = await request.form(max_files=3, max_fields=20)
    files: dict[str, tuple[str, bytes]] = {}
    fields: dict[str, str] = {}
    try:
        for key, value in form.multi_items():
            if isinstance(value, UploadFile):
                data = await value.read()
                if len(data) > _limit():
                    raise TooLarge(f"{key} is larger than {get_clinical_settings().max_upload_mb} MB")
                files[key] = (value.filename or key, data)
            else:
                fields[key] = value
    finally:
        await form.close()
    return files, fields


Multipart = Annotated[tuple[dict[str, tuple[str, bytes]], dict[str, str]], Depends(read_multipart)]


async def read_body(request: Request) -> bytes:
    """The raw request body, size-checked."""
    body = await request.body()
    if len(body) > _limit():
        raise TooLarge(f"the body is larger than {get_clinical_settings().max_upload_mb} MB")
    return body


RawBody = Annotated[bytes, Depends(read_body)]


@router.post("/imports", response_model=ImportReport)
def import_table(upload: Multipart, session: DbSession, principal: CurrentPrincipal) -> ImportReport:
    """Import a CSV/XLSX `file` with a JSON `mapping` into `biobank`; `dry_run=true` reports without writing."""
    files, fields = upload
    if "file" not in files:
        raise Invalid.field("file", "attach the data file (CSV or XLSX) as `file`")
    if "mapping" not in files and "mapping" not in fields:
        raise Invalid.field("mapping", "attach the mapping file (JSON) as `mapping`")
    mapping = files["mapping"][1] if "mapping" in files else fields["mapping"].encode()
    filename, data = files["file"]
    return service.import_table(
        session,
        principal,
        biobank=fields.get("biobank", ""),
        filename=filename,
        data=data,
        mapping=mapping,
        dry_run=fields.get("dry_run", "").lower() in TRUE,
    )


@router.post("/imports/fhir", response_model=ImportReport)
def import_fhir(
    body: RawBody,
    session: DbSession,
    principal: CurrentPrincipal,
    biobank: Annotated[str, Query()],
    dry_run: Annotated[bool, Query()] = False,
) -> ImportReport:
    """Import a FHIR R4 Bundle sent as the request body (application/fhir+json)."""
    return service.import_fhir(session, principal, biobank=biobank, data=body, filename="bundle.json", dry_run=dry_run)


@router.get("/imports", response_model=list[BatchRead])
def list_imports(session: DbSession, principal: CurrentPrincipal) -> list[BatchRead]:
    """Recent imports into the caller's biobanks."""
    return service.batches(session, principal)


@router.get("/mapping-format")
def mapping_format(principal: CurrentPrincipal) -> dict[str, Any]:
    """The targets a mapping may use and the fields a minimum dataset may name."""
    return {"format": FORMAT, "targets": sorted(TARGETS), "minimum_dataset_fields": known_fields()}


@router.get("/donors/{public_id}", response_model=DonorClinicalRead)
def donor_records(public_id: str, session: DbSession, principal: CurrentPrincipal) -> DonorClinicalRead:
    """A donor's clinical records (members of the donor's biobank; audited)."""
    return service.donor_records(session, principal, public_id)


@router.post("/quality/{collection}", response_model=QualityReportRead, status_code=201)
def compute_quality(
    collection: str, session: DbSession, principal: CurrentPrincipal, data: QualityRequest | None = None
) -> QualityReportRead:
    """Compute and store a collection's data quality report (its biobank's managers and technicians)."""
    return service.compute_quality(session, principal, collection, data.minimum_dataset if data else None)


@router.get("/quality/{collection}", response_model=list[QualityReportRead])
def quality_history(collection: str, session: DbSession, principal: CurrentPrincipal) -> list[QualityReportRead]:
    """A collection's stored quality reports, newest first (members of its biobank)."""
    return service.quality_history(session, principal, collection)
