"""Specimen use cases: register, read, list, correct, change status, history, QC, pass rates."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from biobank import audit
from biobank.config import get_settings
from biobank.identity.principal import Principal
from biobank.institutions import service as institutions
from biobank.kit.db import flush_or_conflict
from biobank.kit.errors import Conflict, FieldError, Invalid, NotFound, NotPermitted
from biobank.kit.ids import new_public_ids
from biobank.kit.pagination import PageParams, paginate
from biobank.kit.validation import icd10_code
from biobank.specimens import repository as repo
from biobank.specimens import rules
from biobank.specimens.models import TERMINAL, QCResult, Specimen, SpecimenEvent, Status
from biobank.specimens.schemas import (
    EventRead,
    Location,
    PassRate,
    QCCreate,
    SpecimenBrief,
    SpecimenCreate,
    SpecimenRead,
    SpecimenUpdate,
    StatusChange,
)

SPECIMEN_SORTS = {
    "id": Specimen.id,
    "barcode": Specimen.barcode,
    "public_id": Specimen.public_id,
    "sample_type": Specimen.sample_type,
    "status": Specimen.status,
    "collected_at": Specimen.collected_at,
    "created_at": Specimen.created_at,
}
UNIQUE_SPECIMEN = {
    "uq_specimens_position": ("PositionOccupied", "that position is already occupied"),
    "specimens.box_id, specimens.row, specimens.col": ("PositionOccupied", "that position is already occupied"),
    "uq_specimens_barcode": ("DuplicateBarcode", "that barcode is already in use"),
    "specimens.barcode": ("DuplicateBarcode", "that barcode is already in use"),
}
TRACKED_FIELDS = (
    "status",
    "box_id",
    "row",
    "col",
    "quantity",
    "quantity_unit",
    "biobank_id",
    "collection_id",
    "checked_out_at",
    "freeze_thaw_count",
)


def snapshot(specimen: Specimen, fields: tuple[str, ...] = TRACKED_FIELDS) -> dict[str, Any]:
    """The tracked fields of a specimen, JSON-ready, for an event's before/after."""
    out: dict[str, Any] = {}
    for name in fields:
        value = getattr(specimen, name)
        out[name] = value.isoformat() if isinstance(value, datetime) else value
    return out


