"""Omics use cases: register datasets with files, QC and specimens; check VCF headers; coverage.

Datasets belong to a biobank and link only that biobank's specimens. A VCF is checked (header
structure, sample columns) and each sample name must map to a specimen (its barcode or public id, or
an explicit sample → specimen map); the mapped specimens are linked under that sample name.
"""

from __future__ import annotations

import hashlib
from typing import Any
from urllib.parse import quote

from sqlalchemy.orm import Session

from biobank import audit
from biobank.config import get_settings
from biobank.identity.principal import Principal
from biobank.institutions import service as institutions
from biobank.kit.db import flush_or_conflict
from biobank.kit.errors import FieldError, Invalid, NotFound, NotPermitted
from biobank.kit.ids import new_public_ids
from biobank.omics import repository as repo
from biobank.omics import vcf
from biobank.omics.models import OmicsDataset, OmicsFile, OmicsSpecimen
from biobank.omics.schemas import (
    CollectionCoverage,
    CoverageLayer,
    DatasetBrief,
    DatasetCreate,
    DatasetRead,
    FileIn,
    FileRead,
    SpecimenLinkIn,
    SpecimenLinkRead,
    VcfReport,
)
from biobank.specimens import service as specimens

UNIQUE_FILE = {
    "uq_omics_files_dataset_id": ("FileExists", "the dataset already has a file with that URI"),
    "omics_files.dataset_id, omics_files.uri": ("FileExists", "the dataset already has a file with that URI"),
}


def _writable_biobank(session: Session, principal: Principal, code: str) -> Any:
    try:
        biobank = institutions.get_biobank(session, code)
    except NotFound:
        raise Invalid.field("biobank", "unknown biobank", value=code) from None
    if not principal.can_read(biobank.id):
        raise Invalid.field("biobank", "unknown biobank", value=code)
    if not principal.can_write(biobank.id):
        raise NotPermitted("only the biobank's managers and technicians register omics datasets")
    return biobank


def get(session: Session, principal: Principal, public_id: str) -> OmicsDataset:
    """A dataset of one of the principal's biobanks, or 404."""
    dataset = repo.by_public_id(session, public_id)
    if dataset is None or not principal.can_read(dataset.biobank_id):
        raise NotFound(f"no omics dataset {public_id!r}", name="OmicsDatasetNotFound")
    return dataset


def _link(
    session: Session, dataset: OmicsDataset, links: list[SpecimenLinkIn], loc: str = "specimens"
) -> tuple[int, list[FieldError]]:
    refs = [link.specimen for link in links]
    found = specimens.by_refs_in_biobank(session, dataset.biobank_id, refs)
    errors = [
        FieldError([loc, i, "specimen"], "no specimen with this id or barcode in the dataset's biobank", value=ref)
        for i, ref in enumerate(refs)
        if ref not in found
    ]
    if errors:
        return 0, errors
    already = repo.linked_specimen_ids(session, dataset.id)
    added = 0
    for link in links:
        specimen = found[link.specimen]
        if specimen.id in already:
            continue
        already.add(specimen.id)
        session.add(
            OmicsSpecimen(
                dataset_id=dataset.id,
                specimen_id=specimen.id,
                collection_id=specimen.collection_id,
                kind=str(dataset.kind),
                sample_name=link.sample_name or specimen.barcode,
                qc_metrics=dict(link.qc_metrics),
            )
        )
        added += 1
    return added, []


def _add_file(session: Session, dataset: OmicsDataset, data: FileIn, samples: list[str] | None = None) -> OmicsFile:
    record = OmicsFile(
        dataset_id=dataset.id,
        uri=data.uri,
        format=data.format,
        size_bytes=data.size_bytes,
        checksum=data.checksum,
        samples=samples or [],
    )
    session.add(record)
    return record


