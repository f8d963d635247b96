"""Queries over consent tables. Callers (the consent services) check the principal's biobank."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Case, ColumnElement, and_, case, func, or_, select, text, update
from sqlalchemy.orm import Session

from biobank.consent.models import (
    CollectionAcceptedVersion,
    ConsentForm,
    ConsentFormVersion,
    ConsentOption,
    ConsentProfileRow,
    ConsentScan,
    ConsentStatus,
    DestructionTask,
    DistributedFollowUp,
    DonorAccount,
    DonorConsent,
    DonorInvitation,
    Notification,
    TaskStatus,
    Withdrawal,
)

# The partial index uq_donor_consents_current has exactly this predicate; SQLite uses a partial index only
# when the query repeats it word for word (SQLAlchemy would render `is_current IS 1`).
CURRENT = text("donor_consents.is_current")

# -- forms ------------------------------------------------------------------------------------------------


def form_by_public_id(session: Session, public_id: str) -> ConsentForm | None:
    return session.scalars(select(ConsentForm).where(ConsentForm.public_id == public_id)).first()


def form_by_code(session: Session, biobank_id: int, code: str) -> ConsentForm | None:
    return session.scalars(
        select(ConsentForm).where(ConsentForm.biobank_id == biobank_id, ConsentForm.code == code)
    ).first()


def forms_of(session: Session, biobank_ids: Sequence[int] | None) -> list[ConsentForm]:
    stmt = select(ConsentForm).order_by(ConsentForm.biobank_id, ConsentForm.code)
    if biobank_ids is not None:
        stmt = stmt.where(ConsentForm.biobank_id.in_(list(biobank_ids)))
    return list(session.scalars(stmt))


def forms_by_ids(session: Session, ids: Sequence[int]) -> dict[int, ConsentForm]:
    if not ids:
        return {}
    return {f.id: f for f in session.scalars(select(ConsentForm).where(ConsentForm.id.in_(list(ids))))}


def versions_of(session: Session, form_ids: Sequence[int]) -> dict[int, list[ConsentFormVersion]]:
    out: dict[int, list[ConsentFormVersion]] = {i: [] for i in form_ids}
    if form_ids:
        stmt = (
            select(ConsentFormVersion)
            .where(ConsentFormVersion.form_id.in_(list(form_ids)))
            .order_by(ConsentFormVersion.form_id, ConsentFormVersion.number)
        )
        for version in session.scalars(stmt):
            out[version.form_id].append(version)
    return out


def version_by_public_id(session: Session, public_id: str) -> ConsentFormVersion | None:
    return session.scalars(select(ConsentFormVersion).where(ConsentFormVersion.public_id == public_id)).first()


def versions_by_ids(session: Session, ids: Sequence[int]) -> dict[int, ConsentFormVersion]:
    if not ids:
        return {}
    stmt = select(ConsentFormVersion).where(ConsentFormVersion.id.in_(list(ids)))
    return {v.id: v for v in session.scalars(stmt)}


def versions_by_public_ids(session: Session, public_ids: Sequence[str]) -> dict[str, ConsentFormVersion]:
    if not public_ids:
        return {}
    stmt = select(ConsentFormVersion).where(ConsentFormVersion.public_id.in_(list(public_ids)))
    return {v.public_id: v for v in session.scalars(stmt)}


def latest_version(session: Session, form_id: int) -> ConsentFormVersion | None:
    stmt = select(ConsentFormVersion).where(ConsentFormVersion.form_id == form_id)
    return session.scalars(stmt.order_by(ConsentFormVersion.number.desc()).limit(1)).first()


def options_of(session: Session, version_ids: Sequence[int]) -> dict[int, list[ConsentOption]]:
    out: dict[int, list[ConsentOption]] = {i: [] for i in version_ids}
    if version_ids:
        stmt = (
            select(ConsentOption)
            .where(ConsentOption.version_id.in_(list(version_ids)))
            .order_by(ConsentOption.version_id, ConsentOption.position)
        )
        for option in session.scalars(stmt):
            out[option.version_id].append(option)
    return out


def accepted_versions(session: Session, collection_ids: Sequence[int]) -> dict[int, set[int]]:
    out: dict[int, set[int]] = {}
    if collection_ids:
        stmt = select(CollectionAcceptedVersion).where(
            CollectionAcceptedVersion.collection_id.in_(list(collection_ids))
        )
        for row in session.scalars(stmt):
            out.setdefault(row.collection_id, set()).add(row.version_id)
    return out


def all_accepted_versions(session: Session) -> dict[int, set[int]]:
    out: dict[int, set[int]] = {}
    for row in session.scalars(select(CollectionAcceptedVersion)):
        out.setdefault(row.collection_id, set()).add(row.version_id)
    return out


def set_accepted_versions(session: Session, collection_id: int, version_ids: Sequence[int]) -> None:
    for row in session.scalars(
        select(CollectionAcceptedVersion).where(CollectionAcceptedVersion.collection_id == collection_id)
    ):
        session.delete(row)
    session.flush()
    session.add_all(CollectionAcceptedVersion(collection_id=collection_id, version_id=v) for v in version_ids)


# -- profiles ---------------------------------------------------------------------------------------------


def profile_rows(session: Session, keys: Sequence[str]) -> dict[str, ConsentProfileRow]:
    if not keys:
        return {}
    return {p.key: p for p in session.scalars(select(ConsentProfileRow).where(ConsentProfileRow.key.in_(list(keys))))}


# -- records ----------------------------------------------------------------------------------------------


def current_record(session: Session, donor_id: int) -> DonorConsent | None:
    return session.scalars(select(DonorConsent).where(DonorConsent.donor_id == donor_id, CURRENT)).first()


def records_of(session: Session, donor_id: int) -> list[DonorConsent]:
    stmt = select(DonorConsent).where(DonorConsent.donor_id == donor_id).order_by(DonorConsent.version.desc())
    return list(session.scalars(stmt))


def record_by_public_id(session: Session, public_id: str) -> DonorConsent | None:
    return session.scalars(select(DonorConsent).where(DonorConsent.public_id == public_id)).first()


def records_by_ids(session: Session, ids: Sequence[int]) -> dict[int, DonorConsent]:
    if not ids:
        return {}
    return {r.id: r for r in session.scalars(select(DonorConsent).where(DonorConsent.id.in_(list(ids))))}


def next_version(session: Session, donor_id: int) -> int:
    latest = session.execute(
        select(func.max(DonorConsent.version)).where(DonorConsent.donor_id == donor_id)
    ).scalar_one_or_none()
    return int(latest or 0) + 1


def retire_current(session: Session, donor_id: int) -> None:
    """Mark the current record superseded (before its successor is inserted: one current per donor)."""
    session.execute(
        update(DonorConsent)
        .where(DonorConsent.donor_id == donor_id, CURRENT)
        .values(
            is_current=False,
            status=case(
                (DonorConsent.status == ConsentStatus.WITHDRAWN.value, ConsentStatus.WITHDRAWN.value),
                else_=ConsentStatus.SUPERSEDED.value,
            ),
        )
        .execution_options(synchronize_session="fetch")
    )


def scan_by_public_id(session: Session, public_id: str) -> ConsentScan | None:
    return session.scalars(select(ConsentScan).where(ConsentScan.public_id == public_id)).first()


def scans_by_ids(session: Session, ids: Sequence[int]) -> dict[int, ConsentScan]:
    if not ids:
        return {}
    return {s.id: s for s in session.scalars(select(ConsentScan).where(ConsentScan.id.in_(list(ids))))}


def current_profile_keys(session: Session) -> list[str]:
    """The distinct profile keys of current, active records (what eligibility filters must decide)."""
    stmt = select(DonorConsent.profile_key).where(CURRENT, DonorConsent.status == ConsentStatus.ACTIVE.value).distinct()
    return list(session.scalars(stmt))


# -- eligibility ------------------------------------------------------------------------------------------


def outside_validity(now: datetime) -> ColumnElement[bool]:
    """Whether the record is not valid at `now` (not yet, or no longer)."""
    return or_(
        DonorConsent.valid_from > now,
        and_(DonorConsent.valid_until.is_not(None), DonorConsent.valid_until <= now),
    )


def state_column(now: datetime) -> Case[Any]:
    """'A' (active and valid now), 'W' (withdrawn), 'E' (outside its validity), NULL when no consent."""
    return case(
        (DonorConsent.id.is_(None), None),
        (DonorConsent.status == ConsentStatus.WITHDRAWN.value, "W"),
        (
            or_(
                DonorConsent.valid_from > now,
                and_(DonorConsent.valid_until.is_not(None), DonorConsent.valid_until <= now),
            ),
            "E",
        ),
        else_="A",
    )


# -- withdrawal -------------------------------------------------------------------------------------------


def withdrawal_of_record(session: Session, consent_id: int) -> Withdrawal | None:
    return session.scalars(select(Withdrawal).where(Withdrawal.consent_id == consent_id)).first()


def withdrawals_by_consent(session: Session, consent_ids: Sequence[int]) -> dict[int, Withdrawal]:
    if not consent_ids:
        return {}
    stmt = select(Withdrawal).where(Withdrawal.consent_id.in_(list(consent_ids)))
    return {w.consent_id: w for w in session.scalars(stmt)}


def withdrawal_by_public_id(session: Session, public_id: str) -> Withdrawal | None:
    return session.scalars(select(Withdrawal).where(Withdrawal.public_id == public_id)).first()


def withdrawals_by_ids(session: Session, ids: Sequence[int]) -> dict[int, Withdrawal]:
    if not ids:
        return {}
    return {w.id: w for w in session.scalars(select(Withdrawal).where(Withdrawal.id.in_(list(ids))))}


def tasks_of(session: Session, withdrawal_ids: Sequence[int]) -> list[DestructionTask]:
    if not withdrawal_ids:
        return []
    stmt = select(DestructionTask).where(DestructionTask.withdrawal_id.in_(list(withdrawal_ids)))
    return list(session.scalars(stmt.order_by(DestructionTask.id)))


def follow_ups_of(session: Session, withdrawal_ids: Sequence[int]) -> list[DistributedFollowUp]:
    if not withdrawal_ids:
        return []
    stmt = select(DistributedFollowUp).where(DistributedFollowUp.withdrawal_id.in_(list(withdrawal_ids)))
    return list(session.scalars(stmt.order_by(DistributedFollowUp.id)))


def tasks(session: Session, biobank_ids: Sequence[int] | None, status: TaskStatus | None) -> list[DestructionTask]:
    stmt = select(DestructionTask).order_by(DestructionTask.id)
    if biobank_ids is not None:
        stmt = stmt.where(DestructionTask.biobank_id.in_(list(biobank_ids)))
    if status is not None:
        stmt = stmt.where(DestructionTask.status == status.value)
    return list(session.scalars(stmt))


def follow_ups(
    session: Session, biobank_ids: Sequence[int] | None, status: TaskStatus | None
) -> list[DistributedFollowUp]:
    stmt = select(DistributedFollowUp).order_by(DistributedFollowUp.id)
    if biobank_ids is not None:
        stmt = stmt.where(DistributedFollowUp.biobank_id.in_(list(biobank_ids)))
    if status is not None:
        stmt = stmt.where(DistributedFollowUp.status == status.value)
    return list(session.scalars(stmt))


def task_by_public_id(session: Session, public_id: str) -> DestructionTask | None:
    return session.scalars(select(DestructionTask).where(DestructionTask.public_id == public_id)).first()


def follow_up_by_public_id(session: Session, public_id: str) -> DistributedFollowUp | None:
    return session.scalars(select(DistributedFollowUp).where(DistributedFollowUp.public_id == public_id)).first()


# -- portal -----------------------------------------------------------------------------------------------


def account_of_user(session: Session, user_id: int) -> DonorAccount | None:
    return session.get(DonorAccount, user_id)


def account_of_donor(session: Session, donor_id: int) -> DonorAccount | None:
    return session.scalars(select(DonorAccount).where(DonorAccount.donor_id == donor_id)).first()


def donors_with_accounts(session: Session, donor_ids: Sequence[int]) -> set[int]:
    if not donor_ids:
        return set()
    return set(session.scalars(select(DonorAccount.donor_id).where(DonorAccount.donor_id.in_(list(donor_ids)))))


def invitation_by_hash(session: Session, code_hash: str) -> DonorInvitation | None:
    return session.scalars(select(DonorInvitation).where(DonorInvitation.code_hash == code_hash)).first()


def last_invitations(session: Session, donor_ids: Sequence[int], kind: str) -> dict[int, datetime]:
    if not donor_ids:
        return {}
    stmt = (
        select(DonorInvitation.donor_id, func.max(DonorInvitation.created_at))
        .where(DonorInvitation.donor_id.in_(list(donor_ids)), DonorInvitation.kind == kind)
        .group_by(DonorInvitation.donor_id)
    )
    return {donor_id: at for donor_id, at in session.execute(stmt)}


def notifications_of(session: Session, donor_id: int, limit: int = 100) -> list[Notification]:
    stmt = select(Notification).where(Notification.donor_id == donor_id).order_by(Notification.id.desc())
    return list(session.scalars(stmt.limit(limit)))


def unread_count(session: Session, donor_id: int) -> int:
    stmt = select(func.count()).where(Notification.donor_id == donor_id, Notification.read_at.is_(None))
    return int(session.execute(stmt).scalar_one())


def mark_read(session: Session, donor_id: int, now: datetime) -> None:
    session.execute(
        update(Notification)
        .where(Notification.donor_id == donor_id, Notification.read_at.is_(None))
        .values(read_at=now)
        .execution_options(synchronize_session=False)
    )


def outdated_current(
    session: Session, biobank_ids: Sequence[int] | None, *, limit: int, offset: int = 0
) -> tuple[list[tuple[DonorConsent, ConsentFormVersion, ConsentFormVersion]], int]:
    """Current active records signed on an older version of their form: (record, its version, newest)."""
    from sqlalchemy.orm import aliased

    newest_number = (
        select(ConsentFormVersion.form_id, func.max(ConsentFormVersion.number).label("n"))
        .group_by(ConsentFormVersion.form_id)
        .subquery("newest_number")
    )
    signed = aliased(ConsentFormVersion, name="signed")
    newest = aliased(ConsentFormVersion, name="newest")
    stmt = (
        select(DonorConsent, signed, newest)
        .join(signed, signed.id == DonorConsent.form_version_id)
        .join(newest_number, newest_number.c.form_id == signed.form_id)
        .join(newest, and_(newest.form_id == signed.form_id, newest.number == newest_number.c.n))
        .where(
            CURRENT,
            DonorConsent.status == ConsentStatus.ACTIVE.value,
            signed.number < newest_number.c.n,
        )
    )
    if biobank_ids is not None:
        stmt = stmt.where(DonorConsent.biobank_id.in_(list(biobank_ids)))
    total = int(session.execute(select(func.count()).select_from(stmt.subquery())).scalar_one())
    rows = session.execute(stmt.order_by(DonorConsent.donor_id).limit(limit).offset(offset)).all()
    return [(r[0], r[1], r[2]) for r in rows], total
