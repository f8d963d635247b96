"""Chain of custody in storage: moves, check-out and check-in."""

from __future__ import annotations

from sqlalchemy.orm import Session

from biobank import audit
from biobank.identity.principal import Principal
from biobank.kit.db import flush_or_conflict, utcnow
from biobank.kit.errors import Conflict, Invalid
from biobank.specimens.models import TERMINAL, Specimen, Status
from biobank.specimens.schemas import CheckRequest, MoveRequest
from biobank.specimens.service import UNIQUE_SPECIMEN, add_event, require_write, snapshot


def move(session: Session, principal: Principal, specimen: Specimen, data: MoveRequest) -> Specimen:
    """Move a specimen to a free position (or out of storage); occupancy counters follow."""
    from biobank.storage import service as storage

    require_write(principal, specimen)
    if Status(specimen.status) in TERMINAL:
        raise Conflict(f"a {specimen.status} specimen cannot be moved", name="WrongState")
    if specimen.checked_out_at is not None:
        raise Conflict("check the specimen in before moving it", name="CheckedOut")
    before = snapshot(specimen)
    if data.box is None:
        if specimen.box_id is None:
            raise Invalid.field("box", "the specimen is not in a box; give a box to move it to")
        if specimen.status == Status.STORED:
            raise Invalid.field("box", "a stored specimen must stay in a box; change its status first")
        storage.vacate(session, specimen.box_id)
        specimen.box_id = specimen.row = specimen.col = None
    else:
        if not data.position:
            raise Invalid.field("position", "give a position in the box, e.g. A1")
        box = storage.get_box(session, principal, data.box, for_write=True)
        if box.biobank_id != specimen.biobank_id:
            raise Invalid.field("box", "the box belongs to another biobank")
        (slot,) = storage.consecutive_slots(session, box, data.position, 1)
        if specimen.box_id is not None:
            storage.vacate(session, specimen.box_id)
        specimen.box_id, (specimen.row, specimen.col) = box.id, slot
        storage.occupy(session, box.id)
    flush_or_conflict(session, UNIQUE_SPECIMEN)
    add_event(session, specimen, principal, "moved", reason=data.reason, before=before, after=snapshot(specimen))
    audit.record(session, principal, "specimen.move", "specimen", [specimen.public_id])
    return specimen


def check_out(session: Session, principal: Principal, specimen: Specimen, data: CheckRequest) -> Specimen:
    """Take a stored specimen out temporarily; its position stays reserved for it."""
    require_write(principal, specimen)
    if specimen.checked_out_at is not None:
        raise Conflict("the specimen is already checked out", name="CheckedOut")
    if specimen.box_id is None or Status(specimen.status) not in (Status.STORED, Status.RESERVED):
        raise Conflict("only a specimen in storage can be checked out", name="WrongState")
    before = snapshot(specimen)
    specimen.checked_out_at = utcnow()
    session.flush()
    add_event(session, specimen, principal, "checked_out", reason=data.reason, before=before, after=snapshot(specimen))
    audit.record(session, principal, "specimen.check_out", "specimen", [specimen.public_id])
    return specimen


def check_in(session: Session, principal: Principal, specimen: Specimen, data: CheckRequest) -> Specimen:
    """Return a checked-out specimen to its position; a thaw adds to its freeze–thaw count."""
    require_write(principal, specimen)
    if specimen.checked_out_at is None:
        raise Conflict("the specimen is not checked out", name="NotCheckedOut")
    before = snapshot(specimen)
    specimen.checked_out_at = None
    if data.thawed:
        specimen.freeze_thaw_count += 1
    session.flush()
    add_event(session, specimen, principal, "checked_in", reason=data.reason, before=before, after=snapshot(specimen))
    audit.record(
        session, principal, "specimen.check_in", "specimen", [specimen.public_id], details={"thawed": data.thawed}
    )
    return specimen
