"""Anchoring: put the latest audit checkpoint (size, root) on chain every N seconds, and check anchors.

`anchor_latest` signs a checkpoint covering everything committed (when the log grew) and queues
`audit.anchor` for the publisher; the sent-hook records the block. `check_anchors` is what
`biobank audit verify` runs: every anchored root must be consistent with the verified log.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from biobank.audit import repository as audit_repo
from biobank.audit.checkpoints import make_checkpoint
from biobank.audit.merkle import verify_consistency
from biobank.config import Settings
from biobank.kit.db import utcnow
from biobank.ledger.models import LedgerAnchor, LedgerOutbox
from biobank.ledger.outbox import enqueue
from biobank.ledger.publisher import on_sent

if TYPE_CHECKING:
    from biobank.ledger.service import Ledger

ANCHOR_KIND = "audit.anchor"


def anchor_latest(session: Session, settings: Settings) -> LedgerAnchor | None:
    """Queue the latest checkpoint for the chain if it is larger than the last anchor; None otherwise."""
    make_checkpoint(session, settings, force=True)  # covers everything committed before this call
    latest = audit_repo.latest_checkpoint(session)
    if latest is None or latest.size == 0:
        return None
    last_size = session.scalar(select(func.max(LedgerAnchor.tree_size)))
    if last_size is not None and latest.size <= last_size:
        return None
    row = enqueue(session, ANCHOR_KIND, {"size": latest.size, "root": "0x" + latest.root.hex()},
                  dedupe_key=f"{ANCHOR_KIND}:{latest.size}")
    anchor = LedgerAnchor(tree_size=latest.size, root_hash=latest.root.hex(), outbox_id=row.id,
                          checkpoint_at=latest.created_at)
    session.add(anchor)
    session.flush()
    return anchor


def _record_block(session: Session, row: LedgerOutbox) -> None:
    anchor = session.scalars(select(LedgerAnchor).where(LedgerAnchor.outbox_id == row.id)).first()
    if anchor is not None:
        anchor.tx_hash, anchor.block_number, anchor.anchored_at = row.tx_hash, row.block_number, utcnow()


on_sent(ANCHOR_KIND, _record_block)


def recent_anchors(session: Session, limit: int = 20) -> list[LedgerAnchor]:
    """The latest anchors, newest first."""
    return list(session.scalars(select(LedgerAnchor).order_by(LedgerAnchor.tree_size.desc()).limit(limit)))


@dataclass(frozen=True)
class ChainAnchor:
    """One anchor as read from the chain."""

    size: int
    root: bytes
    block_number: int


def check_anchors(
    anchors: Iterable[ChainAnchor], size: int, root: bytes, proof_of: ProofSource
) -> list[str]:
    """Problems with anchored roots against a verified log of `size` entries with root `root`.

    An anchor of a size the log reached must be consistent with it (consistency proof from the
    anchored size to the verified size); an anchor beyond the verified size means the chain saw
    more of the log than the node now shows (a truncation).
    """
    problems = []
    for anchor in anchors:
        if anchor.size > size:
            problems.append(
                f"the chain anchors {anchor.size} entries (block {anchor.block_number}) but the log has only {size}"
            )
            continue
        if anchor.size == size:
            if anchor.root != root:
                problems.append(
                    f"the anchored root at size {size} (block {anchor.block_number}) differs from the log's"
                )
            continue
        proof = proof_of.consistency_proof(anchor.size, size)
        if not verify_consistency(anchor.size, size, anchor.root, root, proof):
            problems.append(
                f"the anchored root at size {anchor.size} (block {anchor.block_number}) is not consistent with the log"
            )
    return problems


class ProofSource:
    """Anything with `consistency_proof(first, second)` (audit.verify.LogSource)."""

    def consistency_proof(self, first: int, second: int) -> Sequence[bytes]:  # pragma: no cover - protocol
        """The consistency proof from `first` to `second`."""
        raise NotImplementedError


def chain_anchors(ledger: Ledger, institution: str | None = None) -> list[ChainAnchor]:
    """Every anchor an institution (default: this node's) put on chain, oldest first."""
    inst = bytes.fromhex((institution or ledger.institution).removeprefix("0x"))
    contract = ledger.handle("AuditAnchors")
    count = int(contract.call("anchor_count", inst))
    out = []
    for index in range(count):
        size, root, block_number, _timestamp = contract.call("anchor_at", inst, index)
        out.append(ChainAnchor(int(size), bytes(root), int(block_number)))
    return out


def verify_log_anchors(settings: Settings, sessions: sessionmaker[Session], source: ProofSource, size: int,
                       root: bytes) -> tuple[int, list[str]]:
    """For `biobank audit verify`: (anchors checked, problems) of this node's anchors on chain."""
    from biobank.ledger.service import open_ledger

    ledger = open_ledger(settings, sessions)
    try:
        anchors = chain_anchors(ledger)
    finally:
        ledger.close()
    return len(anchors), check_anchors(anchors, size, root, source)
