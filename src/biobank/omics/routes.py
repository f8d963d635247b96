"""REST: omics datasets (/api/v1/omics/...): register, files, specimens, VCF check, coverage."""

from __future__ import annotations

import json

from fastapi import APIRouter

from biobank.clinical.routes import Multipart
from biobank.identity.deps import CurrentPrincipal
from biobank.kit.deps import DbSession
from biobank.kit.errors import Invalid
from biobank.omics import service
from biobank.omics.schemas import (
    CollectionCoverage,
    DatasetBrief,
    DatasetCreate,
    DatasetRead,
    FileIn,
    SpecimenLinkIn,
    VcfReport,
)

router = APIRouter(prefix="/api/v1/omics", tags=["omics"])


@router.get("/datasets", response_model=list[DatasetBrief])
def list_datasets(session: DbSession, principal: CurrentPrincipal) -> list[DatasetBrief]:
    """Datasets of the caller's biobanks."""
    return service.list_visible(session, principal)


@router.post("/datasets", response_model=DatasetRead, status_code=201)
def create_dataset(data: DatasetCreate, session: DbSession, principal: CurrentPrincipal) -> DatasetRead:
    """Register a dataset with its platform, files, QC metrics and specimens."""
    return service.to_read(session, service.create(session, principal, data))


@router.get("/datasets/{public_id}", response_model=DatasetRead)
def get_dataset(public_id: str, session: DbSession, principal: CurrentPrincipal) -> DatasetRead:
    """One dataset (members of its biobank)."""
    return service.to_read(session, service.get(session, principal, public_id))


@router.post("/datasets/{public_id}/files", response_model=DatasetRead)
def add_files(public_id: str, data: list[FileIn], session: DbSession, principal: CurrentPrincipal) -> DatasetRead:
    """Add files (URI, size, checksum)."""
    dataset = service.get(session, principal, public_id)
    return service.to_read(session, service.add_files(session, principal, dataset, data))


@router.post("/datasets/{public_id}/specimens", response_model=DatasetRead)
def link_specimens(
    public_id: str, data: list[SpecimenLinkIn], session: DbSession, principal: CurrentPrincipal
) -> DatasetRead:
    """Link specimens of the dataset's biobank."""
    dataset = service.get(session, principal, public_id)
    return service.to_read(session, service.link_specimens(session, principal, dataset, data))


@router.post("/datasets/{public_id}/vcf", response_model=VcfReport)
def attach_vcf(public_id: str, upload: Multipart, session: DbSession, principal: CurrentPrincipal) -> VcfReport:
    """Check a VCF (`file`, plain or gzip; the header is enough) and map its samples to specimens.

    Optional fields: `uri` of the full file, `size_bytes`, and `sample_map` (JSON: sample → specimen).
    """
    files, fields = upload
    if "file" not in files:
        raise Invalid.field("file", "attach the VCF (or its header) as `file`")
    sample_map: dict[str, str] = {}
    if fields.get("sample_map"):
        try:
            loaded = json.loads(fields["sample_map"])
        except ValueError:
            raise Invalid.field("sample_map", "give a JSON object {sample name: specimen id or barcode}") from None
        if not isinstance(loaded, dict) or not all(isinstance(v, str) for v in loaded.values()):
            raise Invalid.field("sample_map", "give a JSON object {sample name: specimen id or barcode}")
        sample_map = {str(k): v for k, v in loaded.items()}
    size = fields.get("size_bytes")
    dataset = service.get(session, principal, public_id)
    filename, content = files["file"]
    return service.attach_vcf(
        session,
        principal,
        dataset,
        content=content,
        filename=filename,
        uri=fields.get("uri") or None,
        sample_map=sample_map,
        size_bytes=int(size) if size and size.isdigit() else None,
    )


@router.get("/coverage", response_model=list[CollectionCoverage])
def coverage(session: DbSession, principal: CurrentPrincipal) -> list[CollectionCoverage]:
    """Share of each collection's held specimens with one or more omics layers, and which (members)."""
    return service.coverage(session, principal)