def create(session: Session, principal: Principal, data: DatasetCreate) -> OmicsDataset:
    """Register a dataset with its files, QC metrics and specimens (the biobank's managers and technicians)."""
    biobank = _writable_biobank(session, principal, data.biobank)
    (public_id,) = new_public_ids(session, get_settings().institution_code, "OMX")
    dataset = OmicsDataset(
        public_id=public_id,
        biobank_id=biobank.id,
        kind=data.kind,
        title=data.title,
        description=data.description,
        platform=data.platform,
        reference_genome=data.reference_genome,
        qc_metrics=dict(data.qc_metrics),
        created_by=principal.public_id,
    )
    session.add(dataset)
    session.flush()
    errors: list[FieldError] = []
    seen: set[str] = set()
    for i, f in enumerate(data.files):
        if f.uri in seen:
            errors.append(FieldError(["files", i, "uri"], "repeats an earlier file", value=f.uri))
            continue
        seen.add(f.uri)
        _add_file(session, dataset, f)
    linked, link_errors = _link(session, dataset, data.specimens)
    errors += link_errors
    if errors:
        raise Invalid(errors)
    flush_or_conflict(session, UNIQUE_FILE)
    _refresh(session, dataset)
    audit.record(
        session,
        principal,
        "omics.dataset.create",
        "omics_dataset",
        [public_id],
        details={"kind": str(data.kind), "files": len(data.files), "specimens": linked},
    )
    return dataset


def add_files(session: Session, principal: Principal, dataset: OmicsDataset, files: list[FileIn]) -> OmicsDataset:
    """Add files to a dataset."""
    if not principal.can_write(dataset.biobank_id):
        raise NotPermitted("only the biobank's managers and technicians change omics datasets")
    for i, f in enumerate(files):
        if repo.file_by_uri(session, dataset.id, f.uri) is not None:
            raise Invalid([FieldError([i, "uri"], "the dataset already has a file with that URI", value=f.uri)])
        _add_file(session, dataset, f)
    flush_or_conflict(session, UNIQUE_FILE)
    audit.record(
        session, principal, "omics.files.add", "omics_dataset", [dataset.public_id], details={"files": len(files)}
    )
    return dataset


def link_specimens(
    session: Session, principal: Principal, dataset: OmicsDataset, links: list[SpecimenLinkIn]
) -> OmicsDataset:
    """Link more specimens to a dataset."""
    if not principal.can_write(dataset.biobank_id):
        raise NotPermitted("only the biobank's managers and technicians change omics datasets")
    added, errors = _link(session, dataset, links, loc="body")
    if errors:
        raise Invalid([FieldError(e["loc"][1:], e["msg"], value=e.get("value")) for e in errors])
    session.flush()
    _refresh(session, dataset)
    audit.record(
        session, principal, "omics.specimens.link", "omics_dataset", [dataset.public_id], details={"linked": added}
    )
    return dataset


def attach_vcf(
    session: Session,
    principal: Principal,
    dataset: OmicsDataset,
    *,
    content: bytes,
    filename: str,
    uri: str | None = None,
    sample_map: dict[str, str] | None = None,
    size_bytes: int | None = None,
) -> VcfReport:
    """Check a VCF header, map its samples to specimens, link them and record the file."""
    if not principal.can_write(dataset.biobank_id):
        raise NotPermitted("only the biobank's managers and technicians change omics datasets")
    header = vcf.parse_header(content)
    sample_map = sample_map or {}
    wanted = [sample_map.get(name, name) for name in header.samples]
    found = specimens.by_refs_in_biobank(session, dataset.biobank_id, wanted)
    errors = [
        FieldError(
            ["vcf", "line", header.header_line, "column", 10 + i],
            f"sample {name!r} maps to no specimen of the dataset's biobank"
            + (f" (mapped to {sample_map[name]!r})" if name in sample_map else " (give a sample map)"),
            value=name,
        )
        for i, (name, ref) in enumerate(zip(header.samples, wanted, strict=True))
        if ref not in found
    ]
    unknown_keys = sorted(set(sample_map) - set(header.samples))
    errors += [FieldError(["sample_map", key], "not a sample of this VCF", value=key) for key in unknown_keys]
    if errors:
        raise Invalid(errors, name="VcfSamplesUnmapped")
    links = [SpecimenLinkIn(specimen=ref, sample_name=name) for name, ref in zip(header.samples, wanted, strict=True)]
    linked, _ = _link(session, dataset, links)
    digest = hashlib.sha256(content).hexdigest()
    file_uri = uri or f"upload://sha256/{digest}/{quote(filename or 'file.vcf')}"
    if repo.file_by_uri(session, dataset.id, file_uri) is None:
        try:
            record = FileIn(
                uri=file_uri, size_bytes=size_bytes or len(content), checksum=f"sha256:{digest}", format="VCF"
            )
        except ValueError as exc:
            raise Invalid.field("uri", str(exc).splitlines()[-1], value=file_uri) from None
        _add_file(session, dataset, record, samples=header.samples)
    session.flush()
    _refresh(session, dataset)
    audit.record(
        session,
        principal,
        "omics.vcf.attach",
        "omics_dataset",
        [dataset.public_id],
        details={"samples": len(header.samples), "linked": linked, "sha256": digest},
    )
    return VcfReport(
        fileformat=header.fileformat,
        samples=header.samples,
        mapped={name: found[ref].public_id for name, ref in zip(header.samples, wanted, strict=True)},
        contigs=header.contigs,
        info=len(header.info),
        formats=len(header.formats),
        reference=header.reference,
        linked=linked,
    )


