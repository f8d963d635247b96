"""Clinical use cases: imports (tables with a mapping, FHIR Bundles), donors' records, quality reports.

An import is one transaction: it is checked completely first (dry run), and written only when no row
has an error — all or nothing. A dry run reports the same rows, columns and record counts without
writing. After a committed import the catalogue facts of the touched collections are refreshed in the
same transaction.
"""

from __future__ import annotations

import hashlib
import time
from typing import Any

from sqlalchemy.orm import Session

from biobank import audit
from biobank.clinical import fhir_import, quality, tabular
from biobank.clinical import repository as repo
from biobank.clinical.mapping import load_mapping
from biobank.clinical.models import ClinicalImportBatch, ImportKind, QualityReport
from biobank.clinical.records import MODELS, Errors, Pending, Resolved, resolve, resolve_donors, write
from biobank.clinical.schemas import (
    BatchRead,
    ColumnReport,
    DiagnosisRead,
    DonorClinicalRead,
    ImportIssue,
    ImportReport,
    ObservationRead,
    OutcomeRead,
    QualityReportRead,
    RecordCounts,
    TreatmentRead,
)
from biobank.clinical.settings import get_clinical_settings
from biobank.donors import service as donors
from biobank.identity.principal import Principal
from biobank.institutions import service as institutions
from biobank.institutions.models import Biobank, Collection
from biobank.kit.db import utcnow
from biobank.kit.errors import FieldError, Invalid, NotFound, NotPermitted
from biobank.kit.ids import new_uuid
from biobank.specimens import service as specimens


def _biobank_for_import(session: Session, principal: Principal, code: str) -> Biobank:
    try:
        biobank = institutions.get_biobank(session, code)
    except NotFound:
        raise Invalid.field("biobank", "unknown biobank", value=code) from None
    if not principal.can_read(biobank.id):
        raise Invalid.field("biobank", "unknown biobank", value=code)
    if not principal.can_write(biobank.id):
        raise NotPermitted("only the biobank's managers and technicians import clinical data")
    return biobank


def _issues(errors: Errors) -> list[ImportIssue]:
    return [
        ImportIssue(row=e.get("row"), loc=list(e["loc"]), message=str(e["msg"]), value=e.get("value"))
        for e in errors.items
    ]


def _finish(
    session: Session,
    principal: Principal,
    biobank: Biobank,
    *,
    kind: ImportKind,
    filename: str,
    data: bytes,
    mapping_bytes: bytes | None,
    rows: int,
    resolved: Resolved,
    errors: Errors,
    dry_run: bool,
    started: float,
    columns: list[ColumnReport],
    ignored: dict[str, int] | None = None,
) -> ImportReport:
    counts = {k: RecordCounts(**vars(c)) for k, c in resolved.counts.items()}
    report = ImportReport(
        dry_run=dry_run,
        committed=False,
        kind=kind.value,
        rows=rows,
        donors=len(resolved.donor_ids),
        errors=_issues(errors),
        error_count=errors.total,
        columns=columns,
        records=counts,
        ignored=ignored or {},
        seconds=0.0,
    )
    if errors and not dry_run:
        items = list(errors.items)
        if errors.total > len(items):
            items.append(FieldError([], f"… and {errors.total - len(items)} more errors; run a dry run for the report"))
        raise Invalid(items, name="ImportRefused")
    if dry_run:
        report.seconds = round(time.perf_counter() - started, 3)
        audit.record(
            session,
            principal,
            "clinical.import.dry_run",
            "biobank",
            [biobank.public_id],
            details={"kind": kind.value, "rows": rows, "errors": errors.total},
        )
        return report
    batch = ClinicalImportBatch(
        public_id=new_uuid(),
        biobank_id=biobank.id,
        kind=kind,
        filename=filename[:200],
        sha256=hashlib.sha256(data).hexdigest(),
        mapping_sha256=hashlib.sha256(mapping_bytes).hexdigest() if mapping_bytes else None,
        rows=rows,
        created=sum(c.create for c in resolved.counts.values()),
        updated=sum(c.update for c in resolved.counts.values()),
        unchanged=sum(c.unchanged for c in resolved.counts.values()),
        imported_by=principal.public_id,
    )
    session.add(batch)
    session.flush()
    write(session, resolved, batch.id)
    refreshed = 0
    if batch.created or batch.updated:
        from biobank.catalogue import facts

        refreshed = facts.refresh_for_donors(session, sorted(resolved.donor_ids)).collections
    session.flush()
    audit.record(
        session,
        principal,
        "clinical.import",
        "clinical_import",
        [batch.public_id],
        details={
            "biobank": biobank.code,
            "kind": kind.value,
            "rows": rows,
            "donors": len(resolved.donor_ids),
            "created": batch.created,
            "updated": batch.updated,
            "unchanged": batch.unchanged,
        },
    )
    report.committed = True
    report.batch = batch.public_id
    report.collections_refreshed = refreshed
    report.seconds = round(time.perf_counter() - started, 3)
    return report


