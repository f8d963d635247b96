"""The access request and its per-provider track (core tables; fulfilment tables live beside them).

A request is made by a researcher of this node for specimens / data held by one or more biobanks
(the providers). Each provider works through its own states; the request's overall status follows.
On chain a request is known only by `chain_id`, a keyed hash of its public id (no personal data).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Boolean, Float, ForeignKey, Index, Integer, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from biobank.kit.db import Base, UTCDateTime, utcnow


class RequestStatus(StrEnum):
    DRAFT = "draft"
    SUBMITTED = "submitted"  # waiting for the ethics committee
    ETHICS_APPROVED = "ethics_approved"  # providers are working on it
    ETHICS_REJECTED = "ethics_rejected"
    AGREED = "agreed"  # at least one agreement signed by both parties
    FULFILLED = "fulfilled"  # everything agreed has been shipped / granted
    RESULTS_RETURNED = "results_returned"
    CLOSED = "closed"
    REVOKED = "revoked"
    EXPIRED = "expired"


class ProviderState(StrEnum):
    """A provider biobank's own track through a request (BBMRI-ERIC negotiator states)."""

    CONTACTED = "contacted"
    CHECKING_AVAILABILITY = "checking_availability"
    AVAILABLE = "available"
    UNAVAILABLE = "unavailable"
    CONDITIONS_INDICATED = "conditions_indicated"
    CONDITIONS_MET = "conditions_met"
    MADE_AVAILABLE = "made_available"
    REVOKED = "revoked"


# The allowed moves of a provider's track (BBMRI-ERIC negotiator). Anything else is a Conflict naming
# both states. UNAVAILABLE and MADE_AVAILABLE end the provider's own track; REVOKED is entered only by a
# revocation (consent withdrawal, agreement breach), never by a manager's state change.
_P = ProviderState
ALLOWED_TRANSITIONS: dict[ProviderState, frozenset[ProviderState]] = {
    _P.CONTACTED: frozenset({_P.CHECKING_AVAILABILITY, _P.AVAILABLE, _P.UNAVAILABLE}),
    _P.CHECKING_AVAILABILITY: frozenset({_P.AVAILABLE, _P.UNAVAILABLE}),
    _P.AVAILABLE: frozenset({_P.CONDITIONS_INDICATED, _P.MADE_AVAILABLE, _P.UNAVAILABLE, _P.REVOKED}),
    _P.UNAVAILABLE: frozenset(),
    _P.CONDITIONS_INDICATED: frozenset({_P.CONDITIONS_MET, _P.UNAVAILABLE, _P.REVOKED}),
    _P.CONDITIONS_MET: frozenset({_P.MADE_AVAILABLE, _P.REVOKED}),
    _P.MADE_AVAILABLE: frozenset({_P.REVOKED}),
    _P.REVOKED: frozenset(),
}
# States a biobank manager may move to with a state change (REVOKED goes through revocation).
MANAGER_TARGETS = frozenset(s for s in ProviderState if s is not _P.REVOKED)
# The provider has not answered yet: reminders and escalation run only in these states.
AWAITING_PROVIDER = frozenset({_P.CONTACTED, _P.CHECKING_AVAILABILITY})
# The provider has decided (for the chain's `request.provider`): available is any state but these.
UNDECIDED = AWAITING_PROVIDER
NOT_AVAILABLE = frozenset({_P.UNAVAILABLE, _P.REVOKED})
# Request statuses in which providers work on their tracks.
PROVIDERS_WORKING = frozenset({RequestStatus.ETHICS_APPROVED, RequestStatus.AGREED, RequestStatus.FULFILLED})
# Request statuses that are still open (competing requests, reminders).
OPEN_STATUSES = frozenset(
    {RequestStatus.SUBMITTED, RequestStatus.ETHICS_APPROVED, RequestStatus.AGREED, RequestStatus.FULFILLED}
)


def can_transition(current: ProviderState | str, target: ProviderState | str) -> bool:
    """Whether a provider's track may move from `current` to `target`."""
    return ProviderState(target) in ALLOWED_TRANSITIONS[ProviderState(current)]


class ItemKind(StrEnum):
    """What a request line asks for."""

    COLLECTION = "collection"  # a number of specimens from a collection (optionally of one material)
    SPECIMEN = "specimen"  # one named specimen
    DATA = "data"  # a MIABIS data category of a collection (e.g. Clinical, Genomic)


class NoticeKind(StrEnum):
    REMINDER = "reminder"
    ESCALATION = "escalation"
    EXPIRED = "expired"


