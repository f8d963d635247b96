"""Reading the log (node admins and auditors): entries, leaf ranges, proofs, browsing; the public head."""

from __future__ import annotations

import base64
from dataclasses import dataclass

from sqlalchemy.orm import Session

from biobank.audit import checkpoints, keys
from biobank.audit import repository as repo
from biobank.audit.checkpoint import NoteError, open_note
from biobank.audit.encoding import EntryEncodingError, decode_entry
from biobank.audit.merkle import consistency_proof, inclusion_proof, leaf_hash, verify_inclusion
from biobank.audit.models import AuditEntry
from biobank.audit.schemas import (
    ConsistencyProofRead,
    EntryRead,
    InclusionProofRead,
    LeavesRead,
    WitnessEventRead,
)
from biobank.audit.service import record
from biobank.config import Settings
from biobank.identity.principal import Principal
from biobank.kit.crypto import b64
from biobank.kit.errors import Invalid, NotFound
from biobank.kit.pagination import PageParams, paginate

MAX_LEAVES_PER_REQUEST = 10_000
ENTRY_SORTS = {"index": AuditEntry.idx, "at": AuditEntry.at}


def require_auditor(principal: Principal) -> None:
    """Only node admins and auditors read the log; to anyone else it does not exist."""
    if not (principal.is_admin or principal.is_auditor):
        raise NotFound("no audit log here", name="AuditLogNotFound")


def _tree_size(session: Session) -> int:
    return repo.tree_head(session)[0]


def _check_index(name: str, value: int, limit: int, what: str) -> None:
    if value >= limit:
        raise Invalid.field(name, f"must be below {what} {limit}", name="IndexOutOfRange", value=value)


def _check_size(name: str, value: int, size: int) -> None:
    if value > size:
        raise Invalid.field(name, f"must not exceed the tree size {size}", name="SizeOutOfRange", value=value)


def entry_view(stored: AuditEntry) -> EntryRead:
    """An entry as served: the fields decoded from the stored leaf bytes, and the bytes themselves."""
    leaf = bytes(stored.leaf)
    common = {"index": stored.idx, "leaf": b64(leaf), "leaf_hash": b64(leaf_hash(leaf))}
    try:
        fields = decode_entry(leaf)
    except EntryEncodingError as exc:
        return EntryRead(**common, problem=f"the stored leaf is not a canonical entry: {exc}")
    problem = None if fields["index"] == stored.idx else f"the leaf says index {fields['index']}"
    return EntryRead(**{**fields, **common}, problem=problem)


def get_entry(session: Session, principal: Principal, index: int) -> EntryRead:
    """One entry with its exact leaf bytes (the read is itself recorded)."""
    require_auditor(principal)
    _check_index("index", index, _tree_size(session), "the tree size")
    stored = repo.entry(session, index)
    if stored is None:
        raise NotFound(f"entry {index} is missing from the log", name="AuditEntryMissing")
    record(session, principal, "audit.entry.read", "audit_entry", [str(index)])
    return entry_view(stored)


def leaves_range(session: Session, principal: Principal, start: int, end: int | None) -> LeavesRead:
    """Leaves [start, end) (at most 10,000; end is capped at the tree size), for verifiers."""
    require_auditor(principal)
    size = _tree_size(session)
    if start > size:
        raise Invalid.field("start", f"must not exceed the tree size {size}", name="IndexOutOfRange", value=start)
    if end is not None and end < start:
        raise Invalid.field("end", "must not be below start", value=end)
    if end is not None and end - start > MAX_LEAVES_PER_REQUEST:
        raise Invalid.field("end", f"at most {MAX_LEAVES_PER_REQUEST:,} leaves per request", value=end)
    end = min(size, start + MAX_LEAVES_PER_REQUEST if end is None else end)
    stored = dict(repo.leaves(session, start, end))
    record(session, principal, "audit.entries.read", "audit_entry", [], details={"start": start, "end": end})
    leaves = [b64(stored[i]) if i in stored else None for i in range(start, end)]
    return LeavesRead(start=start, end=end, size=size, leaves=leaves)


def inclusion(session: Session, principal: Principal, index: int, size: int) -> InclusionProofRead:
    """The inclusion proof of leaf ``index`` in the tree of ``size`` leaves."""
    require_auditor(principal)
    _check_size("size", size, _tree_size(session))
    _check_index("index", index, size, "size")
    hashes = inclusion_proof(index, size, repo.SqlNodeReader(session))
    return InclusionProofRead(index=index, size=size, hashes=[b64(h) for h in hashes])