def import_table(
    session: Session,
    principal: Principal,
    *,
    biobank: str,
    filename: str,
    data: bytes,
    mapping: bytes | dict[str, Any],
    dry_run: bool,
) -> ImportReport:
    """Import a CSV/XLSX file with a mapping; a dry run reports without writing; errors refuse everything."""
    started = time.perf_counter()
    target = _biobank_for_import(session, principal, biobank)
    parsed_mapping = load_mapping(mapping)
    header, rows = tabular.read_table(filename, data)
    errors = Errors()
    parsed = tabular.parse(parsed_mapping, header, rows, errors)
    by = "patient_id" if parsed_mapping.donor_target == "donor.patient_id" else "public_id"
    refs = {p.donor_ref for p in parsed.pending}
    donor_ids = resolve_donors(session, target.id, refs, by=by)
    message = (
        f"no donor with this patient id in biobank {target.code}"
        if by == "patient_id"
        else f"no donor with this id in biobank {target.code}"
    )
    resolved = resolve(
        session,
        target.id,
        parsed.pending,
        donor_ids,
        errors,
        donor_loc=[parsed.donor_column.spec.source],
        donor_message=message,
    )
    columns = [
        ColumnReport(
            source=c.spec.source,
            target=c.spec.target,
            filled=c.filled,
            empty=parsed.rows - c.filled,
            unmapped=dict(sorted(c.unmapped.items(), key=lambda kv: -kv[1])[:20]),
        )
        for c in [parsed.donor_column, *parsed.columns]
    ]
    kind = ImportKind.XLSX if data[:4] == b"PK\x03\x04" else ImportKind.CSV
    mapping_bytes = mapping if isinstance(mapping, bytes) else repr(sorted(mapping.items())).encode()
    return _finish(
        session,
        principal,
        target,
        kind=kind,
        filename=filename,
        data=data,
        mapping_bytes=mapping_bytes,
        rows=parsed.rows,
        resolved=resolved,
        errors=errors,
        dry_run=dry_run,
        started=started,
        columns=columns,
    )


def import_fhir(
    session: Session, principal: Principal, *, biobank: str, data: bytes, filename: str = "", dry_run: bool
) -> ImportReport:
    """Import a FHIR R4 Bundle (Patient, Condition, Observation, Specimen); invalid Bundles are refused."""
    started = time.perf_counter()
    target = _biobank_for_import(session, principal, biobank)
    bundle = fhir_import.load_bundle(data)
    errors = Errors()
    parsed = fhir_import.parse_bundle(bundle, errors)
    patient_refs = {p.donor_ref for p in parsed.pending}
    donor_ids = _fhir_donors(session, target.id, patient_refs)
    fhir_import.resolve_specimens(session, target.id, parsed, donor_ids, errors)
    pending: list[Pending] = parsed.pending
    resolved = resolve(
        session,
        target.id,
        pending,
        donor_ids,
        errors,
        donor_loc=["subject"],
        donor_message=f"the referenced Patient is not a donor of biobank {target.code}",
    )
    return _finish(
        session,
        principal,
        target,
        kind=ImportKind.FHIR,
        filename=filename,
        data=data,
        mapping_bytes=None,
        rows=parsed.entries,
        resolved=resolved,
        errors=errors,
        dry_run=dry_run,
        started=started,
        columns=[],
        ignored=parsed.ignored,
    )


def _fhir_donors(session: Session, biobank_id: int, refs: set[str]) -> dict[str, int]:
    by_patient = {r.split(":", 1)[1]: r for r in refs if r.startswith("patient:")}
    by_public = {r.split(":", 1)[1]: r for r in refs if r.startswith("donor:")}
    out: dict[str, int] = {}
    for value, donor_id in resolve_donors(session, biobank_id, by_patient, by="patient_id").items():
        out[by_patient[value]] = donor_id
    for value, donor_id in resolve_donors(session, biobank_id, by_public, by="public_id").items():
        out[by_public[value]] = donor_id
    return out


# -- reading -----------------------------------------------------------------------------------------------


def donor_ids_with_records() -> Any:
    """A selectable of donor ids with any clinical record (the catalogue's "clinical data available")."""
    return repo.donor_ids_with_records()


def donor_records(session: Session, principal: Principal, donor_public_id: str) -> DonorClinicalRead:
    """A donor's clinical records (members of the donor's biobank; audited)."""
    donor = donors.get(session, principal, donor_public_id, audit_read=False)
    records = repo.records_of(session, [donor.id])
    audit.record(session, principal, "clinical.read", "donor", [donor.public_id])
    return DonorClinicalRead(
        donor=donor.public_id,
        diagnoses=[DiagnosisRead.model_validate(x) for x in records["diagnoses"]],
        observations=[ObservationRead.model_validate(x) for x in records["observations"]],
        treatments=[TreatmentRead.model_validate(x) for x in records["treatments"]],
        outcomes=[OutcomeRead.model_validate(x) for x in records["outcomes"]],
    )


