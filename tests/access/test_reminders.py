"""Reminders, escalation and expiry with a fake clock; the job is idempotent and its notices are shown."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from biobank.access.models import AccessNotice, AccessRequest, AccessRequestProvider
from biobank.access.reminders import run_reminders
from biobank.ledger.models import LedgerOutbox
from tests.access.conftest import AccessWorld
from tests.access.factories import approve_ethics, make_access_request, move_provider


def approved(db: Session, aw: AccessWorld, collections: list[str] | None = None) -> AccessRequest:
    request = make_access_request(db, aw.users["researcher"], collections=collections or [aw.collection_a], submit=True)
    approve_ethics(db, request, aw.users["ethics"])
    db.commit()
    return request


def track(db: Session, request: AccessRequest) -> AccessRequestProvider:
    return db.scalars(select(AccessRequestProvider).where(AccessRequestProvider.request_id == request.id)).first()  # type: ignore[return-value]


def notices(db: Session, kind: str | None = None) -> list[AccessNotice]:
    stmt = select(AccessNotice).order_by(AccessNotice.id)
    if kind:
        stmt = stmt.where(AccessNotice.kind == kind)
    return list(db.scalars(stmt))


def test_nothing_before_the_reminder_time(aw: AccessWorld, db: Session) -> None:
    request = approved(db, aw)
    start = track(db, request).contacted_at
    assert start is not None
    run = run_reminders(db, start + timedelta(days=6, hours=23))
    assert run.reminders == [] and notices(db) == []


def test_drafts_and_submitted_requests_get_no_reminders(aw: AccessWorld, db: Session) -> None:
    request = make_access_request(db, aw.users["researcher"], collections=[aw.collection_a], submit=True)
    run = run_reminders(db, track(db, request).last_activity_at + timedelta(days=60))
    assert run.reminders == [] and run.escalations == [] and run.expired == []


def test_reminder_then_escalation_idempotent(aw: AccessWorld, db: Session, settings: Any) -> None:
    assert (settings.access_reminder_days, settings.access_escalation_days) == (7, 14)
    request = approved(db, aw)
    start = track(db, request).contacted_at
    day7 = start + timedelta(days=7, minutes=1)
    first = run_reminders(db, day7)
    assert first.reminders == [request.public_id] and first.escalations == []
    assert run_reminders(db, day7).reminders == [], "same moment: nothing new"
    assert run_reminders(db, day7 + timedelta(days=3)).reminders == [], "no new reminder before day 14"
    (reminder,) = notices(db)
    assert reminder.kind == "reminder" and "7 days" in reminder.message and aw.biobank_a in reminder.message
    day14 = start + timedelta(days=14, minutes=1)
    second = run_reminders(db, day14)
    assert second.reminders == [request.public_id] and second.escalations == [request.public_id]
    assert run_reminders(db, day14 + timedelta(hours=2)).escalations == []
    assert [n.kind for n in notices(db)] == ["reminder", "reminder", "escalation"]
    assert track(db, request).reminders_sent == 2 and track(db, request).escalated_at == day14
    db.commit()


def test_an_answer_restarts_the_clock(aw: AccessWorld, db: Session) -> None:
    request = approved(db, aw)
    start = track(db, request).contacted_at
    run_reminders(db, start + timedelta(days=8))
    move_provider(db, request, aw.biobank_a, "checking_availability", aw.users["owner"])
    moved = track(db, request).last_activity_at
    assert run_reminders(db, moved + timedelta(days=6)).reminders == []
    assert run_reminders(db, moved + timedelta(days=7, minutes=1)).reminders == [request.public_id]
    move_provider(db, request, aw.biobank_a, "available", aw.users["owner"])
    assert run_reminders(db, moved + timedelta(days=60)).reminders == [], "decided: nothing to remind"


def test_silence_expires_the_request(aw: AccessWorld, db: Session) -> None:
    request = approved(db, aw)
    start = track(db, request).contacted_at
    assert run_reminders(db, start + timedelta(days=27)).expired == []
    run = run_reminders(db, start + timedelta(days=28, minutes=1))
    assert run.expired == [request.public_id]
    assert db.get(AccessRequest, request.id).status == "expired"  # type: ignore[union-attr]
    expire_rows = list(db.scalars(select(LedgerOutbox).where(LedgerOutbox.kind == "request.expire")))
    assert [r.payload for r in expire_rows] == [{"request": request.chain_id}]
    assert run_reminders(db, start + timedelta(days=40)).expired == []
    assert len(notices(db, "expired")) == 1


def test_notices_show_in_the_inbox_and_on_the_request(aw: AccessWorld, db: Session) -> None:
    request = approved(db, aw)
    run_reminders(db, track(db, request).contacted_at + timedelta(days=15))
    db.commit()
    inbox = aw.owner.get("/api/v1/access/notices").json()
    assert {n["kind"] for n in inbox} == {"reminder", "escalation"}
    assert all(n["request"] == request.public_id and n["biobank"] == aw.biobank_a for n in inbox)
    assert aw.other.get("/api/v1/access/notices").json() == []
    assert aw.outsider.get("/api/v1/access/notices").json() == []
    assert len(aw.admin.get("/api/v1/access/notices").json()) == 2
    read = aw.requester.get(f"/api/v1/access/requests/{request.public_id}").json()
    assert len(read["notices"]) == 2 and read["provider_tracks"][0]["reminders_sent"] == 1


def test_cli_remind(aw: AccessWorld, db: Session) -> None:
    from biobank.access.cli import app
    from biobank.cli import SUBCOMMAND_MODULES

    assert SUBCOMMAND_MODULES["biobank.access.cli"] == "access"
    request = approved(db, aw)
    moment = (track(db, request).contacted_at + timedelta(days=8)).isoformat()
    db.rollback()
    result = CliRunner().invoke(app, ["remind", "--now", moment])
    assert result.exit_code == 0, result.output
    assert '"reminders": 1' in result.output
    again = CliRunner().invoke(app, ["remind", "--now", moment])
    assert '"reminders": 0' in again.output
    bad = CliRunner().invoke(app, ["remind", "--now", "yesterday"])
    assert bad.exit_code == 2