def consistency(session: Session, principal: Principal, first: int, second: int) -> ConsistencyProofRead:
    """The consistency proof from tree size ``first`` to ``second``."""
    require_auditor(principal)
    _check_size("second", second, _tree_size(session))
    if first > second:
        raise Invalid.field("first", "must not exceed second", name="SizeOutOfRange", value=first)
    hashes = consistency_proof(first, second, repo.SqlNodeReader(session))
    return ConsistencyProofRead(first=first, second=second, hashes=[b64(h) for h in hashes])


def checkpoint_note(session: Session, settings: Settings) -> str:
    """The latest signed checkpoint with its cosignatures (public: it holds no personal data)."""
    return checkpoints.current(session, settings).note


def public_key(settings: Settings) -> str:
    """The checkpoint verifier key (signed-note verifier format)."""
    return keys.log_signer(settings).vkey()


def witness_public_key(settings: Settings) -> str:
    """This node's cosigner verifier key, for logs that want it as a witness."""
    return keys.witness_signer(settings).cosigner_vkey()


def browse(
    session: Session, principal: Principal, where: repo.EntryFilter, params: PageParams
) -> tuple[list[EntryRead], int]:
    """A filtered page of the log, newest first (the query is recorded)."""
    require_auditor(principal)
    params = params.validated(ENTRY_SORTS)
    rows, total = paginate(session, repo.filtered_entries(where), params, ENTRY_SORTS, "-index")
    record(
        session,
        principal,
        "audit.entries.search",
        "audit_entry",
        [],
        details={
            "actor": where.actor,
            "action": where.action,
            "resource_type": where.resource_type,
            "resource": where.resource_id,
            "since": where.since.isoformat() if where.since else None,
            "until": where.until.isoformat() if where.until else None,
            "page": params.page,
            "returned": len(rows),
        },
    )
    return [entry_view(row) for row in rows], total


@dataclass(frozen=True)
class EntryProof:
    """An entry with its inclusion proof in the latest signed checkpoint, checked here."""

    entry: EntryRead
    checkpoint_note: str | None
    checkpoint_size: int
    checkpoint_root: str | None
    proof: list[str]
    signature_ok: bool
    included: bool | None  # None: the entry is newer than the latest checkpoint


def entry_with_proof(session: Session, principal: Principal, settings: Settings, index: int) -> EntryProof:
    """An entry, the latest checkpoint (made now if due) and the entry's inclusion proof in it, verified."""
    entry = get_entry(session, principal, index)
    signed = checkpoints.current(session, settings)
    verifier = keys.log_signer(settings).verifier()
    try:
        open_note(signed.note, [verifier])
        signature_ok = True
    except NoteError:
        signature_ok = False
    if index >= signed.size:
        return EntryProof(entry, signed.note, signed.size, b64(signed.root), [], signature_ok, None)
    proof = inclusion_proof(index, signed.size, repo.SqlNodeReader(session))
    included = verify_inclusion(base64.b64decode(entry.leaf_hash), index, signed.size, proof, signed.root)
    return EntryProof(
        entry, signed.note, signed.size, b64(signed.root), [b64(h) for h in proof], signature_ok, included
    )


@dataclass(frozen=True)
class WitnessStatus:
    """What the auditor sees about witnessing: peers, the latest checkpoint's cosignatures, events."""

    origin: str
    public_key: str
    witness_key: str
    checkpoint: checkpoints.SignedCheckpoint | None
    cosigners: list[str]
    peers: list[dict[str, object]]
    events: list[WitnessEventRead]
    witnessed: list[dict[str, object]]


def witness_status(session: Session, principal: Principal, settings: Settings) -> WitnessStatus:
    """Witness peers and their cosignatures and refusals, and the logs this node witnesses."""
    from biobank.audit.witness import configured_peers

    require_auditor(principal)
    latest = repo.latest_checkpoint(session)
    signed = checkpoints.with_cosignatures(session, latest) if latest is not None else None
    cosigners = [c.witness for c in repo.cosignatures(session, [latest.size])] if latest is not None else []
    known = {p.url: p for p in repo.peers(session)}
    peers: list[dict[str, object]] = [
        {
            "url": p.url,
            "vkey": p.vkey or (known[p.url].vkey if p.url in known else None),
            "cosigned_size": known[p.url].cosigned_size if p.url in known else 0,
            "updated_at": known[p.url].updated_at if p.url in known else None,
        }
        for p in configured_peers(settings)
    ]
    witnessed: list[dict[str, object]] = [
        {"origin": s.origin, "size": s.size, "root": b64(s.root), "updated_at": s.updated_at}
        for s in repo.witness_states(session)
    ]
    return WitnessStatus(
        origin=keys.log_origin(settings),
        public_key=public_key(settings),
        witness_key=witness_public_key(settings),
        checkpoint=signed,
        cosigners=cosigners,
        peers=peers,
        events=[WitnessEventRead.model_validate(e) for e in repo.recent_events(session, 100)],
        witnessed=witnessed,
    )
