"""Consent forms and versions, donor consent records, withdrawal and its follow-through, the donor portal.

A donor's consent is a chain of versioned records; exactly one is current (`is_current`). The current
record carries a `profile_key` (hash of its canonical DUO profile, stored once in `consent_profiles`),
so eligibility groups specimens by profile and decides once per profile (see consent/eligibility.py).
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from biobank.kit.db import Base, UTCDateTime, utcnow


class OptionKind(StrEnum):
    """How an option of a form takes part in the profile."""

    PERMISSION = "permission"  # the donor picks exactly one of these: sets the DUO permission
    CHOICE = "choice"  # a yes/no question (an extra choice, possibly mapped to DUO modifiers)
    CONDITION = "condition"  # always applies (e.g. IRB): not a question


class AppliesWhen(StrEnum):
    """When a choice's DUO modifiers apply: on a yes or on a no."""

    ACCEPTED = "accepted"
    DECLINED = "declined"


class ConsentMethod(StrEnum):
    ELECTRONIC = "electronic"  # e-signature: typed name and time, given in the portal
    PAPER = "paper"  # paper form, scanned and attached by staff


class ConsentStatus(StrEnum):
    ACTIVE = "active"
    SUPERSEDED = "superseded"
    WITHDRAWN = "withdrawn"


class WithdrawalKind(StrEnum):
    NO_FURTHER_USE = "no_further_use"
    DESTROY = "destroy"
    KEEP_RESULTS = "keep_results"


class TaskStatus(StrEnum):
    OPEN = "open"
    DONE = "done"


class InvitationKind(StrEnum):
    ACCOUNT = "account"
    RECONSENT = "reconsent"


