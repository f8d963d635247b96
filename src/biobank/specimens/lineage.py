"""Lineage in one action: aliquots and derivatives from a parent, pools from several sources."""

from __future__ import annotations

from sqlalchemy.orm import Session

from biobank import audit
from biobank.config import get_settings
from biobank.identity.principal import Principal
from biobank.institutions import service as institutions
from biobank.kit.db import flush_or_conflict
from biobank.kit.errors import Conflict, FieldError, Invalid
from biobank.kit.ids import new_public_ids
from biobank.specimens import repository as repo
from biobank.specimens import rules
from biobank.specimens.models import TERMINAL, Lineage, PoolSource, Specimen, Status
from biobank.specimens.schemas import AliquotRequest, PoolRequest
from biobank.specimens.service import UNIQUE_SPECIMEN, add_event, require_write, snapshot

DRAWABLE = frozenset({Status.RECEIVED, Status.PROCESSED, Status.STORED})


def _draw(parent: Specimen, amount: float, unit: str, field: str) -> float:
    """How much of the parent's quantity (in its unit) `amount` uses; refuses over-drawing."""
    if parent.quantity is None or parent.quantity_unit is None:
        raise Invalid.field(field, "the parent has no recorded quantity to draw from")
    try:
        used = rules.convert_quantity(amount, unit, parent.quantity_unit)
    except ValueError:
        raise Invalid.field(
            f"{field}_unit", f"cannot draw {unit} from a specimen measured in {parent.quantity_unit}", value=unit
        ) from None
    if used > parent.quantity + rules.EPSILON:
        raise Invalid.field(
            field,
            f"needs {used:g} {parent.quantity_unit} but only {parent.quantity:g} {parent.quantity_unit} remain",
            value=amount,
            name="OverDraw",
        )
    return used


def _child_barcodes(session: Session, parent: Specimen, count: int, given: list[str] | None) -> list[str]:
    if given is not None:
        if len(given) != count:
            raise Invalid.field("barcodes", f"give exactly {count} barcodes (one per child)")
        errors = [e for i, b in enumerate(given) for e in rules.check_barcode(b, field=f"barcodes.{i}")]
        if len(set(given)) != len(given):
            errors.append(FieldError(["barcodes"], "the barcodes repeat"))
        if errors:
            raise Invalid(errors)
        taken = repo.barcodes_taken(session, given)
        if taken:
            raise Conflict("barcodes already in use: " + ", ".join(sorted(taken)), name="DuplicateBarcode")
        return given
    existing = {c.barcode for c in repo.children_of(session, parent.id)}
    out: list[str] = []
    n = 1
    while len(out) < count:
        candidate = f"{parent.barcode}-{n:02d}"
        if candidate not in existing:
            out.append(candidate)
        n += 1
    taken = repo.barcodes_taken(session, out)
    if taken:
        raise Conflict(
            "generated barcodes already in use: " + ", ".join(sorted(taken)) + "; give barcodes",
            name="DuplicateBarcode",
        )
    return out


def aliquot(session: Session, principal: Principal, parent: Specimen, data: AliquotRequest) -> list[Specimen]:
    """Split a parent into N children placed row by row from a start position; all or nothing."""
    from biobank.storage import service as storage

    require_write(principal, parent)
    if Status(parent.status) not in DRAWABLE or parent.checked_out_at is not None:
        raise Conflict(f"a {parent.status} specimen cannot be aliquoted", name="WrongState")
    if data.lineage is Lineage.DERIVATIVE and data.sample_type is None:
        raise Invalid.field("sample_type", "a derivative needs its material type (e.g. DNA)")
    used = _draw(parent, data.quantity * data.count, data.quantity_unit, "quantity")
    errors = rules.check_concentration(data.concentration, data.concentration_unit)
    if errors:
        raise Invalid(errors)
    barcodes = _child_barcodes(session, parent, data.count, data.barcodes)
    slots: list[tuple[int, int]] = []
    box = None
    if data.box is not None:
        if not data.start:
            raise Invalid.field("start", "give the first position, e.g. A1")
        box = storage.get_box(session, principal, data.box, for_write=True)
        if box.biobank_id != parent.biobank_id:
            raise Invalid.field("box", "the box belongs to another biobank")
        slots = storage.consecutive_slots(session, box, data.start, data.count)
    public_ids = new_public_ids(session, get_settings().institution_code, "SPC", data.count)
    children = []
    for i in range(data.count):
        child = Specimen(
            public_id=public_ids[i],
            barcode=barcodes[i],
            biobank_id=parent.biobank_id,
            collection_id=parent.collection_id,
            donor_id=parent.donor_id,
            parent_id=parent.id,
            lineage=data.lineage,
            sample_type=data.sample_type or parent.sample_type,
            detailed_type=data.detailed_type or parent.detailed_type,
            sprec_code=parent.sprec_code if data.lineage is Lineage.ALIQUOT else None,
            container=parent.container,
            anatomical_site=parent.anatomical_site,
            diagnosis=parent.diagnosis,
            collected_at=parent.collected_at,
            received_at=parent.received_at,
            processed_at=parent.processed_at,
            frozen_at=parent.frozen_at,
            quantity=data.quantity,
            quantity_unit=data.quantity_unit,
            concentration=data.concentration,
            concentration_unit=data.concentration_unit,
            freeze_thaw_count=parent.freeze_thaw_count,
            storage_temperature=box.temperature if box is not None and box.temperature else parent.storage_temperature,
            status=Status.STORED if box is not None else Status.PROCESSED,
        )
        if box is not None:
            child.box_id, (child.row, child.col) = box.id, slots[i]
        children.append(child)
    session.add_all(children)
    before = snapshot(parent)
    parent.quantity = round(max(0.0, (parent.quantity or 0) - used), 9)
    flush_or_conflict(session, UNIQUE_SPECIMEN)
    if box is not None:
        storage.occupy(session, box.id, len(children))
    add_event(
        session,
        parent,
        principal,
        data.lineage.value,
        reason=data.reason,
        before=before,
        after={**snapshot(parent), "children": [c.public_id for c in children]},
    )
    for child in children:
        add_event(
            session,
            child,
            principal,
            "created",
            reason=f"{data.lineage.value} of {parent.public_id}",
            after={**snapshot(child), "parent": parent.public_id},
        )
    audit.record(
        session,
        principal,
        f"specimen.{data.lineage.value}",
        "specimen",
        [parent.public_id, *[c.public_id for c in children]],
        details={"count": data.count},
    )
    return children


