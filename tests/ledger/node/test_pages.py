"""Ledger API and pages: who sees them, what they show, the retry action."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from biobank.ledger import publisher
from biobank.ledger.models import LedgerOutbox, OutboxStatus
from biobank.ledger.outbox import enqueue
from biobank.ledger.service import Ledger


def _queue_failed_and_pending(sessions: sessionmaker[Session], ledger: Ledger) -> None:
    with sessions.begin() as session:
        enqueue(session, "request.close", {"request": "0x" + "33" * 32}, dedupe_key="close:unknown")
    publisher.publish_due(sessions, ledger)  # reverts: no such request
    with sessions.begin() as session:
        enqueue(session, "audit.anchor", {"size": 1, "root": "0x" + "44" * 32}, dedupe_key="anchor:1")


def test_status_api_for_admin_only(world, sessions, ledger) -> None:  # type: ignore[no-untyped-def]
    _queue_failed_and_pending(sessions, ledger)
    response = world.admin.get("/api/v1/ledger/status")
    assert response.status_code == 200, response.text
    backlog = response.json()["backlog"]
    assert (backlog["pending"], backlog["failed"]) == (1, 1)
    assert "reverted" in backlog["last_error"]
    for persona in (world.owner, world.other, world.outsider):
        assert persona.get("/api/v1/ledger/status").status_code == 404
    assert world.admin.client.get("/api/v1/ledger/status").status_code == 401


def test_outbox_api_filters_and_retry(world, sessions, ledger) -> None:  # type: ignore[no-untyped-def]
    _queue_failed_and_pending(sessions, ledger)
    failed = world.admin.get("/api/v1/ledger/outbox", params={"status": "failed"}).json()
    assert failed["total"] == 1 and failed["items"][0]["kind"] == "request.close"
    assert world.admin.get("/api/v1/ledger/outbox", params={"status": "bogus"}).status_code == 422
    row_id = failed["items"][0]["id"]
    assert world.owner.post(f"/api/v1/ledger/outbox/{row_id}/retry").status_code == 404
    retried = world.admin.post(f"/api/v1/ledger/outbox/{row_id}/retry")
    assert retried.status_code == 200 and retried.json()["status"] == OutboxStatus.PENDING
    assert world.admin.post(f"/api/v1/ledger/outbox/{row_id}/retry").status_code == 409
    assert world.admin.post("/api/v1/ledger/outbox/999999/retry").status_code == 404
    assert world.admin.post(f"/api/v1/ledger/outbox/{2**70}/retry").status_code == 422
    assert world.admin.post("/api/v1/ledger/outbox/abc/retry").status_code == 422


def test_status_page_shows_backlog_anchors_and_chart(web, sessions, ledger) -> None:  # type: ignore[no-untyped-def]
    _queue_failed_and_pending(sessions, ledger)
    admin = web("admin")
    page = admin.get("/ledger")
    assert page.status_code == 200
    assert 'data-testid="backlog-pending">1<' in page.text
    assert 'data-testid="backlog-failed">1<' in page.text
    assert 'id="outbox-chart"' in page.text and "request.close" in page.text
    assert web("owner").get("/ledger").status_code == 404


def test_retry_from_the_page(web, sessions, ledger) -> None:  # type: ignore[no-untyped-def]
    _queue_failed_and_pending(sessions, ledger)
    admin = web("admin")
    with sessions() as session:
        row_id = session.scalars(select(LedgerOutbox.id).where(LedgerOutbox.status == OutboxStatus.FAILED)).one()
    refused = admin.post(f"/ledger/outbox/{row_id}/retry", {}, csrf=False)
    assert refused.status_code in (403, 400)
    done = admin.post(f"/ledger/outbox/{row_id}/retry", {})
    assert done.status_code == 303
    assert 'data-testid="backlog-failed">0<' in admin.get("/ledger").text


def test_consortium_page_lists_mirrored_events(web, sessions, ledger) -> None:  # type: ignore[no-untyped-def]
    from biobank.ledger.sync import sync_events

    with sessions.begin() as session:
        enqueue(session, "audit.anchor", {"size": 7, "root": "0x" + "55" * 32}, dedupe_key="anchor:7")
    publisher.publish_due(sessions, ledger)
    assert sync_events(sessions, ledger) > 0
    page = web("admin").get("/ledger/consortium")
    assert page.status_code == 200
    assert ledger.settings.institution_code in page.text  # institution resolved from InstitutionAdded
    assert "<td>7</td>" in page.text
