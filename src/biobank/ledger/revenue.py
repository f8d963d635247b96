"""Revenue shares: each institution's credited, withdrawn and available accounting units, read from
the mirrored RevenueLedger events; withdrawals are pulled by the institution's admin through the outbox."""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from biobank.audit.service import record
from biobank.config import Settings
from biobank.identity.principal import Principal
from biobank.kit.errors import Invalid, NotFound
from biobank.ledger.models import LedgerChainEvent, LedgerOutbox, OutboxStatus
from biobank.ledger.outbox import enqueue
from biobank.ledger.refs import institution_ref

WITHDRAW = "revenue.withdraw"


@dataclass(frozen=True)
class Share:
    """One institution's position in accounting units."""

    institution: str  # bytes32 hex
    credited: int
    withdrawn: int

    @property
    def balance(self) -> int:
        """What it may still withdraw."""
        return self.credited - self.withdrawn


def shares(session: Session, chain_id: int | None) -> list[Share]:
    """Every institution credited on this chain, largest balance first."""
    if chain_id is None:
        return []
    events = session.scalars(
        select(LedgerChainEvent).where(
            LedgerChainEvent.chain_id == chain_id,
            LedgerChainEvent.event.in_(("Credited", "RemainderAssigned", "Withdrawn")),
        )
    ).all()
    credited: dict[str, int] = defaultdict(int)
    withdrawn: dict[str, int] = defaultdict(int)
    for event in events:
        inst, amount = str(event.args.get("inst", "")), int(event.args.get("amount", 0))
        (withdrawn if event.event == "Withdrawn" else credited)[inst] += amount
    out = [Share(inst, credited[inst], withdrawn[inst]) for inst in set(credited) | set(withdrawn)]
    return sorted(out, key=lambda s: (-s.balance, s.institution))


def queued_withdrawals(session: Session) -> int:
    """Units of withdrawals queued but not yet on chain."""
    rows = session.scalars(select(LedgerOutbox).where(
        LedgerOutbox.kind == WITHDRAW, LedgerOutbox.status.in_([OutboxStatus.PENDING, OutboxStatus.SENDING]))).all()
    return sum(int(row.payload.get("amount", 0)) for row in rows)


def request_withdrawal(session: Session, principal: Principal, settings: Settings, amount: int,
                       chain_id: int | None) -> LedgerOutbox:
    """As a node admin: book out part of the local institution's balance (the chain checks it again)."""
    if not principal.is_admin:
        raise NotFound("no ledger status here", name="LedgerNotFound")
    own = institution_ref(settings.institution_code)
    available = next((s.balance for s in shares(session, chain_id) if s.institution == own), 0)
    available -= queued_withdrawals(session)
    if amount <= 0:
        raise Invalid.field("amount", "give a positive whole number of accounting units", value=amount)
    if amount > available:
        raise Invalid.field("amount", f"only {available} units are available", value=amount)
    row = enqueue(session, WITHDRAW, {"inst": own, "amount": amount}, dedupe_key=f"{WITHDRAW}:{uuid.uuid4()}")
    record(session, principal, "ledger.revenue.withdraw", "institution", [settings.institution_code],
           details={"amount": amount})
    return row
