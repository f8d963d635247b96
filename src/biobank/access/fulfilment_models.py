"""Fulfilment of an access request (steps 5–7): agreements, reservations, shipments, data grants,
returned results, and the review flags a consent withdrawal leaves behind.

An agreement is between the requester's institution and ONE provider institution (the legal entity);
it covers that institution's biobanks in the request. Its terms text is frozen when generated and
`terms_hash` is keccak256 of the canonical bytes of that text. Documents that go on chain (shipment,
receipt, results, revocation reason) are stored with their salt so anyone here can recompute the
commitment; only the commitment goes into the outbox.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from biobank.kit.db import Base, UTCDateTime, utcnow


class AgreementKind(StrEnum):
    MTA = "MTA"  # material transfer agreement: specimens (and, when included, their data)
    DTA = "DTA"  # data transfer agreement: data only


class AgreementStatus(StrEnum):
    PENDING = "pending"  # generated, waiting for one or both signatures
    SIGNED = "signed"  # both parties signed; on chain via the outbox
    FULFILLED = "fulfilled"  # everything agreed was shipped (and received) / granted
    REVOKED = "revoked"  # can no longer be honoured (consent withdrawal)


class ReservationStatus(StrEnum):
    ACTIVE = "active"
    SHIPPED = "shipped"
    RELEASED = "released"


class ShipmentCondition(StrEnum):
    """How the requester found a shipment on arrival."""

    GOOD = "good"
    ACCEPTABLE = "acceptable"  # minor issues, usable
    TEMPERATURE_EXCURSION = "temperature_excursion"
    DAMAGED = "damaged"
    INCOMPLETE = "incomplete"


class GrantStatus(StrEnum):
    ACTIVE = "active"
    ENDED = "ended"  # the request was closed
    REVOKED = "revoked"


class ResultKind(StrEnum):
    PUBLICATION = "publication"
    DATASET = "dataset"


class AccessAgreement(Base):
    """An MTA or DTA between the requester's institution and one provider institution."""

    __tablename__ = "access_agreements"
    __table_args__ = (UniqueConstraint("request_id", "provider_institution", name="uq_access_agreement_provider"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    public_id: Mapped[str] = mapped_column(String(80), unique=True)  # CN-SH-H01:AGR-000001
    request_id: Mapped[int] = mapped_column(ForeignKey("access_requests.id", ondelete="CASCADE"), index=True)
    provider_institution: Mapped[str] = mapped_column(String(32))  # institution code
    biobank_ids: Mapped[list[int]] = mapped_column(JSON, default=list)  # provider biobanks covered
    kind: Mapped[AgreementKind] = mapped_column(String(8))
    includes_specimens: Mapped[bool] = mapped_column(Boolean, default=True)
    includes_data: Mapped[bool] = mapped_column(Boolean, default=False)
    data_access_days: Mapped[int | None] = mapped_column(Integer)
    fee_amount: Mapped[int] = mapped_column(Integer, default=0)  # accounting units, not a currency
    template: Mapped[str] = mapped_column(String(40))  # template file and version, e.g. mta-v1
    parameters: Mapped[dict[str, Any]] = mapped_column(JSON)  # what was rendered into the template
    terms_text: Mapped[str] = mapped_column(Text)
    terms_hash: Mapped[str] = mapped_column(String(66))  # 0x + keccak256(canonical bytes)
    status: Mapped[AgreementStatus] = mapped_column(String(16), default=AgreementStatus.PENDING)
    created_by: Mapped[str] = mapped_column(String(36))  # user public id
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    requester_signature: Mapped[str | None] = mapped_column(String(132))  # 0x + 65 bytes
    requester_signer: Mapped[str | None] = mapped_column(String(42))  # chain account address
    requester_signed_by: Mapped[str | None] = mapped_column(String(36))
    requester_signed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    provider_signature: Mapped[str | None] = mapped_column(String(132))
    provider_signer: Mapped[str | None] = mapped_column(String(42))
    provider_signed_by: Mapped[str | None] = mapped_column(String(36))
    provider_signed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    signed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    fulfilled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    revoke_salt: Mapped[str | None] = mapped_column(String(64))
    revoke_document: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    revoke_hash: Mapped[str | None] = mapped_column(String(66))


class AccessReservation(Base):
    """A specimen held for one request; at most one active reservation per specimen."""

    __tablename__ = "access_reservations"
    __table_args__ = (
        Index(
            "uq_access_reservation_active",
            "specimen_id",
            unique=True,
            sqlite_where=text("status = 'active'"),
            postgresql_where=text("status = 'active'"),
        ),
        Index("ix_access_reservations_request", "request_id", "biobank_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    public_id: Mapped[str] = mapped_column(String(36), unique=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("access_requests.id", ondelete="CASCADE"))
    agreement_id: Mapped[int] = mapped_column(ForeignKey("access_agreements.id", ondelete="CASCADE"), index=True)
    biobank_id: Mapped[int] = mapped_column(ForeignKey("biobanks.id"))
    specimen_id: Mapped[int] = mapped_column(ForeignKey("specimens.id"))
    status: Mapped[ReservationStatus] = mapped_column(String(16), default=ReservationStatus.ACTIVE)
    shipment_id: Mapped[int | None] = mapped_column(ForeignKey("access_shipments.id"), index=True)
    reserved_by: Mapped[str] = mapped_column(String(36))
    reserved_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    released_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    release_reason: Mapped[str] = mapped_column(String(300), default="")


class AccessShipment(Base):
    """Specimens sent by one provider biobank under an agreement: dispatched, then received."""

    __tablename__ = "access_shipments"

    id: Mapped[int] = mapped_column(primary_key=True)
    public_id: Mapped[str] = mapped_column(String(80), unique=True)  # CN-SH-H01:SHP-000001
    request_id: Mapped[int] = mapped_column(ForeignKey("access_requests.id", ondelete="CASCADE"), index=True)
    agreement_id: Mapped[int] = mapped_column(ForeignKey("access_agreements.id", ondelete="CASCADE"), index=True)
    biobank_id: Mapped[int] = mapped_column(ForeignKey("biobanks.id"))
    courier: Mapped[str] = mapped_column(String(100))
    tracking_number: Mapped[str] = mapped_column(String(100))
    temperature_logger: Mapped[str] = mapped_column(String(100), default="")
    dispatched_at: Mapped[datetime] = mapped_column(UTCDateTime())
    dispatched_by: Mapped[str] = mapped_column(String(36))
    specimen_count: Mapped[int] = mapped_column(Integer)
    shipment_salt: Mapped[str] = mapped_column(String(64))
    shipment_document: Mapped[dict[str, Any]] = mapped_column(JSON)
    shipment_hash: Mapped[str] = mapped_column(String(66))
    received_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    received_by: Mapped[str | None] = mapped_column(String(36))
    condition: Mapped[ShipmentCondition | None] = mapped_column(String(32))
    condition_notes: Mapped[str] = mapped_column(Text, default="")
    condition_salt: Mapped[str | None] = mapped_column(String(64))
    condition_document: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    condition_hash: Mapped[str | None] = mapped_column(String(66))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class AccessDataGrant(Base):
    """Time-bounded access to the pseudonymised data of some specimens, under one agreement."""

    __tablename__ = "access_data_grants"

    id: Mapped[int] = mapped_column(primary_key=True)
    public_id: Mapped[str] = mapped_column(String(80), unique=True)  # CN-SH-H01:GRT-000001
    request_id: Mapped[int] = mapped_column(ForeignKey("access_requests.id", ondelete="CASCADE"), index=True)
    agreement_id: Mapped[int] = mapped_column(ForeignKey("access_agreements.id", ondelete="CASCADE"), index=True)
    until: Mapped[datetime] = mapped_column(UTCDateTime())
    status: Mapped[GrantStatus] = mapped_column(String(16), default=GrantStatus.ACTIVE)
    granted_by: Mapped[str] = mapped_column(String(36))
    granted_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    exports: Mapped[int] = mapped_column(Integer, default=0)


class AccessGrantItem(Base):
    """One specimen whose data a grant covers; a consent withdrawal takes it out (revoked_at)."""

    __tablename__ = "access_grant_items"

    grant_id: Mapped[int] = mapped_column(ForeignKey("access_data_grants.id", ondelete="CASCADE"), primary_key=True)
    specimen_id: Mapped[int] = mapped_column(ForeignKey("specimens.id"), primary_key=True, index=True)
    biobank_id: Mapped[int] = mapped_column(ForeignKey("biobanks.id"))
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    revoke_reason: Mapped[str] = mapped_column(String(300), default="")


class AccessResultReturn(Base):
    """One return of results by the requester (publications, datasets), committed on chain."""

    __tablename__ = "access_result_returns"

    id: Mapped[int] = mapped_column(primary_key=True)
    public_id: Mapped[str] = mapped_column(String(36), unique=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("access_requests.id", ondelete="CASCADE"), index=True)
    returned_by: Mapped[str] = mapped_column(String(36))
    returned_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    salt: Mapped[str] = mapped_column(String(64))
    document: Mapped[dict[str, Any]] = mapped_column(JSON)
    results_hash: Mapped[str] = mapped_column(String(66))


class AccessResult(Base):
    """A publication (DOI) or dataset (URL, description) returned for a request."""

    __tablename__ = "access_results"

    id: Mapped[int] = mapped_column(primary_key=True)
    return_id: Mapped[int] = mapped_column(ForeignKey("access_result_returns.id", ondelete="CASCADE"), index=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("access_requests.id", ondelete="CASCADE"), index=True)
    kind: Mapped[ResultKind] = mapped_column(String(16))
    doi: Mapped[str | None] = mapped_column(String(200))
    title: Mapped[str] = mapped_column(String(500), default="")
    url: Mapped[str | None] = mapped_column(String(500))
    description: Mapped[str] = mapped_column(Text, default="")


class AccessReviewFlag(Base):
    """An open request a consent withdrawal touched: for the provider to review (shown on the page)."""

    __tablename__ = "access_review_flags"

    id: Mapped[int] = mapped_column(primary_key=True)
    public_id: Mapped[str] = mapped_column(String(36), unique=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("access_requests.id", ondelete="CASCADE"), index=True)
    biobank_id: Mapped[int] = mapped_column(ForeignKey("biobanks.id"))
    withdrawal: Mapped[str] = mapped_column(String(80))  # the withdrawal's public id
    summary: Mapped[str] = mapped_column(String(500))  # counts and actions only, no donor data
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    resolved_by: Mapped[str | None] = mapped_column(String(36))
