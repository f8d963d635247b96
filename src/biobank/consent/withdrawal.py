"""Withdrawal: stop use at once, flag open requests, destroy when asked (tracked in the chain of custody),
and list what was already distributed for follow-up with its recipients.

Later packages plug in through two registries: open-request providers (the access package flags its
open requests that include the donor's specimens) and recipient providers (shipments know who received
a specimen). Both are plain callables registered by name; tests register fakes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.orm import Session

from biobank import audit
from biobank.config import get_settings
from biobank.consent import repository as repo
from biobank.consent.listeners import notify_consent_changed
from biobank.consent.models import (
    ConsentStatus,
    DestructionTask,
    DistributedFollowUp,
    TaskStatus,
    Withdrawal,
    WithdrawalKind,
)
from biobank.consent.schemas import DestructionTaskRead, FollowUpRead, WithdrawalCreate, WithdrawalRead
from biobank.donors.models import Donor
from biobank.identity.principal import Principal
from biobank.kit.db import utcnow
from biobank.kit.errors import Conflict, Invalid, NotFound, NotPermitted
from biobank.kit.ids import new_public_ids, new_uuid
from biobank.kit.plugins import optional_import


@dataclass(frozen=True)
class WithdrawnSpecimens:
    """What an open-request provider is told about a withdrawal."""

    donor: str
    withdrawal: str
    kind: WithdrawalKind
    specimen_ids: tuple[int, ...]
    specimen_public_ids: tuple[str, ...]


# (session, actor, what was withdrawn) -> public ids of the open requests flagged for review
OpenRequestProvider = Callable[[Session, Principal, WithdrawnSpecimens], list[str]]
# (session, specimen ids) -> recipient per distributed specimen id
RecipientProvider = Callable[[Session, list[int]], dict[int, str]]

_open_request_providers: dict[str, OpenRequestProvider] = {}
_recipient_providers: dict[str, RecipientProvider] = {}
# Modules that register providers when imported (the access package, when it exists).
PROVIDER_MODULES = ("biobank.access.consent_hooks",)


def register_open_request_provider(name: str, provider: OpenRequestProvider) -> None:
    """Plug in a source of open requests to flag for review when a donor withdraws."""
    _open_request_providers[name] = provider


def unregister_open_request_provider(name: str) -> None:
    """Remove a provider (tests)."""
    _open_request_providers.pop(name, None)


def register_recipient_provider(name: str, provider: RecipientProvider) -> None:
    """Plug in a source of recipients of distributed specimens (shipments)."""
    _recipient_providers[name] = provider


def unregister_recipient_provider(name: str) -> None:
    """Remove a provider (tests)."""
    _recipient_providers.pop(name, None)


def _load_provider_modules() -> None:
    for name in PROVIDER_MODULES:
        optional_import(name)


def _recipients(session: Session, specimen_ids: list[int]) -> dict[int, tuple[str, object]]:
    """Who received each distributed specimen and when: providers first, then the custody event's reason."""
    from biobank.specimens import service as specimens
    from biobank.specimens.models import Status

    events = specimens.last_status_events(session, specimen_ids, Status.DISTRIBUTED)
    out: dict[int, tuple[str, object]] = {}
    for sid in specimen_ids:
        event = events.get(sid)
        reason = (event.reason or "").strip() if event else ""
        out[sid] = (reason or "unknown recipient: see the chain of custody", event.at if event else None)
    for provider in _recipient_providers.values():
        for sid, recipient in provider(session, specimen_ids).items():
            if sid in out and recipient:
                out[sid] = (recipient, out[sid][1])
    return out