class ConsentForm(Base):
    """A consent form of a biobank; its text and options live in versions."""

    __tablename__ = "consent_forms"
    __table_args__ = (UniqueConstraint("biobank_id", "code"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    public_id: Mapped[str] = mapped_column(String(80), unique=True)
    biobank_id: Mapped[int] = mapped_column(ForeignKey("biobanks.id"), index=True)
    code: Mapped[str] = mapped_column(String(32))
    title_en: Mapped[str] = mapped_column(String(200))
    title_zh: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class ConsentFormVersion(Base):
    """One published, immutable version of a form: its text in English and Chinese, and its options."""

    __tablename__ = "consent_form_versions"
    __table_args__ = (UniqueConstraint("form_id", "number"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    public_id: Mapped[str] = mapped_column(String(100), unique=True)
    form_id: Mapped[int] = mapped_column(ForeignKey("consent_forms.id"), index=True)
    number: Mapped[int] = mapped_column(Integer)
    text_en: Mapped[str] = mapped_column(Text)
    text_zh: Mapped[str] = mapped_column(Text, default="")
    published_at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class ConsentOption(Base):
    """One option of a form version and what it means in DUO terms."""

    __tablename__ = "consent_options"
    __table_args__ = (UniqueConstraint("version_id", "code"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("consent_form_versions.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    code: Mapped[str] = mapped_column(String(40))
    kind: Mapped[OptionKind] = mapped_column(String(16))
    label_en: Mapped[str] = mapped_column(String(300))
    label_zh: Mapped[str] = mapped_column(String(300), default="")
    explanation_en: Mapped[str] = mapped_column(Text, default="")
    explanation_zh: Mapped[str] = mapped_column(Text, default="")
    duo_permission: Mapped[str | None] = mapped_column(String(8))
    duo_modifiers: Mapped[list[str]] = mapped_column(JSON, default=list)
    diseases: Mapped[list[str]] = mapped_column(JSON, default=list)
    countries: Mapped[list[str]] = mapped_column(JSON, default=list)
    months: Mapped[int | None] = mapped_column(Integer)
    moratorium_until: Mapped[date | None] = mapped_column(Date)
    extra_choice: Mapped[str | None] = mapped_column(String(32))
    applies_when: Mapped[AppliesWhen] = mapped_column(String(16), default=AppliesWhen.ACCEPTED)
    default: Mapped[bool] = mapped_column(Boolean, default=False)


class CollectionAcceptedVersion(Base):
    """A form version a collection accepts (none listed: the collection accepts every version)."""

    __tablename__ = "consent_collection_versions"

    collection_id: Mapped[int] = mapped_column(ForeignKey("collections.id", ondelete="CASCADE"), primary_key=True)
    version_id: Mapped[int] = mapped_column(ForeignKey("consent_form_versions.id"), primary_key=True, index=True)


class ConsentProfileRow(Base):
    """A distinct DUO profile, stored once; records point at it by key (a hash of its canonical form)."""

    __tablename__ = "consent_profiles"

    key: Mapped[str] = mapped_column(String(32), primary_key=True)
    permission: Mapped[str] = mapped_column(String(8))
    body: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class ConsentScan(Base):
    """A scanned paper consent form: the file is under data_dir/consent-scans, named by its SHA-256."""

    __tablename__ = "consent_scans"

    id: Mapped[int] = mapped_column(primary_key=True)
    public_id: Mapped[str] = mapped_column(String(36), unique=True)
    biobank_id: Mapped[int] = mapped_column(ForeignKey("biobanks.id"), index=True)
    sha256: Mapped[str] = mapped_column(String(64))
    media_type: Mapped[str] = mapped_column(String(64))
    size_bytes: Mapped[int] = mapped_column(Integer)
    uploaded_by: Mapped[str] = mapped_column(String(64))
    uploaded_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class DonorConsent(Base):
    """One version of a donor's consent. Changes add a version; old ones stay for the timeline."""

    __tablename__ = "donor_consents"
    __table_args__ = (
        UniqueConstraint("donor_id", "version"),
        # One current record per donor; eligibility joins specimens to it by donor id and reads the
        # profile key, status and validity from this narrow index-backed row.
        Index(
            "uq_donor_consents_current",
            "donor_id",
            unique=True,
            sqlite_where=text("is_current"),
            postgresql_where=text("is_current"),
        ),
        Index("ix_donor_consents_profile_key", "profile_key"),
        Index("ix_donor_consents_version_current", "form_version_id", "is_current"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    public_id: Mapped[str] = mapped_column(String(80), unique=True)
    donor_id: Mapped[int] = mapped_column(ForeignKey("donors.id"))
    biobank_id: Mapped[int] = mapped_column(ForeignKey("biobanks.id"), index=True)
    form_version_id: Mapped[int] = mapped_column(ForeignKey("consent_form_versions.id"))
    version: Mapped[int] = mapped_column(Integer)
    supersedes_id: Mapped[int | None] = mapped_column(ForeignKey("donor_consents.id"))
    choices: Mapped[dict[str, bool]] = mapped_column(JSON, default=dict)
    profile_key: Mapped[str] = mapped_column(ForeignKey("consent_profiles.key"))
    method: Mapped[ConsentMethod] = mapped_column(String(16))
    # Typed signature name and witness are personal data: sealed with the vault key, bound to public_id.
    attestation_sealed: Mapped[bytes | None] = mapped_column(LargeBinary)
    signed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    has_witness: Mapped[bool] = mapped_column(Boolean, default=False)
    scan_id: Mapped[int | None] = mapped_column(ForeignKey("consent_scans.id"))
    given_at: Mapped[datetime] = mapped_column(UTCDateTime())
    valid_from: Mapped[datetime] = mapped_column(UTCDateTime())
    valid_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    status: Mapped[ConsentStatus] = mapped_column(String(16), default=ConsentStatus.ACTIVE)
    is_current: Mapped[bool] = mapped_column(Boolean, default=True)
    channel: Mapped[str] = mapped_column(String(16))  # portal | staff
    recorded_by: Mapped[str] = mapped_column(String(64))
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class Withdrawal(Base):
    """A donor's withdrawal of consent (at most one per consent record)."""

    __tablename__ = "consent_withdrawals"

    id: Mapped[int] = mapped_column(primary_key=True)
    public_id: Mapped[str] = mapped_column(String(80), unique=True)
    donor_id: Mapped[int] = mapped_column(ForeignKey("donors.id"), index=True)
    biobank_id: Mapped[int] = mapped_column(ForeignKey("biobanks.id"), index=True)
    consent_id: Mapped[int] = mapped_column(ForeignKey("donor_consents.id"), unique=True)
    kind: Mapped[WithdrawalKind] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(Text, default="")
    channel: Mapped[str] = mapped_column(String(16))
    recorded_by: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    flagged_requests: Mapped[list[str]] = mapped_column(JSON, default=list)


class DestructionTask(Base):
    """A specimen to destroy after a withdrawal; completing it marks the specimen destroyed (custody event)."""

    __tablename__ = "consent_destruction_tasks"
    __table_args__ = (Index("ix_consent_destruction_tasks_biobank_status", "biobank_id", "status"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    public_id: Mapped[str] = mapped_column(String(36), unique=True)
    withdrawal_id: Mapped[int] = mapped_column(ForeignKey("consent_withdrawals.id"), index=True)
    biobank_id: Mapped[int] = mapped_column(ForeignKey("biobanks.id"))
    specimen_id: Mapped[int] = mapped_column(ForeignKey("specimens.id"), index=True)
    status: Mapped[TaskStatus] = mapped_column(String(8), default=TaskStatus.OPEN)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    completed_by: Mapped[str | None] = mapped_column(String(64))
    notes: Mapped[str] = mapped_column(Text, default="")


class DistributedFollowUp(Base):
    """A specimen already distributed when its donor withdrew: listed with its recipient until resolved."""

    __tablename__ = "consent_follow_ups"
    __table_args__ = (Index("ix_consent_follow_ups_biobank_status", "biobank_id", "status"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    public_id: Mapped[str] = mapped_column(String(36), unique=True)
    withdrawal_id: Mapped[int] = mapped_column(ForeignKey("consent_withdrawals.id"), index=True)
    biobank_id: Mapped[int] = mapped_column(ForeignKey("biobanks.id"))
    specimen_id: Mapped[int] = mapped_column(ForeignKey("specimens.id"), index=True)
    recipient: Mapped[str] = mapped_column(String(300))
    distributed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    status: Mapped[TaskStatus] = mapped_column(String(8), default=TaskStatus.OPEN)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    resolved_by: Mapped[str | None] = mapped_column(String(64))
    notes: Mapped[str] = mapped_column(Text, default="")


class DonorAccount(Base):
    """Links a portal user (kind donor) to the donor they are."""

    __tablename__ = "consent_donor_accounts"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    donor_id: Mapped[int] = mapped_column(ForeignKey("donors.id"), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class DonorInvitation(Base):
    """An invitation code staff give a donor: only its keyed hash is stored; it expires and works once."""

    __tablename__ = "consent_invitations"

    id: Mapped[int] = mapped_column(primary_key=True)
    public_id: Mapped[str] = mapped_column(String(36), unique=True)
    donor_id: Mapped[int] = mapped_column(ForeignKey("donors.id"), index=True)
    biobank_id: Mapped[int] = mapped_column(ForeignKey("biobanks.id"))
    kind: Mapped[InvitationKind] = mapped_column(String(16))
    form_version_id: Mapped[int | None] = mapped_column(ForeignKey("consent_form_versions.id"))
    code_hash: Mapped[str | None] = mapped_column(String(64), unique=True)
    created_by: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    redeemed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class Notification(Base):
    """A message to a donor, in English and Chinese (never naming staff)."""

    __tablename__ = "consent_notifications"
    __table_args__ = (Index("ix_consent_notifications_donor_id_id", "donor_id", "id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    donor_id: Mapped[int] = mapped_column(ForeignKey("donors.id"))
    kind: Mapped[str] = mapped_column(String(32))
    text_en: Mapped[str] = mapped_column(Text)
    text_zh: Mapped[str] = mapped_column(Text, default="")
    link: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    read_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