def _refresh(session: Session, dataset: OmicsDataset) -> None:
    # Coverage is part of the catalogue summaries: refresh the collections the dataset touches.
    from biobank.catalogue import facts

    collections = {link.collection_id for link in repo.links_of(session, dataset.id)}
    if collections:
        facts.refresh_coverage(session, collections)


def list_visible(session: Session, principal: Principal) -> list[DatasetBrief]:
    """Datasets of the principal's biobanks, newest first."""
    datasets = repo.visible(session, principal.visible_biobank_ids())
    ids = [d.id for d in datasets]
    codes = institutions.biobank_codes(session, sorted({d.biobank_id for d in datasets}))
    files = repo.files_of(session, ids)
    counts = repo.link_counts(session, ids)
    return [
        DatasetBrief(
            public_id=d.public_id,
            biobank=codes[d.biobank_id],
            kind=str(d.kind),
            title=d.title,
            platform=d.platform,
            specimens=counts.get(d.id, 0),
            files=len(files[d.id]),
            created_at=d.created_at,
        )
        for d in datasets
    ]


def to_read(session: Session, dataset: OmicsDataset) -> DatasetRead:
    """The full view of a dataset (members of its biobank)."""
    links = repo.links_of(session, dataset.id)
    public = specimens.public_ids_of(session, [link.specimen_id for link in links])
    return DatasetRead(
        public_id=dataset.public_id,
        biobank=institutions.biobank_codes(session, [dataset.biobank_id])[dataset.biobank_id],
        kind=str(dataset.kind),
        title=dataset.title,
        description=dataset.description,
        platform=dataset.platform,
        reference_genome=dataset.reference_genome,
        qc_metrics=dict(dataset.qc_metrics),
        files=[FileRead.model_validate(f) for f in repo.files_of(session, [dataset.id])[dataset.id]],
        specimens=[
            SpecimenLinkRead(
                specimen=public[link.specimen_id], sample_name=link.sample_name, qc_metrics=link.qc_metrics
            )
            for link in links
        ],
        created_at=dataset.created_at,
    )


def coverage_counts(session: Session, collection_ids: list[int] | None) -> dict[int, tuple[int, dict[str, int]]]:
    """Per collection id: specimens with any omics layer, and per layer (for the catalogue summaries)."""
    return repo.coverage(session, collection_ids)


def coverage(session: Session, principal: Principal) -> list[CollectionCoverage]:
    """Omics coverage of the collections of the principal's biobanks (exact figures: members only)."""
    collections = [c for c in institutions.all_collections(session) if principal.can_read(c.biobank_id)]
    ids = [c.id for c in collections]
    held = specimens.held_counts(session, ids)
    counts = repo.coverage(session, ids)
    out = []
    for c in collections:
        total = held.get(c.id, 0)
        with_omics, layers = counts.get(c.id, (0, {}))
        out.append(
            CollectionCoverage(
                collection=c.public_id,
                name=c.name,
                specimens=total,
                with_omics=with_omics,
                share=round(with_omics / total, 4) if total else None,
                layers=[
                    CoverageLayer(kind=k, specimens=n, share=round(n / total, 4) if total else None)
                    for k, n in sorted(layers.items())
                ],
            )
        )
    return out


def public_datasets(session: Session, collection_ids: list[int]) -> dict[int, list[OmicsDataset]]:
    """Datasets covering each collection (catalogue and DCAT publish their metadata, never file URIs)."""
    return repo.datasets_by_collection(session, collection_ids)
