"""Signed checkpoints of the node's log: made every N seconds or M entries, served with cosignatures."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from biobank.audit import keys
from biobank.audit import repository as repo
from biobank.audit.checkpoint import format_checkpoint, sign_note
from biobank.audit.merkle import consistency_proof, root, verify_consistency
from biobank.audit.models import AuditCheckpoint, AuditWitnessEvent
from biobank.config import Settings
from biobank.kit.db import utcnow
from biobank.kit.errors import BiobankError

log = logging.getLogger("biobank.audit")


class LogInconsistent(BiobankError):
    """The stored tree disagrees with the head or with the node's own last checkpoint: nothing is signed."""

    status_code = 500
    default_name = "AuditLogInconsistent"


@dataclass(frozen=True)
class SignedCheckpoint:
    """A checkpoint note as served: the node's signed note followed by any stored cosignature lines."""

    size: int
    root: bytes
    note: str
    created_at: datetime


def is_due(latest: AuditCheckpoint | None, size: int, settings: Settings, now: datetime) -> bool:
    """Whether the tree grew by M entries, or grew at all and the latest checkpoint is N seconds old."""
    if latest is None:
        return True
    grown = size - latest.size
    if grown <= 0:
        return False
    old = now - latest.created_at >= timedelta(seconds=settings.audit_checkpoint_seconds)
    return old or grown >= settings.audit_checkpoint_entries


def make_checkpoint(session: Session, settings: Settings, *, force: bool = False) -> AuditCheckpoint | None:
    """Sign a checkpoint of the current tree when one is due (or forced); None when nothing to do.

    Safe to run twice and from several processes: it holds the head lock while it reads the head and
    signs, so two runs never sign different roots for one size, and an existing size is not re-signed.
    Before signing it checks that the stored nodes give the head's root and extend the last
    checkpoint; a node whose tree was damaged refuses to sign and records why.
    """
    size, tree_root = repo.lock_head(session)
    latest = repo.latest_checkpoint(session)
    now = utcnow()
    if latest is not None and latest.size >= size:
        return None
    if not force and not is_due(latest, size, settings, now):
        return None
    reader = repo.SqlNodeReader(session)
    problem = _check_tree(size, tree_root, latest, reader)
    if problem:
        last = repo.recent_events(session, 1, role="self")
        if not last or (last[0].size, last[0].message) != (size, problem):
            session.add(
                AuditWitnessEvent(
                    at=now, role="self", peer=keys.log_origin(settings), size=size, outcome="refused", message=problem
                )
            )
            session.flush()
        log.error("audit checkpoint refused", extra={"size": size, "problem": problem})
        raise LogInconsistent(problem, keep_changes=True)
    body = format_checkpoint(keys.log_origin(settings), size, tree_root)
    checkpoint = AuditCheckpoint(
        size=size, root=tree_root, note=sign_note(body, [keys.log_signer(settings)]), created_at=now
    )
    session.add(checkpoint)
    session.flush()
    return checkpoint


def _check_tree(size: int, tree_root: bytes, latest: AuditCheckpoint | None, reader: repo.SqlNodeReader) -> str:
    """'' when the stored nodes give the head's root and extend the last checkpoint, else why not."""
    try:
        if root(size, reader) != tree_root:
            return f"the stored tree of size {size} does not hash to the head's root"
        if latest is not None and latest.size > 0:
            proof = consistency_proof(latest.size, size, reader)
            if not verify_consistency(latest.size, size, latest.root, tree_root, proof):
                return f"the tree of size {size} does not extend the last checkpoint (size {latest.size})"
    except LookupError as exc:
        return f"the stored tree is incomplete: {exc}"
    return ""


def with_cosignatures(session: Session, checkpoint: AuditCheckpoint) -> SignedCheckpoint:
    """The checkpoint's note with the cosignature lines stored for it appended."""
    lines = "".join(
        c.line if c.line.endswith("\n") else c.line + "\n" for c in repo.cosignatures(session, [checkpoint.size])
    )
    return SignedCheckpoint(checkpoint.size, checkpoint.root, checkpoint.note + lines, checkpoint.created_at)


def current(session: Session, settings: Settings) -> SignedCheckpoint:
    """The latest checkpoint, signing a new one first when it is due (so a reader is never far behind)."""
    latest = repo.latest_checkpoint(session)
    size, _ = repo.tree_head(session)
    if latest is None or is_due(latest, size, settings, utcnow()):
        try:
            made = make_checkpoint(session, settings, force=latest is None)
        except LogInconsistent:
            if latest is None:
                raise
            made = None  # the refusal is recorded; serve the last checkpoint signed before it
        latest = made or repo.latest_checkpoint(session)
    assert latest is not None
    return with_cosignatures(session, latest)
