"""The outbox publisher: in order, exactly once across crashes, failures kept, outages waited out."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from biobank.kit.db import utcnow
from biobank.ledger import publisher
from biobank.ledger.client import ChainUnavailable
from biobank.ledger.models import LedgerOutbox, OutboxStatus
from biobank.ledger.outbox import enqueue
from biobank.ledger.refs import commitment, new_salt, object_ref
from biobank.ledger.service import Ledger


def _publish_resource(sessions: sessionmaker[Session], ledger: Ledger, public_id: str, version: int = 1) -> int:
    with sessions.begin() as session:
        row = enqueue(
            session, "resource.publish",
            {"resource": object_ref(ledger.settings, "collection", public_id),
             "commitment": commitment(new_salt(), {"id": public_id, "v": version})},
            dedupe_key=f"resource.publish:{public_id}:{version}",
        )
        return row.id


def _rows(sessions: sessionmaker[Session]) -> list[LedgerOutbox]:
    with sessions() as session:
        return list(session.scalars(select(LedgerOutbox).order_by(LedgerOutbox.id)))


def _published_events(ledger: Ledger) -> list[dict]:
    return [args for name, args, _ in ledger.handle("ResourceRegistry").events() if name == "Published"]


def test_rows_go_out_in_order_once(sessions: sessionmaker[Session], ledger: Ledger) -> None:
    for n in range(3):
        _publish_resource(sessions, ledger, f"COL-{n}")
    report = publisher.publish_due(sessions, ledger)
    assert (report.sent, report.failed, report.unavailable) == (3, 0, None)
    rows = _rows(sessions)
    assert [r.status for r in rows] == [OutboxStatus.SENT] * 3
    blocks = [r.block_number for r in rows]
    assert blocks == sorted(blocks) and len(set(blocks)) == 3  # one transaction per block, in id order
    assert publisher.publish_due(sessions, ledger).touched == 0
    assert len(_published_events(ledger)) == 3


def test_enqueue_is_idempotent_by_key(sessions: sessionmaker[Session], ledger: Ledger) -> None:
    first = _publish_resource(sessions, ledger, "COL-1")
    with sessions.begin() as session:
        again = enqueue(session, "resource.publish", {"resource": "0x00", "commitment": "0x00"},
                        dedupe_key="resource.publish:COL-1:1")
        assert again.id == first
    assert len(_rows(sessions)) == 1


def test_crash_after_signing_resends_the_same_transaction(sessions: sessionmaker[Session], ledger: Ledger) -> None:
    _publish_resource(sessions, ledger, "COL-1")
    row = publisher._claim(sessions, utcnow())
    assert row is not None
    signed = publisher._sign(sessions, ledger, row)  # ... and the process dies before broadcasting
    later = utcnow() + publisher.LEASE + timedelta(seconds=1)
    report = publisher.publish_due(sessions, ledger, now=later)
    assert report.sent == 1
    (stored,) = _rows(sessions)
    assert stored.tx_hash == signed.tx_hash and stored.status == OutboxStatus.SENT
    assert len(_published_events(ledger)) == 1


def test_crash_after_broadcast_finds_the_receipt(sessions: sessionmaker[Session], ledger: Ledger) -> None:
    _publish_resource(sessions, ledger, "COL-1")
    row = publisher._claim(sessions, utcnow())
    assert row is not None
    signed = publisher._sign(sessions, ledger, row)
    assert signed.raw_tx is not None
    ledger.client.send_raw(bytes.fromhex(signed.raw_tx))  # broadcast, then the process dies
    block = ledger.client.block_number()
    # a second publisher must not take a row under a live lease...
    assert publisher.publish_due(sessions, ledger).touched == 0
    # ... and after the lease it finds the receipt instead of sending again
    report = publisher.publish_due(sessions, ledger, now=utcnow() + publisher.LEASE + timedelta(seconds=1))
    assert report.sent == 1
    assert ledger.client.block_number() == block
    assert len(_published_events(ledger)) == 1
    assert _rows(sessions)[0].block_number == block


def test_a_revert_is_kept_with_its_reason_and_can_be_retried(
    sessions: sessionmaker[Session], ledger: Ledger
) -> None:
    with sessions.begin() as session:
        enqueue(session, "request.ethics",
                {"request": "0x" + "11" * 32, "approved": True, "decision_hash": "0x" + "22" * 32},
                dedupe_key="request.ethics:unknown")
    _publish_resource(sessions, ledger, "COL-after")
    report = publisher.publish_due(sessions, ledger)
    assert (report.sent, report.failed) == (1, 1)  # the failure does not block later rows
    failed, sent = _rows(sessions)
    assert failed.status == OutboxStatus.FAILED and "reverted" in failed.last_error
    assert sent.status == OutboxStatus.SENT
    with sessions.begin() as session:
        publisher.retry_failed(session, failed.id)
    assert _rows(sessions)[0].status == OutboxStatus.PENDING
    with sessions.begin() as session, pytest.raises(Exception, match="only a failed"):
        publisher.retry_failed(session, sent.id)


def test_an_unknown_kind_fails_without_touching_the_chain(sessions: sessionmaker[Session], ledger: Ledger) -> None:
    with sessions.begin() as session:
        enqueue(session, "no.such.kind", {}, dedupe_key="x")
    block = ledger.client.block_number()
    assert publisher.publish_due(sessions, ledger).failed == 1
    assert "cannot encode" in _rows(sessions)[0].last_error
    assert ledger.client.block_number() == block


class FlakyChain:
    """The real client behind a switch that makes every chain call fail as an unreachable node would."""

    def __init__(self, inner: object) -> None:
        self.inner = inner
        self.down = False

    def __getattr__(self, name: str) -> object:
        attribute = getattr(self.inner, name)
        if not callable(attribute) or name == "close":
            return attribute

        def call(*args: object, **kwargs: object) -> object:
            if self.down:
                raise ChainUnavailable("connection refused")
            return attribute(*args, **kwargs)

        return call


def test_outage_leaves_a_visible_backlog_then_catches_up(sessions: sessionmaker[Session], ledger: Ledger) -> None:
    flaky = FlakyChain(ledger.client)
    ledger.client = flaky  # type: ignore[assignment]
    flaky.down = True
    for n in range(4):
        _publish_resource(sessions, ledger, f"COL-{n}")
    report = publisher.publish_due(sessions, ledger)
    assert report.sent == 0 and report.unavailable and "unavailable" in report.unavailable
    with sessions() as session:
        queue = publisher.backlog(session)
    assert queue.pending == 4 and queue.oldest_pending_at is not None and "unavailable" in queue.last_error
    first = _rows(sessions)[0]
    assert first.attempts == 1 and first.next_attempt_at > utcnow()  # backing off
    flaky.down = False
    assert publisher.publish_due(sessions, ledger).touched == 0  # not yet due
    report = publisher.publish_due(sessions, ledger, now=utcnow() + timedelta(minutes=5))
    assert report.sent == 4
    assert len(_published_events(ledger)) == 4


def test_backoff_doubles_up_to_the_cap() -> None:
    assert [publisher.backoff(n, 60).total_seconds() for n in (1, 2, 3, 6, 10)] == [2, 4, 8, 60, 60]
