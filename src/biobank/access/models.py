"""The access request and its per-provider track (core tables; fulfilment tables live beside them).

A request is made by a researcher of this node for specimens / data held by one or more biobanks
(the providers). Each provider works through its own states; the request's overall status follows.
On chain a request is known only by `chain_id`, a keyed hash of its public id (no personal data).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, Text, UniqueConstraint
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
