"""Publish the outbox to the chain after commit: in order, idempotently, with retries.

Rows go out strictly in id order (a provider's decision must follow the request's submission). A row
is claimed with a compare-and-swap (status and lease) so two publishers never send the same row. The
signed transaction and its hash are stored *before* broadcast; a retry first asks the chain for that
hash's receipt and otherwise re-sends the same signed bytes — a row is never applied twice.
When the chain is unreachable the row goes back to pending with a backoff and publishing stops
until the next round: the node keeps working and the backlog shows on /ledger.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, sessionmaker

from biobank.kit.db import utcnow
from biobank.ledger.client import ChainUnavailable, Receipt, Reverted
from biobank.ledger.models import LedgerOutbox, OutboxStatus
from biobank.ledger.operations import UnknownOperation, operation
from biobank.ledger.service import Ledger

log = logging.getLogger("biobank.ledger")

LEASE = timedelta(seconds=60)  # a claimed row is taken over after this long without an outcome
FIRST_BACKOFF_SECONDS = 2.0

# kind -> functions run in the transaction that marks a row sent (e.g. anchors record their block)
SentHook = Callable[[Session, LedgerOutbox], None]
_sent_hooks: dict[str, list[SentHook]] = {}


def on_sent(kind: str, hook: SentHook) -> None:
    """Run `hook(session, row)` when a row of `kind` is confirmed on chain."""
    _sent_hooks.setdefault(kind, []).append(hook)


@dataclass
class PublishReport:
    """What one publishing round did."""

    sent: int = 0
    failed: int = 0
    unavailable: str | None = None  # why the chain could not be reached, if it could not

    @property
    def touched(self) -> int:
        """Rows settled this round."""
        return self.sent + self.failed


def backoff(attempts: int, cap_seconds: float) -> timedelta:
    """2 s, 4 s, 8 s ... up to the cap."""
    return timedelta(seconds=min(cap_seconds, FIRST_BACKOFF_SECONDS * 2 ** max(0, attempts - 1)))


def _next_row(session: Session) -> LedgerOutbox | None:
    """The lowest row not yet settled (pending, or sending under someone's lease)."""
    return session.scalars(
        select(LedgerOutbox)
        .where(LedgerOutbox.status.in_([OutboxStatus.PENDING, OutboxStatus.SENDING]))
        .order_by(LedgerOutbox.id)
        .limit(1)
    ).first()


def _claim(sessions: sessionmaker[Session], now: datetime) -> LedgerOutbox | None:
    """Take the next row if it is due; None when there is nothing due (or another publisher holds it)."""
    with sessions.begin() as session:
        row = _next_row(session)
        if row is None or row.next_attempt_at > now:
            return None
        claimed = session.execute(
            update(LedgerOutbox)
            .where(LedgerOutbox.id == row.id, LedgerOutbox.status == row.status,
                   LedgerOutbox.attempts == row.attempts)
            .values(status=OutboxStatus.SENDING, next_attempt_at=now + LEASE, attempts=LedgerOutbox.attempts + 1)
        )
        if claimed.rowcount != 1:  # type: ignore[attr-defined]
            return None
        session.flush()
        session.refresh(row)
        session.expunge(row)
        return row


def _settle(sessions: sessionmaker[Session], row_id: int, receipt: Receipt) -> None:
    with sessions.begin() as session:
        row = session.get(LedgerOutbox, row_id)
        assert row is not None
        row.status, row.block_number, row.sent_at = OutboxStatus.SENT, receipt.block_number, utcnow()
        row.last_error = ""
        for hook in _sent_hooks.get(row.kind, ()):
            hook(session, row)


def _fail(sessions: sessionmaker[Session], row_id: int, reason: str) -> None:
    with sessions.begin() as session:
        row = session.get(LedgerOutbox, row_id)
        assert row is not None
        row.status, row.last_error = OutboxStatus.FAILED, reason[:2000]
    log.warning("ledger write rejected", extra={"outbox_id": row_id, "reason": reason[:200]})


def _postpone(sessions: sessionmaker[Session], row_id: int, reason: str, cap_seconds: float) -> None:
    with sessions.begin() as session:
        row = session.get(LedgerOutbox, row_id)
        assert row is not None
        row.status, row.last_error = OutboxStatus.PENDING, reason[:2000]
        row.next_attempt_at = utcnow() + backoff(row.attempts, cap_seconds)


def _sign(sessions: sessionmaker[Session], ledger: Ledger, row: LedgerOutbox) -> LedgerOutbox:
    """Sign the row's transaction and store hash and bytes before anything is broadcast."""
    op = operation(row.kind)
    account = ledger.account(op.signer)
    contract = ledger.contract(op.contract)
    data = contract.encode(op.function, *op.arguments(row.payload))
    nonce = ledger.client.nonce(account.address)
    signed = ledger.client.sign(account.account, ledger.addresses[op.contract], data, nonce)
    with sessions.begin() as session:
        stored = session.get(LedgerOutbox, row.id)
        assert stored is not None
        stored.signer, stored.nonce = account.address, nonce
        stored.tx_hash, stored.raw_tx = "0x" + signed.tx_hash.hex(), signed.raw.hex()
        session.flush()
        session.expunge(stored)
        return stored


def _deliver(ledger: Ledger, row: LedgerOutbox) -> Receipt:
    """The receipt of the row's signed transaction: found on chain, or after (re-)sending it."""
    assert row.tx_hash is not None and row.raw_tx is not None
    tx_hash = bytes.fromhex(row.tx_hash[2:])
    found = ledger.client.receipt(tx_hash)
    if found is not None:
        return found
    try:
        return ledger.client.send_raw(bytes.fromhex(row.raw_tx))
    except Reverted:
        raise
    except ChainUnavailable:
        raise
    except Exception:
        # e.g. "already known" / "nonce too low": the node has it — ask again before giving up
        found = ledger.client.receipt(tx_hash)
        if found is not None:
            return found
        raise


def publish_row(sessions: sessionmaker[Session], ledger: Ledger, row: LedgerOutbox, cap_seconds: float) -> str:
    """Send one claimed row; returns "sent", "failed" or "postponed"."""
    try:
        if row.raw_tx is None:
            row = _sign(sessions, ledger, row)
        receipt = _deliver(ledger, row)
    except ChainUnavailable as exc:
        _postpone(sessions, row.id, f"chain unavailable: {exc}", cap_seconds)
        return "postponed"
    except Reverted as exc:
        _fail(sessions, row.id, f"reverted: {exc.reason}")
        return "failed"
    except (UnknownOperation, KeyError, ValueError, TypeError) as exc:
        _fail(sessions, row.id, f"cannot encode {row.kind}: {type(exc).__name__}: {exc}")
        return "failed"
    if receipt.status != 1:
        _fail(sessions, row.id, "reverted: status 0")
        return "failed"
    _settle(sessions, row.id, receipt)
    return "sent"


def publish_due(sessions: sessionmaker[Session], ledger: Ledger, *, limit: int = 500,
                now: datetime | None = None) -> PublishReport:
    """Publish due rows in order until none is due, the chain is unreachable, or `limit` rows are done."""
    report = PublishReport()
    cap = ledger.settings.ledger_retry_max_seconds
    while report.touched < limit:
        row = _claim(sessions, now or utcnow())
        if row is None:
            break
        outcome = publish_row(sessions, ledger, row, cap)
        if outcome == "sent":
            report.sent += 1
        elif outcome == "failed":
            report.failed += 1
        else:
            with sessions() as session:
                stored = session.get(LedgerOutbox, row.id)
                report.unavailable = stored.last_error if stored is not None else "chain unavailable"
            break
    return report


def retry_failed(session: Session, row_id: int) -> LedgerOutbox:
    """Put a failed row back in the queue (after an operator fixed the cause); it is signed afresh."""
    from biobank.kit.errors import Conflict, NotFound

    row = session.get(LedgerOutbox, row_id)
    if row is None:
        raise NotFound("no such ledger write", name="LedgerWriteNotFound")
    if row.status != OutboxStatus.FAILED:
        raise Conflict(f"only a failed ledger write can be retried; this one is {row.status}")
    row.status, row.next_attempt_at, row.tx_hash, row.raw_tx, row.nonce = (
        OutboxStatus.PENDING, utcnow(), None, None, None)
    session.flush()
    return row


@dataclass(frozen=True)
class Backlog:
    """The outbox as the status page shows it."""

    pending: int
    sending: int
    failed: int
    sent: int
    oldest_pending_at: datetime | None
    last_error: str


def backlog(session: Session) -> Backlog:
    """Counts per status, the age of the oldest unsent row and the latest error."""
    counts = dict(session.execute(select(LedgerOutbox.status, func.count()).group_by(LedgerOutbox.status)).all())
    oldest = session.scalar(
        select(func.min(LedgerOutbox.created_at)).where(
            LedgerOutbox.status.in_([OutboxStatus.PENDING, OutboxStatus.SENDING]))
    )
    last_error = session.scalar(
        select(LedgerOutbox.last_error).where(LedgerOutbox.last_error != "",
                                              LedgerOutbox.status != OutboxStatus.SENT)
        .order_by(LedgerOutbox.id.desc()).limit(1)
    ) or ""
    return Backlog(
        pending=int(counts.get(OutboxStatus.PENDING, 0)), sending=int(counts.get(OutboxStatus.SENDING, 0)),
        failed=int(counts.get(OutboxStatus.FAILED, 0)), sent=int(counts.get(OutboxStatus.SENT, 0)),
        oldest_pending_at=oldest, last_error=last_error,
    )