def diagnoses_by_donor(session: Session, donor_ids: list[int]) -> dict[int, list[Any]]:
    """Clinical diagnoses per donor id (only donors that have some), unscoped: callers check the biobank."""
    out: dict[int, list[Any]] = {}
    for record in repo.diagnoses_of(session, donor_ids):
        out.setdefault(record.donor_id, []).append(record)
    return out


def diagnoses_batch(session: Session, principal: Principal, *, after_id: int = 0, limit: int = 500) -> list[Any]:
    """Clinical diagnoses of the principal's biobanks in id order after `after_id` (FHIR Condition export)."""
    return repo.diagnoses_after(session, principal.visible_biobank_ids(), after_id, limit)


def diagnosis(session: Session, principal: Principal, public_id: str) -> Any:
    """One clinical diagnosis the principal may see, or NotFound."""
    record = repo.diagnosis_by_public_id(session, public_id)
    if record is None or not principal.can_read(record.biobank_id):
        raise NotFound("no such condition", name="ConditionNotFound")
    return record


def batches(session: Session, principal: Principal) -> list[BatchRead]:
    """Recent imports into the principal's biobanks."""
    return [BatchRead.model_validate(b) for b in repo.batches(session, principal.visible_biobank_ids())]


# -- data quality ------------------------------------------------------------------------------------------


def _readable_collection(session: Session, principal: Principal, public_id: str) -> Collection:
    collection = institutions.get_collection(session, public_id)
    if not principal.can_read(collection.biobank_id):
        raise NotFound(f"no collection {public_id!r}", name="CollectionNotFound")
    return collection


def compute_quality(
    session: Session, principal: Principal, collection_public_id: str, minimum_dataset: list[str] | None = None
) -> QualityReportRead:
    """Compute and store the data quality report of a collection (its biobank's managers and technicians)."""
    collection = _readable_collection(session, principal, collection_public_id)
    if not principal.can_write(collection.biobank_id):
        raise NotPermitted("only the biobank's managers and technicians compute quality reports")
    fields = list(minimum_dataset) if minimum_dataset else list(get_clinical_settings().minimum_dataset)
    errors = []
    for i, name in enumerate(fields):
        try:
            quality.field_check(name)
        except ValueError as exc:
            errors.append(FieldError(["minimum_dataset", i], str(exc), value=name))
    if errors:
        raise Invalid(errors)
    report = store_quality(session, collection, fields, actor=principal.public_id)
    audit.record(
        session,
        principal,
        "clinical.quality.compute",
        "collection",
        [collection.public_id],
        details={"report": report.public_id, "donors": report.donors},
    )
    return quality_read(report, collection)


def store_quality(session: Session, collection: Collection, fields: list[str], *, actor: str) -> QualityReport:
    """Compute a collection's report and keep it (jobs call this directly with actor "system")."""
    first = specimens.first_collection_dates(session, collection.id)
    demographics = donors.by_ids(session, sorted(first))
    registry = donors.diagnoses(session, sorted(first))
    facts = quality.gather(session, demographics, first, registry)
    measures = quality.measure(facts, fields, today=utcnow().date())
    report = QualityReport(
        public_id=new_uuid(),
        collection_id=collection.id,
        computed_at=utcnow(),
        computed_by=actor,
        donors=len(facts),
        minimum_dataset=fields,
        **measures,
    )
    session.add(report)
    session.flush()
    return report


def quality_read(report: QualityReport, collection: Collection) -> QualityReportRead:
    """The API view of a report."""
    return QualityReportRead(
        public_id=report.public_id,
        collection=collection.public_id,
        computed_at=report.computed_at,
        computed_by=report.computed_by,
        donors=report.donors,
        minimum_dataset=list(report.minimum_dataset),
        completeness=report.completeness,
        code_validity=report.code_validity,
        consistency=report.consistency,
        coded_share=report.coded_share,
        details=dict(report.details),
    )


def quality_history(session: Session, principal: Principal, collection_public_id: str) -> list[QualityReportRead]:
    """A collection's stored reports, newest first (members of its biobank)."""
    collection = _readable_collection(session, principal, collection_public_id)
    return [quality_read(r, collection) for r in repo.quality_reports(session, collection.id)]


def latest_quality(session: Session, collection_ids: list[int]) -> dict[int, QualityReport]:
    """The newest stored report per collection id (for the valuation package; no permission check)."""
    return repo.latest_quality(session, collection_ids)


__all__ = ["MODELS", "compute_quality", "import_fhir", "import_table", "latest_quality"]
