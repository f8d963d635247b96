"""Reminders and escalations for providers that do not answer, and expiry of requests nobody answers.

`run_reminders(session, now)` is a job: run it as often as you like (`biobank access remind`, a timer);
every notice is keyed by (track, kind, the moment it fell due), so a second run at the same `now` adds
nothing and a run that was missed catches up with one notice per kind. Clocks start when ethics approves
the request (the provider is contacted) and restart with every state change of the track.

- reminder: every `access_reminder_days` of silence (the latest due one is recorded);
- escalation: once per silence, after `access_escalation_days`; shown to the biobank's managers, the
  requester and node administrators;
- expiry: a request whose providers have all stayed silent for twice the escalation time expires
  (`request.expire` goes on chain).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from biobank import audit
from biobank.access import chain
from biobank.access import repository as repo
from biobank.access.models import (
    AWAITING_PROVIDER,
    AccessNotice,
    AccessRequest,
    AccessRequestProvider,
    NoticeKind,
    ProviderState,
    RequestStatus,
)
from biobank.config import get_settings
from biobank.identity.principal import system_principal


@dataclass
class ReminderRun:
    """What one run recorded (request public ids)."""

    reminders: list[str] = field(default_factory=list)
    escalations: list[str] = field(default_factory=list)
    expired: list[str] = field(default_factory=list)


def _days(delta: timedelta) -> int:
    return int(delta.total_seconds() // 86400)


def _notice(
    session: Session,
    request: AccessRequest,
    provider: AccessRequestProvider | None,
    kind: NoticeKind,
    due: datetime,
    days: int,
    message: str,
    now: datetime,
) -> None:
    session.add(
        AccessNotice(
            request_id=request.id,
            provider_id=provider.id if provider else None,
            biobank_id=provider.biobank_id if provider else None,
            kind=kind,
            due_at=due,
            days_waiting=days,
            message=message,
            created_at=now,
        )
    )


def run_reminders(session: Session, now: datetime) -> ReminderRun:
    """Record the reminders, escalations and expiries due at `now` (idempotent; the caller commits)."""
    from biobank.institutions import service as institutions

    settings = get_settings()
    remind_every = timedelta(days=settings.access_reminder_days)
    escalate_after = timedelta(days=settings.access_escalation_days)
    actor = system_principal(settings.institution_code)
    run = ReminderRun()
    tracks = repo.waiting_tracks(session, [s.value for s in AWAITING_PROVIDER])
    codes = institutions.biobank_codes(session, sorted({p.biobank_id for p, _ in tracks}))
    by_request: dict[int, AccessRequest] = {}
    for provider, request in tracks:
        by_request[request.id] = request
        since = provider.last_activity_at
        silent = now - since
        code = codes[provider.biobank_id]
        due_count = int(silent / remind_every)
        if due_count >= 1:
            due = since + due_count * remind_every
            if not repo.notice_exists(session, provider.id, NoticeKind.REMINDER, due):
                message = (
                    f"Reminder: biobank {code} has not answered request {request.public_id} "
                    f"for {_days(silent)} days (state: {provider.state})."
                )
                _notice(session, request, provider, NoticeKind.REMINDER, due, _days(silent), message, now)
                provider.reminders_sent += 1
                run.reminders.append(request.public_id)
        if silent >= escalate_after:
            due = since + escalate_after
            if not repo.notice_exists(session, provider.id, NoticeKind.ESCALATION, due):
                message = (
                    f"Escalation: biobank {code} has not answered request {request.public_id} "
                    f"within {settings.access_escalation_days} days; its managers and the node administrators "
                    "are asked to act."
                )
                _notice(session, request, provider, NoticeKind.ESCALATION, due, _days(silent), message, now)
                provider.escalated_at = now
                run.escalations.append(request.public_id)
    session.flush()
    providers = repo.providers_of(session, sorted(by_request))
    for request_id, request in by_request.items():
        tracks_of = providers[request_id]
        if not tracks_of or any(ProviderState(p.state) not in AWAITING_PROVIDER for p in tracks_of):
            continue
        contacted = min(p.contacted_at for p in tracks_of if p.contacted_at is not None)
        last = max(p.last_activity_at for p in tracks_of)
        deadline = max(contacted, last) + 2 * escalate_after
        if now < deadline:
            continue
        request.status = RequestStatus.EXPIRED
        request.closed_at = now
        message = f"Request {request.public_id} expired: no provider answered within {2 * escalate_after.days} days."
        _notice(session, request, None, NoticeKind.EXPIRED, deadline, _days(now - contacted), message, now)
        chain.enqueue_expire(session, request)
        run.expired.append(request.public_id)
    session.flush()
    for action, ids in (
        ("access.request.remind", run.reminders),
        ("access.request.escalate", run.escalations),
        ("access.request.expire", run.expired),
    ):
        if ids:
            audit.record(session, actor, action, "access_request", sorted(set(ids)), details={"count": len(ids)})
    return run