def withdraw(
    session: Session, principal: Principal, donor: Donor, data: WithdrawalCreate, *, channel: str
) -> Withdrawal:
    """Withdraw a donor's consent: excluded from eligibility at once, with everything that must follow."""
    from biobank.consent.accounts import notify
    from biobank.specimens import service as specimens
    from biobank.specimens.models import TERMINAL, Status

    if channel == "staff" and not principal.can_write(donor.biobank_id):
        raise NotPermitted("only the biobank's managers and technicians record withdrawals")
    record = repo.current_record(session, donor.id)
    if record is None:
        raise Invalid.field("consent", "the donor has no consent to withdraw", name="NoConsent")
    if record.status == ConsentStatus.WITHDRAWN:
        previous = repo.withdrawal_of_record(session, record.id)
        when = f" on {previous.at:%Y-%m-%d}" if previous else ""
        raise Invalid.field("consent", f"consent was already withdrawn{when}", name="AlreadyWithdrawn")
    record.status = ConsentStatus.WITHDRAWN
    notify_consent_changed(session, [donor.id])
    (public_id,) = new_public_ids(session, get_settings().institution_code, "WDR")
    withdrawal = Withdrawal(
        public_id=public_id,
        donor_id=donor.id,
        biobank_id=donor.biobank_id,
        consent_id=record.id,
        kind=data.kind,
        reason=data.reason,
        channel=channel,
        recorded_by=principal.public_id,
        at=utcnow(),
        flagged_requests=[],
    )
    session.add(withdrawal)
    session.flush()

    rows = specimens.of_donor(session, donor.id)
    distributed = [s for s in rows if s.status == Status.DISTRIBUTED]
    if data.kind is WithdrawalKind.DESTROY:
        for s in rows:
            if Status(s.status) not in TERMINAL:
                session.add(
                    DestructionTask(
                        public_id=new_uuid(), withdrawal_id=withdrawal.id, biobank_id=s.biobank_id, specimen_id=s.id
                    )
                )
    recipients = _recipients(session, [s.id for s in distributed])
    for s in distributed:
        recipient, at = recipients[s.id]
        session.add(
            DistributedFollowUp(
                public_id=new_uuid(),
                withdrawal_id=withdrawal.id,
                biobank_id=s.biobank_id,
                specimen_id=s.id,
                recipient=recipient[:300],
                distributed_at=at,
            )
        )
    _load_provider_modules()
    info = WithdrawnSpecimens(
        donor=donor.public_id,
        withdrawal=public_id,
        kind=data.kind,
        specimen_ids=tuple(s.id for s in rows),
        specimen_public_ids=tuple(s.public_id for s in rows),
    )
    flagged: list[str] = []
    for provider in list(_open_request_providers.values()):
        flagged.extend(provider(session, principal, info))
    withdrawal.flagged_requests = list(dict.fromkeys(flagged))
    session.flush()
    notify(
        session,
        donor.id,
        "withdrawal",
        "We recorded the withdrawal of your consent. Your samples and data will not be used in new studies.",
        "我们已记录您撤回同意。您的样本和数据将不会用于新的研究。",
        link="/portal",
    )
    audit.record(
        session,
        principal,
        "consent.withdraw",
        "consent",
        [donor.public_id, record.public_id, public_id, *info.specimen_public_ids],
        details={
            "kind": data.kind.value,
            "channel": channel,
            "specimens": len(rows),
            "destruction_tasks": sum(1 for s in rows if Status(s.status) not in TERMINAL)
            if data.kind is WithdrawalKind.DESTROY
            else 0,
            "follow_ups": len(distributed),
            "flagged_requests": len(withdrawal.flagged_requests),
        },
    )
    return withdrawal


def get_withdrawal(session: Session, principal: Principal, public_id: str) -> Withdrawal:
    """A withdrawal of one of the principal's biobanks (404 otherwise; audited)."""
    withdrawal = repo.withdrawal_by_public_id(session, public_id)
    if withdrawal is None or not principal.can_read(withdrawal.biobank_id):
        raise NotFound(f"no withdrawal {public_id!r}", name="WithdrawalNotFound")
    audit.record(session, principal, "consent.withdrawal.read", "consent", [withdrawal.public_id])
    return withdrawal


def complete_task(session: Session, principal: Principal, task_public_id: str, notes: str = "") -> DestructionTask:
    """Mark a destruction done: the specimen becomes destroyed through the chain of custody."""
    from biobank.specimens import service as specimens
    from biobank.specimens.models import TERMINAL, Status
    from biobank.specimens.schemas import StatusChange

    task = repo.task_by_public_id(session, task_public_id)
    if task is None or not principal.can_read(task.biobank_id):
        raise NotFound(f"no destruction task {task_public_id!r}", name="TaskNotFound")
    if not principal.can_write(task.biobank_id):
        raise NotPermitted("only the biobank's managers and technicians destroy specimens")
    if task.status == TaskStatus.DONE:
        raise Conflict("this destruction task is already done", name="TaskDone")
    withdrawal = repo.withdrawals_by_ids(session, [task.withdrawal_id])[task.withdrawal_id]
    specimen = specimens.by_ids(session, [task.specimen_id])[task.specimen_id]
    if Status(specimen.status) not in TERMINAL:
        reason = f"destroyed after consent withdrawal {withdrawal.public_id}" + (f": {notes}" if notes else "")
        specimens.change_status(session, principal, specimen, StatusChange(status=Status.DESTROYED, reason=reason))
    task.status = TaskStatus.DONE
    task.completed_at = utcnow()
    task.completed_by = principal.public_id
    task.notes = notes
    session.flush()
    audit.record(
        session,
        principal,
        "consent.destruction.complete",
        "specimen",
        [specimen.public_id, withdrawal.public_id],
        details={"final_status": str(specimen.status)},
    )
    return task


