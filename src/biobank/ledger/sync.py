"""Mirror the consortium contracts' events into the database, so pages and other nodes' facts are
read locally (a second node sees the first node's agreements and anchors here)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from biobank.kit.db import utcnow
from biobank.ledger.models import LedgerChainEvent, LedgerSyncState
from biobank.ledger.service import Ledger
from biobank.ledger.verify import normalise

MAX_BLOCKS_PER_ROUND = 5_000


def sync_events(sessions: sessionmaker[Session], ledger: Ledger, *, max_blocks: int = MAX_BLOCKS_PER_ROUND) -> int:
    """Copy the events of new blocks (up to `max_blocks` per call); returns how many were added."""
    chain_id = ledger.client.chain_id
    head = ledger.client.block_number()
    with sessions() as session:
        state = session.get(LedgerSyncState, chain_id)
        start = (state.last_block + 1) if state is not None else 0
    if start > head:
        return 0
    end = min(head, start + max_blocks - 1)
    rows = []
    for name in ledger.addresses:
        for event_name, args, entry in ledger.handle(name).events(from_block=start, to_block=end):
            rows.append(LedgerChainEvent(
                chain_id=chain_id, block_number=entry.block_number, log_index=entry.log_index,
                tx_hash="0x" + entry.tx_hash.hex(), contract=name, event=event_name,
                args={key: normalise(value) for key, value in args.items()},
            ))
    with sessions.begin() as session:
        state = session.get(LedgerSyncState, chain_id)
        if state is None:
            state = LedgerSyncState(chain_id=chain_id, last_block=-1)
            session.add(state)
        if state.last_block >= end:  # another process got here first
            return 0
        session.add_all(rows)
        state.last_block, state.updated_at = end, utcnow()
    return len(rows)


def recent_events(session: Session, chain_id: int, *, events: tuple[str, ...] | None = None,
                  limit: int = 50) -> list[LedgerChainEvent]:
    """Mirrored events, newest first, optionally of some event names only."""
    query = select(LedgerChainEvent).where(LedgerChainEvent.chain_id == chain_id)
    if events:
        query = query.where(LedgerChainEvent.event.in_(events))
    query = query.order_by(LedgerChainEvent.block_number.desc(), LedgerChainEvent.log_index.desc()).limit(limit)
    return list(session.scalars(query))
