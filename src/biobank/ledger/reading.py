"""What the ledger pages and API show, read from the database (never waiting on the chain)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from biobank.identity.principal import Principal
from biobank.kit.db import utcnow
from biobank.kit.errors import NotFound
from biobank.ledger.anchoring import recent_anchors
from biobank.ledger.models import LedgerAnchor, LedgerChainEvent, LedgerOutbox, OutboxStatus
from biobank.ledger.publisher import Backlog, backlog
from biobank.ledger.revenue import Share, queued_withdrawals, shares
from biobank.ledger.sync import recent_events

CHART_HOURS = 24


def require_ledger_reader(principal: Principal) -> None:
    """Node admins and auditors see the ledger's state; to anyone else it does not exist."""
    if not (principal.is_admin or principal.is_auditor):
        raise NotFound("no ledger status here", name="LedgerNotFound")


def require_ledger_admin(principal: Principal) -> None:
    """Only node admins act on the outbox."""
    require_ledger_reader(principal)
    if not principal.is_admin:
        raise NotFound("no ledger status here", name="LedgerNotFound")


@dataclass
class LedgerOverview:
    """The status page's content."""

    backlog: Backlog
    anchors: list[LedgerAnchor]
    failed: list[LedgerOutbox]
    recent: list[LedgerOutbox]
    chart: dict[str, list[Any]]
    worker: dict[str, Any]


def hourly_chart(session: Session, now: datetime | None = None) -> dict[str, list[Any]]:
    """Chain writes queued per hour over the last day, split into sent and not (yet) sent."""
    now = now or utcnow()
    start = (now - timedelta(hours=CHART_HOURS - 1)).replace(minute=0, second=0, microsecond=0)
    rows = session.execute(
        select(LedgerOutbox.created_at, LedgerOutbox.status).where(LedgerOutbox.created_at >= start)
    ).all()
    labels = [(start + timedelta(hours=h)).strftime("%H:00") for h in range(CHART_HOURS)]
    sent, unsent = [0] * CHART_HOURS, [0] * CHART_HOURS
    for created_at, status in rows:
        slot = min(CHART_HOURS - 1, max(0, int((created_at - start).total_seconds() // 3600)))
        (sent if status == OutboxStatus.SENT else unsent)[slot] += 1
    return {"labels": labels, "sent": sent, "unsent": unsent}


def overview(session: Session, principal: Principal, worker: dict[str, Any]) -> LedgerOverview:
    """Backlog, anchors, failed and recent writes, the chart, and the worker's last state."""
    require_ledger_reader(principal)
    failed = list(session.scalars(
        select(LedgerOutbox).where(LedgerOutbox.status == OutboxStatus.FAILED).order_by(LedgerOutbox.id).limit(50)))
    recent = list(session.scalars(select(LedgerOutbox).order_by(LedgerOutbox.id.desc()).limit(20)))
    return LedgerOverview(backlog(session), recent_anchors(session, 10), failed, recent, hourly_chart(session), worker)


def outbox_page(session: Session, principal: Principal, *, status: str | None, offset: int,
                limit: int) -> tuple[list[LedgerOutbox], int]:
    """Outbox rows, newest first."""
    require_ledger_reader(principal)
    query = select(LedgerOutbox)
    if status:
        query = query.where(LedgerOutbox.status == status)
    total = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    rows = list(session.scalars(query.order_by(LedgerOutbox.id.desc()).offset(offset).limit(limit)))
    return rows, int(total)


@dataclass
class ConsortiumView:
    """What every institution put on chain, as mirrored by this node."""

    institutions: dict[str, str]  # bytes32 hex -> code
    agreements: list[LedgerChainEvent]
    anchors: list[LedgerChainEvent]
    requests: list[LedgerChainEvent]
    shares: list[Share] = field(default_factory=list)
    pending_withdrawals: int = 0


def consortium(session: Session, principal: Principal, chain_id: int | None) -> ConsortiumView:
    """Institutions, agreements, requests and anchors of the whole consortium (from mirrored events)."""
    require_ledger_reader(principal)
    if chain_id is None:
        chain_id = session.scalar(select(LedgerChainEvent.chain_id).order_by(LedgerChainEvent.id.desc()).limit(1))
    if chain_id is None:
        return ConsortiumView({}, [], [], [], [], queued_withdrawals(session))
    added = recent_events(session, chain_id, events=("InstitutionAdded",), limit=1000)
    names = {str(e.args.get("inst", "")): str(e.args.get("code", "")) for e in added}
    return ConsortiumView(
        institutions=names,
        agreements=recent_events(session, chain_id, events=("AgreementRecorded",), limit=100),
        anchors=recent_events(session, chain_id, events=("Anchored",), limit=100),
        requests=recent_events(session, chain_id, events=("Submitted",), limit=100),
        shares=shares(session, chain_id),
        pending_withdrawals=queued_withdrawals(session),
    )
