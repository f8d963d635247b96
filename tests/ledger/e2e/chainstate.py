"""Reading the chain the way another institution would: the AccessAgreements and RevenueLedger views,
and publishing the whole outbox."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from biobank.ledger import publisher
from biobank.ledger.models import LedgerOutbox, OutboxStatus
from biobank.ledger.service import Ledger

# AccessAgreements' state codes (docs/ledger-contracts.md)
SUBMITTED, APPROVED, REJECTED, CLOSED, EXPIRED = 1, 2, 3, 4, 5
PENDING, AVAILABLE, UNAVAILABLE, AGREED, REVOKED = 1, 2, 3, 4, 5


def publish_all(sessions: sessionmaker[Session], ledger: Ledger) -> int:
    """Publish until nothing is due; every row must be accepted by the chain. Returns how many were sent."""
    sent = 0
    while True:
        report = publisher.publish_due(sessions, ledger)
        assert report.failed == 0 and report.unavailable is None, report
        if report.touched == 0:
            return sent
        sent += report.sent


def outbox_rows(sessions: sessionmaker[Session]) -> list[LedgerOutbox]:
    with sessions() as session:
        rows = list(session.scalars(select(LedgerOutbox).order_by(LedgerOutbox.id)))
        session.expunge_all()
    return rows


def all_sent(sessions: sessionmaker[Session]) -> list[LedgerOutbox]:
    """Every outbox row, each asserted SENT with its transaction stored (none pending, none failed)."""
    rows = outbox_rows(sessions)
    assert rows
    bad = [(r.id, r.kind, r.status, r.last_error) for r in rows if r.status != OutboxStatus.SENT]
    assert not bad, bad
    assert all(r.tx_hash and r.raw_tx and r.block_number for r in rows)
    return rows


def request_state(ledger: Ledger, request: str) -> int:
    return int(ledger.handle("AccessAgreements").call("request_state", request))


def provider_state(ledger: Ledger, request: str, provider: str) -> int:
    return int(ledger.handle("AccessAgreements").call("provider_state", request, provider))


def data_access_valid(ledger: Ledger, request: str, provider: str) -> bool:
    return bool(ledger.handle("AccessAgreements").call("data_access_valid", request, provider))


def balance_of(ledger: Ledger, institution: str) -> int:
    return int(ledger.handle("RevenueLedger").call("balance_of", institution))