def add_event(
    session: Session,
    specimen: Specimen,
    principal: Principal,
    kind: str,
    *,
    reason: str = "",
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> None:
    """Write one chain-of-custody event (only the fields that changed)."""
    before = before or {}
    after = after or {}
    changed = {k for k in set(before) | set(after) if before.get(k) != after.get(k)}
    session.add(
        SpecimenEvent(
            specimen_id=specimen.id,
            actor=principal.public_id,
            kind=kind,
            reason=reason,
            before={k: before.get(k) for k in sorted(changed) if k in before},
            after={k: after.get(k) for k in sorted(changed) if k in after},
        )
    )


def require_write(principal: Principal, specimen: Specimen) -> None:
    """Managers and technicians of the specimen's biobank may change it."""
    if not principal.can_write(specimen.biobank_id):
        raise NotPermitted("only managers and technicians of the biobank change its specimens")


def get(
    session: Session,
    principal: Principal,
    ref: str,
    *,
    audit_read: bool = True,
    purpose: str | None = None,
) -> Specimen:
    """A specimen by public id or barcode, or 404 when the principal may not see it."""
    specimen = repo.by_ref(session, principal, ref)
    if specimen is None:
        raise NotFound(f"no specimen {ref!r}", name="SpecimenNotFound")
    if audit_read:
        audit.record(session, principal, "specimen.read", "specimen", [specimen.public_id], purpose=purpose)
    return specimen


def validate_new(session: Session, principal: Principal, data: SpecimenCreate) -> tuple[Any, Any, list[FieldError]]:
    """Check a new specimen against every rule; returns its collection, donor and the errors."""
    errors: list[FieldError] = []
    errors += rules.check_barcode(data.barcode)
    errors += rules.check_codes(
        diagnosis=data.diagnosis, anatomical_site=data.anatomical_site, sprec_code=data.sprec_code
    )
    errors += rules.check_times(
        {
            "collected_at": data.collected_at,
            "received_at": data.received_at,
            "processed_at": data.processed_at,
            "frozen_at": data.frozen_at,
        }
    )
    errors += rules.check_quantity(data.quantity, data.quantity_unit)
    errors += rules.check_concentration(data.concentration, data.concentration_unit)
    collection = None
    try:
        collection = institutions.get_collection(session, data.collection)
    except NotFound:
        errors.append(FieldError(["collection"], "unknown collection", value=data.collection))
    donor = None
    if data.donor:
        from biobank.donors import service as donors

        try:
            donor = donors.get(session, principal, data.donor, audit_read=False)
        except NotFound:
            errors.append(FieldError(["donor"], "unknown donor", value=data.donor))
        if donor is not None and collection is not None and donor.biobank_id != collection.biobank_id:
            errors.append(FieldError(["donor"], "the donor belongs to another biobank", value=data.donor))
    if data.status in TERMINAL or data.status is Status.RESERVED:
        errors.append(
            FieldError(
                ["status"], "a new specimen starts as collected, received, processed or stored", value=data.status.value
            )
        )
    if data.status is Status.STORED and data.placement is None:
        errors.append(FieldError(["placement"], "a stored specimen needs a box and position"))
    return collection, donor, errors


def register(session: Session, principal: Principal, data: SpecimenCreate) -> Specimen:
    """Register a primary specimen, optionally placed in a box; derives its SPREC code when possible."""
    collection, donor, errors = validate_new(session, principal, data)
    if collection is not None and not principal.can_write(collection.biobank_id):
        if not principal.can_read(collection.biobank_id):
            raise Invalid.field("collection", "unknown collection", value=data.collection)
        raise NotPermitted("only managers and technicians register specimens")
    if not errors and repo.barcodes_taken(session, [data.barcode]):
        raise Conflict(f"barcode {data.barcode!r} is already in use", name="DuplicateBarcode")
    box = slot = None
    if data.placement is not None and collection is not None:
        from biobank.storage import service as storage

        try:
            box = storage.get_box(session, principal, data.placement.box, for_write=True)
            (slot,) = storage.consecutive_slots(session, box, data.placement.position, 1)
        except Invalid as exc:
            errors += [FieldError(["placement", *e["loc"]], e["msg"]) for e in exc.errors]
        except NotFound:
            errors.append(FieldError(["placement", "box"], "unknown box", value=data.placement.box))
        if box is not None and collection is not None and box.biobank_id != collection.biobank_id:
            errors.append(FieldError(["placement", "box"], "the box belongs to another biobank"))
    if errors:
        raise Invalid(errors)
    assert collection is not None
    values = data.model_dump(exclude={"collection", "donor", "placement"})
    if values["diagnosis"]:
        values["diagnosis"] = icd10_code(values["diagnosis"])
    if values["anatomical_site"]:
        values["anatomical_site"] = rules.normalise_topography(values["anatomical_site"])
    if not values["sprec_code"]:
        values["sprec_code"] = rules.derive_sprec(
            sample_type=data.sample_type.value,
            container=data.container,
            collected_at=data.collected_at,
            processed_at=data.processed_at,
            frozen_at=data.frozen_at,
        )
    else:
        values["sprec_code"] = values["sprec_code"].strip().upper()
    (public_id,) = new_public_ids(session, get_settings().institution_code, "SPC")
    specimen = Specimen(
        public_id=public_id,
        biobank_id=collection.biobank_id,
        collection_id=collection.id,
        donor_id=donor.id if donor else None,
        **values,
    )
    if box is not None and slot is not None:
        specimen.box_id, (specimen.row, specimen.col) = box.id, slot
    session.add(specimen)
    flush_or_conflict(session, UNIQUE_SPECIMEN)
    if box is not None:
        from biobank.storage import service as storage

        storage.occupy(session, box.id)
    add_event(session, specimen, principal, "created", after=snapshot(specimen))
    audit.record(session, principal, "specimen.create", "specimen", [public_id])
    return specimen


def list_page(
    session: Session,
    principal: Principal,
    params: PageParams,
    *,
    collection: str | None = None,
    sample_type: str | None = None,
    status: str | None = None,
    donor: str | None = None,
    barcode_prefix: str | None = None,
) -> tuple[list[Specimen], int]:
    """A filtered, sorted page of the specimens the principal may see; the query is audited."""
    params = params.validated(SPECIMEN_SORTS, get_settings().page_size_max)
    if collection:
        target = institutions.get_collection(session, collection)
        # A collection lies in one biobank: once it is visible, the biobank scope adds nothing, and
        # leaving it out lets (collection, type, status, id) serve both the page and the count.
        stmt = repo.in_collection(target.id) if principal.can_read(target.biobank_id) else repo.nothing()
    else:
        stmt = repo.visible(principal)
    if sample_type:
        stmt = stmt.where(Specimen.sample_type == sample_type)
    if status:
        try:
            stmt = stmt.where(Specimen.status == Status(status))
        except ValueError:
            raise Invalid.field("status", "unknown status", value=status) from None
    if donor:
        from biobank.donors import service as donors

        stmt = stmt.where(Specimen.donor_id == donors.get(session, principal, donor, audit_read=False).id)
    if barcode_prefix:
        stmt = stmt.where(Specimen.barcode.startswith(barcode_prefix, autoescape=True))
    rows, total = paginate(session, stmt, params, SPECIMEN_SORTS, "-id")
    audit.record(
        session,
        principal,
        "specimen.list",
        "specimen",
        [],
        details=audit.as_details(
            {
                "collection": collection,
                "sample_type": sample_type,
                "status": status,
                "donor": donor,
                "barcode_prefix": barcode_prefix,
                "page": params.page,
                "returned": len(rows),
            }
        ),
    )
    return rows, total


def update(session: Session, principal: Principal, specimen: Specimen, data: SpecimenUpdate) -> Specimen:
    """Correct recorded facts; every change is an event with before and after."""
    require_write(principal, specimen)
    changes = data.model_dump(exclude_unset=True, exclude={"reason"})
    merged = {name: changes.get(name, getattr(specimen, name)) for name in rules.TIME_ORDER}
    errors = rules.check_times(merged)
    errors += rules.check_codes(
        diagnosis=changes.get("diagnosis"),
        anatomical_site=changes.get("anatomical_site"),
        sprec_code=changes.get("sprec_code"),
    )
    errors += rules.check_quantity(
        changes.get("quantity", specimen.quantity), changes.get("quantity_unit", specimen.quantity_unit)
    )
    errors += rules.check_concentration(
        changes.get("concentration", specimen.concentration),
        changes.get("concentration_unit", specimen.concentration_unit),
    )
    if errors:
        raise Invalid(errors)
    if changes.get("diagnosis"):
        changes["diagnosis"] = icd10_code(changes["diagnosis"])
    if changes.get("anatomical_site"):
        changes["anatomical_site"] = rules.normalise_topography(changes["anatomical_site"])
    fields = tuple(changes)
    before = snapshot(specimen, fields)
    for key, value in changes.items():
        setattr(specimen, key, value)
    session.flush()
    add_event(
        session, specimen, principal, "updated", reason=data.reason, before=before, after=snapshot(specimen, fields)
    )
    audit.record(
        session,
        principal,
        "specimen.update",
        "specimen",
        [specimen.public_id],
        details={"fields": ",".join(sorted(fields))},
    )
    return specimen


def change_status(session: Session, principal: Principal, specimen: Specimen, data: StatusChange) -> Specimen:
    """Move along the lifecycle; only allowed transitions. Leaving storage for good frees the position."""
    require_write(principal, specimen)
    errors = rules.check_transition(Status(specimen.status), data.status)
    if errors:
        raise Invalid(errors, name="IllegalTransition")
    if data.status is Status.STORED and specimen.box_id is None:
        raise Invalid.field("status", "place the specimen in a box before marking it stored")
    before = snapshot(specimen)
    specimen.status = data.status
    if data.status in TERMINAL and specimen.box_id is not None:
        from biobank.storage import service as storage

        storage.vacate(session, specimen.box_id)
        specimen.box_id = specimen.row = specimen.col = None
    session.flush()
    add_event(session, specimen, principal, "status", reason=data.reason, before=before, after=snapshot(specimen))
    audit.record(
        session,
        principal,
        "specimen.status",
        "specimen",
        [specimen.public_id],
        details={"from": before["status"], "to": data.status.value},
    )
    return specimen


def history(session: Session, principal: Principal, specimen: Specimen) -> list[EventRead]:
    """The specimen's chain of custody, oldest first."""
    audit.record(session, principal, "specimen.history.read", "specimen", [specimen.public_id])
    return [EventRead.model_validate(e) for e in repo.events_of(session, specimen.id)]


def add_qc(session: Session, principal: Principal, specimen: Specimen, data: QCCreate) -> QCResult:
    """Attach a QC result (test, method, value, pass/fail, date)."""
    require_write(principal, specimen)
    errors = rules.check_times({"collected_at": specimen.collected_at, "frozen_at": None})
    if specimen.collected_at and data.tested_at < specimen.collected_at:
        errors.append(FieldError(["tested_at"], "is before the specimen was collected"))
    if errors:
        raise Invalid(errors)
    result = QCResult(specimen_id=specimen.id, recorded_by=principal.public_id, **data.model_dump())
    session.add(result)
    session.flush()
    add_event(session, specimen, principal, "qc", after={"test": data.test, "passed": data.passed})
    audit.record(
        session,
        principal,
        "specimen.qc.create",
        "specimen",
        [specimen.public_id],
        details={"test": data.test, "passed": data.passed},
    )
    return result


def qc_results(session: Session, specimen: Specimen) -> list[QCResult]:
    """QC results of a specimen, oldest first."""
    return repo.qc_of(session, specimen.id)


def pass_rate(session: Session, principal: Principal, collection_public_id: str) -> PassRate:
    """Share of tested specimens of a collection whose QC results all passed."""
    collection = institutions.get_collection(session, collection_public_id)
    if not principal.can_read(collection.biobank_id):
        raise NotFound(f"no collection {collection_public_id!r}", name="CollectionNotFound")
    tested, passed = repo.pass_rates(session, [collection.id]).get(collection.id, (0, 0))
    return PassRate(
        collection=collection.public_id,
        tested=tested,
        passed=passed,
        rate=round(passed / tested, 4) if tested else None,
    )


def to_read(session: Session, specimens: list[Specimen]) -> list[SpecimenRead]:
    """API views of specimens, with their references resolved in a fixed number of queries."""
    from biobank.donors import service as donors
    from biobank.storage import service as storage

    collections = institutions.collection_refs(session, sorted({s.collection_id for s in specimens}))
    # A specimen belongs to its collection's biobank, so the collection's join gives the code.
    biobank_codes = {biobank_id: code for _, biobank_id, code in collections.values()}
    stray = sorted({s.biobank_id for s in specimens} - biobank_codes.keys())
    if stray:
        biobank_codes |= institutions.biobank_codes(session, stray)
    donor_ids = sorted({s.donor_id for s in specimens if s.donor_id})
    donor_public = donors.public_ids_by_id(session, donor_ids)
    parents = repo.public_ids_by_id(session, sorted({s.parent_id for s in specimens if s.parent_id}))
    boxes = storage.boxes_by_ids(session, sorted({s.box_id for s in specimens if s.box_id}))
    out = []
    for s in specimens:
        location = None
        if s.box_id is not None and s.row is not None and s.col is not None:
            box = boxes[s.box_id]
            location = Location(box=box.public_id, path=box.path, position=storage.position_label(box, s.row, s.col))
        out.append(
            SpecimenRead.model_validate(
                {
                    **{k: getattr(s, k) for k in SpecimenRead.model_fields if hasattr(s, k)},
                    "biobank": biobank_codes[s.biobank_id],
                    "collection": collections[s.collection_id][0],
                    "donor": donor_public.get(s.donor_id) if s.donor_id else None,
                    "parent": parents.get(s.parent_id) if s.parent_id else None,
                    "location": location,
                    "checked_out": s.checked_out_at is not None,
                }
            )
        )
    return out


def specimens_in_box(session: Session, box_id: int) -> list[SpecimenBrief]:
    """The specimens in a box, row by row (callers check the box is visible)."""
    return [SpecimenBrief.model_validate(s) for s in repo.in_box(session, box_id)]


def dashboard_figures(session: Session, principal: Principal) -> dict[str, int]:
    """Counts for the home page."""
    by_status = repo.count_by_status(session, principal)
    return {
        "specimens": sum(by_status.values()),
        "stored": by_status.get(Status.STORED.value, 0),
        "reserved": by_status.get(Status.RESERVED.value, 0),
    }


def family(session: Session, specimen: Specimen) -> tuple[list[SpecimenBrief], list[SpecimenBrief]]:
    """The specimen's children (aliquots, derivatives) and, for a pool, its sources (same biobank)."""
    children = [SpecimenBrief.model_validate(s) for s in repo.children_of(session, specimen.id)]
    sources = [SpecimenBrief.model_validate(s) for s in repo.pool_sources_of(session, specimen.id)]
    return children, sources


def figures_by_type(session: Session, principal: Principal) -> dict[str, dict[str, int]]:
    """Visible specimens counted by status (in lifecycle order) and by material, for the home page charts."""
    by_status = repo.count_by_status(session, principal)
    return {
        "status": {s.value: by_status[s.value] for s in Status if by_status.get(s.value)},
        "material": repo.count_by_type(session, principal),
    }


# -- for the consent package (eligibility, withdrawal) ----------------------------------------------------


def consent_scope(
    *,
    specimen_ids: list[int] | None = None,
    collection_ids: list[int] | None = None,
    biobank_id: int | None = None,
    sample_types: list[str] | None = None,
    statuses: list[str] | None = None,
    diagnosis_codes: list[str] | None = None,
    diagnosis_categories: list[str] | None = None,
) -> Any:
    """Specimens matching search criteria as a subquery of (id, donor_id, collection_id, biobank_id).

    Unscoped: callers aggregate over it (counts) or restrict it to what the principal may see.
    Diagnoses match a code and its sub-codes; categories (three characters) match every sub-code.
    """
    from sqlalchemy import func, or_, select

    stmt = select(Specimen.id, Specimen.donor_id, Specimen.collection_id, Specimen.biobank_id)
    if specimen_ids is not None:
        stmt = stmt.where(Specimen.id.in_(specimen_ids))
    if collection_ids is not None:
        stmt = stmt.where(Specimen.collection_id.in_(collection_ids))
    if biobank_id is not None:
        stmt = stmt.where(Specimen.biobank_id == biobank_id)
    if sample_types:
        stmt = stmt.where(Specimen.sample_type.in_(sample_types))
    if statuses:
        stmt = stmt.where(Specimen.status.in_(statuses))
    if diagnosis_codes or diagnosis_categories:
        terms = []
        for code in diagnosis_codes or []:
            terms += [Specimen.diagnosis == code, Specimen.diagnosis.startswith(code + ".", autoescape=True)]
        if diagnosis_categories:
            terms.append(func.substr(Specimen.diagnosis, 1, 3).in_(diagnosis_categories))
        stmt = stmt.where(or_(*terms))
    return stmt.subquery("specimen_scope")


def consent_columns() -> tuple[Any, Any]:
    """The specimen columns a consent filter is written against: (donor_id, collection_id)."""
    return Specimen.donor_id, Specimen.collection_id


def of_donor(session: Session, donor_id: int) -> list[Specimen]:
    """Every specimen of a donor (aliquots and derivatives included), unscoped: callers check the biobank."""
    from sqlalchemy import select

    return list(session.scalars(select(Specimen).where(Specimen.donor_id == donor_id).order_by(Specimen.id)))


def by_ids(session: Session, ids: list[int]) -> dict[int, Specimen]:
    """Specimens by row id, unscoped (callers check the biobank)."""
    from sqlalchemy import select

    if not ids:
        return {}
    return {s.id: s for s in session.scalars(select(Specimen).where(Specimen.id.in_(ids)))}


def last_status_events(session: Session, specimen_ids: list[int], status: Status) -> dict[int, SpecimenEvent]:
    """Per specimen, the latest custody event that moved it to `status` (e.g. when and why it was distributed)."""
    from sqlalchemy import select

    if not specimen_ids:
        return {}
    stmt = (
        select(SpecimenEvent)
        .where(SpecimenEvent.specimen_id.in_(specimen_ids), SpecimenEvent.kind.in_(("status", "created")))
        .order_by(SpecimenEvent.id)
    )
    out: dict[int, SpecimenEvent] = {}
    for event in session.scalars(stmt):
        if (event.after or {}).get("status") == status.value:
            out[event.specimen_id] = event
    return out


def public_ids_of_donor(session: Session, donor_id: int) -> list[str]:
    """Public ids of a donor's specimens (aliquots and derivatives included) and of pools made from them."""
    from sqlalchemy import select

    from biobank.specimens.models import PoolSource

    own = select(Specimen.id).where(Specimen.donor_id == donor_id)
    pools = select(PoolSource.pool_id).where(PoolSource.source_id.in_(own))
    stmt = select(Specimen.public_id).where(Specimen.id.in_(own) | Specimen.id.in_(pools)).order_by(Specimen.id)
    return list(session.scalars(stmt))


def visible_by_refs(session: Session, principal: Principal, refs: list[str]) -> dict[str, Specimen]:
    """Specimens the principal may see, by public id or barcode (keyed by the ref given; unknown refs absent)."""
    out: dict[str, Specimen] = {}
    for i in range(0, len(refs), 900):
        out.update(repo.by_refs(session, principal, refs[i : i + 900]))
    return out


# -- for the catalogue, clinical, omics and interop packages (aggregates and exports) ---------------------
# Specimens that are still held (not distributed, consumed, destroyed or lost) are what the catalogue counts.
HELD_STATUSES = tuple(s.value for s in Status if s not in TERMINAL)


def _age_at_collection(birth_year: Any) -> Any:
    from sqlalchemy import Integer, cast, extract

    return cast(extract("year", Specimen.collected_at), Integer) - birth_year


def count_index_select(collection_ids: list[int] | None, demographics: Any) -> Any:
    """Held specimens grouped by (collection, donor, material, diagnosis, temperature, donor sex, age at collection).

    Columns: collection_id, donor_id, sample_type, diagnosis ("" for none), storage_temperature ("" for none),
    sex ("Unknown" without a donor), age (years, NULL when unknown), n. The catalogue copies it into its count
    index with one INSERT … SELECT, so no row passes through Python.
    """
    from sqlalchemy import func, select

    age = _age_at_collection(demographics.c.birth_year)
    columns = (
        Specimen.collection_id,
        Specimen.donor_id,
        Specimen.sample_type,
        func.coalesce(Specimen.diagnosis, ""),
        func.coalesce(Specimen.storage_temperature, ""),
        func.coalesce(demographics.c.sex, "Unknown"),
        age,
    )
    stmt = (
        select(*columns, func.count())
        .select_from(Specimen)
        .outerjoin(demographics, demographics.c.donor_id == Specimen.donor_id)
        .where(Specimen.status.in_(HELD_STATUSES))
        .group_by(*columns)
    )
    if collection_ids is not None:
        stmt = stmt.where(Specimen.collection_id.in_(collection_ids))
    return stmt


def collection_totals(session: Session, collection_ids: list[int] | None) -> dict[int, tuple[int, int, list[str]]]:
    """Per collection: held specimens, distinct donors and the storage temperatures present."""
    from sqlalchemy import func, select

    totals = select(Specimen.collection_id, func.count(), func.count(Specimen.donor_id.distinct())).where(
        Specimen.status.in_(HELD_STATUSES)
    )
    temps = (
        select(Specimen.collection_id, Specimen.storage_temperature)
        .where(Specimen.status.in_(HELD_STATUSES), Specimen.storage_temperature.is_not(None))
        .distinct()
    )
    if collection_ids is not None:
        totals = totals.where(Specimen.collection_id.in_(collection_ids))
        temps = temps.where(Specimen.collection_id.in_(collection_ids))
    out: dict[int, tuple[int, int, list[str]]] = {}
    for cid, samples, donors in session.execute(totals.group_by(Specimen.collection_id)):
        out[cid] = (int(samples), int(donors), [])
    for cid, temperature in session.execute(temps):
        if cid in out:
            out[cid][2].append(str(temperature))
    return out


def last_changes(session: Session) -> dict[int, datetime]:
    """Per collection, when one of its specimens last changed (scheduled facts refreshes compare with it)."""
    from sqlalchemy import func, select

    stmt = select(Specimen.collection_id, func.max(Specimen.updated_at)).group_by(Specimen.collection_id)
    return {cid: at for cid, at in session.execute(stmt) if at is not None}


def held_counts(session: Session, collection_ids: list[int]) -> dict[int, int]:
    """Held specimens per collection."""
    return {cid: n for cid, (n, _, _) in collection_totals(session, collection_ids).items()}


def collection_ids_of(session: Session, specimen_ids: list[int]) -> dict[int, int]:
    """Collection row id per specimen row id."""
    from sqlalchemy import select

    out: dict[int, int] = {}
    for i in range(0, len(specimen_ids), 900):
        part = specimen_ids[i : i + 900]
        out.update(dict(session.execute(select(Specimen.id, Specimen.collection_id).where(Specimen.id.in_(part)))))
    return out


def first_collection_dates(session: Session, collection_id: int) -> dict[int, datetime | None]:
    """Per donor with held specimens in a collection: the earliest collection time (None if none recorded)."""
    from sqlalchemy import func, select

    stmt = (
        select(Specimen.donor_id, func.min(Specimen.collected_at))
        .where(
            Specimen.collection_id == collection_id,
            Specimen.donor_id.is_not(None),
            Specimen.status.in_(HELD_STATUSES),
        )
        .group_by(Specimen.donor_id)
    )
    return {donor_id: at for donor_id, at in session.execute(stmt) if donor_id is not None}


def visible_batch(
    session: Session,
    principal: Principal,
    *,
    collection_id: int | None = None,
    biobank_id: int | None = None,
    after_id: int = 0,
    limit: int = 500,
) -> list[Specimen]:
    """Specimens the principal may see, in id order after `after_id` (keyset paging for exports)."""
    stmt = repo.visible(principal).where(Specimen.id > after_id)
    if collection_id is not None:
        stmt = stmt.where(Specimen.collection_id == collection_id)
    if biobank_id is not None:
        stmt = stmt.where(Specimen.biobank_id == biobank_id)
    return list(session.scalars(stmt.order_by(Specimen.id).limit(limit)))


def events_of_specimens(session: Session, specimen_ids: list[int]) -> dict[int, list[SpecimenEvent]]:
    """Chain-of-custody events per specimen id, oldest first (for exports)."""
    from sqlalchemy import select

    out: dict[int, list[SpecimenEvent]] = {i: [] for i in specimen_ids}
    for i in range(0, len(specimen_ids), 900):
        part = specimen_ids[i : i + 900]
        stmt = select(SpecimenEvent).where(SpecimenEvent.specimen_id.in_(part)).order_by(SpecimenEvent.id)
        for event in session.scalars(stmt):
            out[event.specimen_id].append(event)
    return out


def by_refs_in_biobank(session: Session, biobank_id: int, refs: list[str]) -> dict[str, Specimen]:
    """Specimens of one biobank by public id or barcode (keyed by the ref given; unknown refs absent)."""
    from sqlalchemy import or_, select

    out: dict[str, Specimen] = {}
    for i in range(0, len(refs), 450):
        part = refs[i : i + 450]
        stmt = select(Specimen).where(
            Specimen.biobank_id == biobank_id, or_(Specimen.public_id.in_(part), Specimen.barcode.in_(part))
        )
        for s in session.scalars(stmt):
            out[s.public_id] = s
            out[s.barcode] = s
    return {r: out[r] for r in refs if r in out}


def collections_with_donors(session: Session, donor_ids: Any, collection_ids: list[int] | None = None) -> set[int]:
    """Collections holding a specimen of one of the donors (`donor_ids`: a list or a subquery of ids)."""
    from sqlalchemy import select

    stmt = select(Specimen.collection_id).where(Specimen.donor_id.in_(donor_ids)).distinct()
    if collection_ids is not None:
        stmt = stmt.where(Specimen.collection_id.in_(collection_ids))
    return set(session.scalars(stmt))


def public_ids_of(session: Session, specimen_ids: list[int]) -> dict[int, str]:
    """Public ids by specimen row id (read schemas of other packages)."""
    out: dict[int, str] = {}
    for i in range(0, len(specimen_ids), 900):
        out.update(repo.public_ids_by_id(session, specimen_ids[i : i + 900]))
    return out