def resolve_follow_up(session: Session, principal: Principal, public_id: str, notes: str = "") -> DistributedFollowUp:
    """Close the follow-up of a distributed specimen (the recipient was told; what they did is in the notes)."""
    item = repo.follow_up_by_public_id(session, public_id)
    if item is None or not principal.can_read(item.biobank_id):
        raise NotFound(f"no follow-up {public_id!r}", name="FollowUpNotFound")
    if not principal.can_write(item.biobank_id):
        raise NotPermitted("only the biobank's managers and technicians resolve follow-ups")
    if item.status == TaskStatus.DONE:
        raise Conflict("this follow-up is already resolved", name="FollowUpDone")
    if not notes.strip():
        raise Invalid.field("notes", "say what the recipient was told and what they did")
    item.status = TaskStatus.DONE
    item.resolved_at = utcnow()
    item.resolved_by = principal.public_id
    item.notes = notes
    session.flush()
    audit.record(session, principal, "consent.followup.resolve", "consent", [item.public_id])
    return item


def open_work(
    session: Session, principal: Principal, *, status: TaskStatus | None = TaskStatus.OPEN
) -> tuple[list[DestructionTaskRead], list[FollowUpRead]]:
    """Destruction tasks and distributed follow-ups of the principal's biobanks."""
    ids = principal.visible_biobank_ids()
    tasks = repo.tasks(session, ids, status)
    follow_ups = repo.follow_ups(session, ids, status)
    audit.record(
        session,
        principal,
        "consent.withdrawal.work.list",
        "consent",
        [],
        details={"tasks": len(tasks), "follow_ups": len(follow_ups)},
    )
    return task_reads(session, tasks), follow_up_reads(session, follow_ups)


def task_reads(session: Session, tasks: list[DestructionTask]) -> list[DestructionTaskRead]:
    """API views of destruction tasks."""
    from biobank.specimens import service as specimens

    withdrawals = repo.withdrawals_by_ids(session, sorted({t.withdrawal_id for t in tasks}))
    rows = specimens.by_ids(session, sorted({t.specimen_id for t in tasks}))
    return [
        DestructionTaskRead(
            public_id=t.public_id,
            withdrawal=withdrawals[t.withdrawal_id].public_id,
            specimen=rows[t.specimen_id].public_id,
            status=t.status,
            created_at=t.created_at,
            completed_at=t.completed_at,
            notes=t.notes,
        )
        for t in tasks
    ]


def follow_up_reads(session: Session, items: list[DistributedFollowUp]) -> list[FollowUpRead]:
    """API views of follow-ups."""
    from biobank.specimens import service as specimens

    withdrawals = repo.withdrawals_by_ids(session, sorted({f.withdrawal_id for f in items}))
    rows = specimens.by_ids(session, sorted({f.specimen_id for f in items}))
    return [
        FollowUpRead(
            public_id=f.public_id,
            withdrawal=withdrawals[f.withdrawal_id].public_id,
            specimen=rows[f.specimen_id].public_id,
            recipient=f.recipient,
            distributed_at=f.distributed_at,
            status=f.status,
            created_at=f.created_at,
            resolved_at=f.resolved_at,
            notes=f.notes,
        )
        for f in items
    ]


def withdrawal_reads(session: Session, withdrawals: list[Withdrawal]) -> list[WithdrawalRead]:
    """API views of withdrawals with their tasks and follow-ups."""
    from biobank.donors import service as donors

    if not withdrawals:
        return []
    ids = [w.id for w in withdrawals]
    tasks = task_reads(session, repo.tasks_of(session, ids))
    follow_ups = follow_up_reads(session, repo.follow_ups_of(session, ids))
    donor_ids = donors.public_ids_by_id(session, sorted({w.donor_id for w in withdrawals}))
    records = repo.records_by_ids(session, sorted({w.consent_id for w in withdrawals}))
    return [
        WithdrawalRead(
            public_id=w.public_id,
            donor=donor_ids[w.donor_id],
            consent=records[w.consent_id].public_id,
            kind=w.kind,
            at=w.at,
            channel=w.channel,
            flagged_requests=list(w.flagged_requests or []),
            destruction_tasks=[t for t in tasks if t.withdrawal == w.public_id],
            follow_ups=[f for f in follow_ups if f.withdrawal == w.public_id],
        )
        for w in withdrawals
    ]


def of_records(session: Session, record_ids: list[int]) -> list[WithdrawalRead]:
    """Views of the withdrawals of these consent records (callers have checked the donor is visible)."""
    return withdrawal_reads(session, list(repo.withdrawals_by_consent(session, record_ids).values()))