class AccessRequest(Base):
    __tablename__ = "access_requests"
    __table_args__ = (Index("ix_access_requests_status", "status"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    public_id: Mapped[str] = mapped_column(String(80), unique=True)  # e.g. CN-SH-H01:REQ-000001
    chain_id: Mapped[str] = mapped_column(String(66), unique=True)  # 0x + keyed hash of public_id
    requester_user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    requester_institution: Mapped[str] = mapped_column(String(32))  # institution code
    project_title: Mapped[str] = mapped_column(String(300))
    project_summary: Mapped[str] = mapped_column(Text, default="")
    # DUO-coded purpose: the fields of consent.matcher.Purpose (category is a DUO id)
    purpose: Mapped[dict[str, Any]] = mapped_column(JSON)
    shipment_country: Mapped[str] = mapped_column(String(2))
    ethics_reference: Mapped[str] = mapped_column(String(120), default="")
    status: Mapped[RequestStatus] = mapped_column(String(24), default=RequestStatus.DRAFT)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    submitted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # salt of the request's on-chain commitment (hex, 32 bytes); never leaves the node
    salt: Mapped[str] = mapped_column(String(64), default="")
    commitment: Mapped[str | None] = mapped_column(String(66))  # 0x keccak256(salt || canonical document)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class AccessRequestProvider(Base):
    """One provider biobank's part of a request: its state, eligibility counts, reminders."""

    __tablename__ = "access_request_providers"
    __table_args__ = (UniqueConstraint("request_id", "biobank_id", name="uq_access_provider"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("access_requests.id", ondelete="CASCADE"), index=True)
    biobank_id: Mapped[int] = mapped_column(ForeignKey("biobanks.id"), index=True)
    state: Mapped[ProviderState] = mapped_column(String(24), default=ProviderState.CONTACTED)
    # consent eligibility per verdict: {"approve": n, "deny": n, "review": n}
    eligibility: Mapped[dict[str, int]] = mapped_column(JSON, default=dict)
    conditions: Mapped[str] = mapped_column(Text, default="")
    reminders_sent: Mapped[int] = mapped_column(Integer, default=0)
    last_activity_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    escalated_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    contacted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())  # when ethics approved the request
    eligibility_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class AccessRequestItem(Base):
    """One line of a request: a collection (how many specimens), a named specimen, or a data category."""

    __tablename__ = "access_request_items"

    id: Mapped[int] = mapped_column(primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("access_requests.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer, default=0)
    kind: Mapped[ItemKind] = mapped_column(String(16))
    biobank_id: Mapped[int] = mapped_column(ForeignKey("biobanks.id"), index=True)
    collection_id: Mapped[int] = mapped_column(ForeignKey("collections.id"), index=True)
    specimen_id: Mapped[int | None] = mapped_column(ForeignKey("specimens.id"), index=True)
    sample_type: Mapped[str | None] = mapped_column(String(32))  # MIABIS material, collection lines only
    data_category: Mapped[str | None] = mapped_column(String(40))  # MIABIS dataset type, data lines only
    quantity: Mapped[int] = mapped_column(Integer, default=1)  # specimens (or records) asked for
    amount: Mapped[float | None] = mapped_column(Float)  # per specimen, in amount_unit
    amount_unit: Mapped[str] = mapped_column(String(8), default="")
    notes: Mapped[str] = mapped_column(Text, default="")


class AccessEthicsDocument(Base):
    """The uploaded ethics approval of a request, kept in the database with its SHA-256 (one per request)."""

    __tablename__ = "access_ethics_documents"

    id: Mapped[int] = mapped_column(primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("access_requests.id", ondelete="CASCADE"), unique=True)
    filename: Mapped[str] = mapped_column(String(200), default="")
    media_type: Mapped[str] = mapped_column(String(64))
    size_bytes: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    content: Mapped[bytes] = mapped_column(LargeBinary)
    uploaded_by: Mapped[str] = mapped_column(String(36))  # user public id
    uploaded_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class AccessEthicsDecision(Base):
    """The ethics committee's decision on a request (one per request)."""

    __tablename__ = "access_ethics_decisions"

    id: Mapped[int] = mapped_column(primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("access_requests.id", ondelete="CASCADE"), unique=True)
    reviewer_user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    approved: Mapped[bool] = mapped_column(Boolean)
    comments: Mapped[str] = mapped_column(Text, default="")
    decision_hash: Mapped[str] = mapped_column(String(66))  # 0x commitment of the decision document
    decided_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class AccessProviderEvent(Base):
    """One state change of a provider's track (who, from, to, when, a note for the requester)."""

    __tablename__ = "access_provider_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    provider_id: Mapped[int] = mapped_column(ForeignKey("access_request_providers.id", ondelete="CASCADE"), index=True)
    actor: Mapped[str] = mapped_column(String(64))  # user public id
    from_state: Mapped[str] = mapped_column(String(24))
    to_state: Mapped[str] = mapped_column(String(24))
    note: Mapped[str] = mapped_column(Text, default="")
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class AccessNotice(Base):
    """A reminder or escalation about a provider that has not answered (there is no e-mail: pages show them).

    Unique per (provider, kind, due_at): the reminder job may run any number of times.
    """

    __tablename__ = "access_notices"
    __table_args__ = (
        UniqueConstraint("provider_id", "kind", "due_at", name="uq_access_notice_due"),
        Index("ix_access_notices_biobank", "biobank_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("access_requests.id", ondelete="CASCADE"), index=True)
    provider_id: Mapped[int | None] = mapped_column(ForeignKey("access_request_providers.id", ondelete="CASCADE"))
    biobank_id: Mapped[int | None] = mapped_column(ForeignKey("biobanks.id"))
    kind: Mapped[NoticeKind] = mapped_column(String(16))
    due_at: Mapped[datetime] = mapped_column(UTCDateTime())
    days_waiting: Mapped[int] = mapped_column(Integer, default=0)
    message: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