def pool(session: Session, principal: Principal, data: PoolRequest) -> Specimen:
    """Make one pooled specimen from several sources of the same collection's biobank."""
    from biobank.storage import service as storage

    found = repo.by_refs(session, principal, data.sources)
    missing = [ref for ref in data.sources if ref not in found]
    if missing:
        raise Invalid([FieldError(["sources", data.sources.index(r)], "unknown specimen", value=r) for r in missing])
    sources = [found[r] for r in data.sources]
    if len({s.id for s in sources}) != len(sources):
        raise Invalid.field("sources", "a specimen is listed twice")
    collection = institutions.get_collection(session, data.collection)
    errors: list[FieldError] = list(rules.check_barcode(data.barcode))
    for i, source in enumerate(sources):
        require_write(principal, source)
        if source.biobank_id != collection.biobank_id:
            errors.append(FieldError(["sources", i], "belongs to another biobank than the collection"))
        if Status(source.status) in TERMINAL or Status(source.status) not in DRAWABLE:
            errors.append(FieldError(["sources", i], f"a {source.status} specimen cannot be pooled"))
    if errors:
        raise Invalid(errors)
    used = [_draw(s, data.quantity_each, data.quantity_unit, "quantity_each") for s in sources]
    if repo.barcodes_taken(session, [data.barcode]):
        raise Conflict(f"barcode {data.barcode!r} is already in use", name="DuplicateBarcode")
    box = slot = None
    if data.box is not None:
        box = storage.get_box(session, principal, data.box, for_write=True)
        (slot,) = storage.consecutive_slots(session, box, data.position or "", 1)
    types = {s.sample_type for s in sources}
    if data.sample_type is None and len(types) > 1:
        raise Invalid.field("sample_type", "the sources differ in material; say what the pool is")
    (public_id,) = new_public_ids(session, get_settings().institution_code, "SPC")
    pooled = Specimen(
        public_id=public_id,
        barcode=data.barcode,
        biobank_id=collection.biobank_id,
        collection_id=collection.id,
        donor_id=None,
        parent_id=None,
        lineage=Lineage.POOL,
        sample_type=data.sample_type or sources[0].sample_type,
        quantity=data.quantity_each * len(sources),
        quantity_unit=data.quantity_unit,
        status=Status.STORED if box is not None else Status.PROCESSED,
    )
    if box is not None and slot is not None:
        pooled.box_id, (pooled.row, pooled.col) = box.id, slot
    session.add(pooled)
    befores = [snapshot(s) for s in sources]
    for source, amount in zip(sources, used, strict=True):
        source.quantity = round(max(0.0, (source.quantity or 0) - amount), 9)
    flush_or_conflict(session, UNIQUE_SPECIMEN)
    for source, amount in zip(sources, used, strict=True):
        session.add(PoolSource(pool_id=pooled.id, source_id=source.id, quantity_used=amount))
    if box is not None:
        storage.occupy(session, box.id)
    for source, before in zip(sources, befores, strict=True):
        add_event(
            session,
            source,
            principal,
            "pooled",
            reason=data.reason,
            before=before,
            after={**snapshot(source), "pool": public_id},
        )
    add_event(
        session,
        pooled,
        principal,
        "created",
        reason=data.reason,
        after={**snapshot(pooled), "sources": [s.public_id for s in sources]},
    )
    session.flush()
    audit.record(session, principal, "specimen.pool", "specimen", [public_id, *[s.public_id for s in sources]])
    return pooled
