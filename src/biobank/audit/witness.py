"""Witnessing, both ways (C2SP tlog-witness): this node cosigns the logs it follows, and submits its own
checkpoints to its witness peers, storing their cosignatures and refusals."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache

import httpx
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from biobank.audit import keys
from biobank.audit import repository as repo
from biobank.audit.checkpoint import (
    NoteError,
    NoteVerifier,
    WitnessBadRequest,
    WitnessConflict,
    WitnessError,
    WitnessState,
    WitnessUnknownLog,
    format_add_checkpoint_request,
    parse_add_checkpoint_request,
    parse_checkpoint,
    verify_cosignature,
    witness_add_checkpoint,
)
from biobank.audit.merkle import consistency_proof
from biobank.audit.models import AuditCosignature, AuditWitnessEvent, AuditWitnessPeer
from biobank.config import Settings
from biobank.kit.db import utcnow

log = logging.getLogger("biobank.audit")

ADD_CHECKPOINT_PATH = "/api/v1/audit/witness/add-checkpoint"
WITNESS_KEY_PATH = "/api/v1/audit/witness/public-key"
MAX_REQUEST_BYTES = 64 * 1024
HTTP_TIMEOUT_SECONDS = 10.0


# -- this node as a witness ----------------------------------------------------------------------------------


@lru_cache(maxsize=16)
def _parse_log_keys(vkeys: tuple[str, ...]) -> dict[str, list[NoteVerifier]]:
    followed: dict[str, list[NoteVerifier]] = {}
    for vkey in vkeys:
        verifier = NoteVerifier.from_vkey(vkey)
        followed.setdefault(verifier.name, []).append(verifier)
    return followed


def followed_logs(settings: Settings) -> dict[str, list[NoteVerifier]]:
    """The logs this node witnesses: origin (= key name) to its trusted verifier keys."""
    return _parse_log_keys(tuple(settings.audit_witness_logs))


def _origin_of(note: str) -> str:
    return note.split("\n", 1)[0]


def _record(session: Session, event: AuditWitnessEvent) -> None:
    """Store an outcome unless it repeats the last one for the same peer (jobs retry every few seconds)."""
    last = next((e for e in repo.recent_events(session, 20, role=event.role) if e.peer == event.peer), None)
    if last is not None and (last.size, last.outcome, last.message) == (event.size, event.outcome, event.message):
        return
    session.add(event)
    session.flush()


def add_checkpoint(session: Session, settings: Settings, body: bytes, *, now: datetime | None = None) -> str:
    """tlog-witness add-checkpoint: check the request against our record of the log; the cosignature line.

    Refusals (403, 409, 422) are recorded as witness events and kept although the request fails.
    """
    now = now or utcnow()
    if len(body) > MAX_REQUEST_BYTES:
        raise WitnessBadRequest(f"request body is larger than {MAX_REQUEST_BYTES} bytes")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise WitnessBadRequest("request body is not UTF-8") from None
    old_size, proof, note = parse_add_checkpoint_request(text)
    origin = _origin_of(note)
    verifiers = followed_logs(settings).get(origin)
    if not verifiers:
        raise WitnessUnknownLog("this witness does not follow the checkpoint's origin")
    row = repo.witness_state(session, origin)
    state = WitnessState(origin, row.size, bytes(row.root)) if row is not None else None
    try:
        new_state, line = witness_add_checkpoint(
            state,
            old_size,
            proof,
            note,
            verifiers,
            witness_signer=keys.witness_signer(settings),
            timestamp=int(now.timestamp()),
            origin=origin,
        )
        if state is None or (new_state.size, new_state.root) != (state.size, state.root):
            _advance(session, origin, state, new_state, now)
    except WitnessError as exc:
        if exc.status_code in (403, 409, 422):
            # An unverified note's size means nothing (and anyone may post one): 403s record size 0,
            # so that repeats are stored once.
            size = 0 if exc.status_code == 403 else _claimed_size(note)
            _record(
                session,
                AuditWitnessEvent(
                    at=now,
                    role="witness",
                    peer=origin,
                    size=size,
                    outcome="refused",
                    status=exc.status_code,
                    message=str(exc.detail),
                ),
            )
            exc.keep_changes = True
        raise
    _record(
        session,
        AuditWitnessEvent(at=now, role="witness", peer=origin, size=new_state.size, outcome="cosigned", status=200),
    )
    return line


def _advance(session: Session, origin: str, state: WitnessState | None, new: WitnessState, now: datetime) -> None:
    """Store the new state with a compare-and-swap on the old one; a lost race is a 409."""
    try:
        with session.begin_nested():
            won = repo.advance_witness_state(
                session,
                origin,
                state.size if state else 0,
                state.root if state else None,
                new.size,
                new.root,
                now,
            )
    except IntegrityError:
        won = False
    if not won:
        current = repo.witness_state(session, origin, fresh=True)
        raise WitnessConflict(
            "another checkpoint was cosigned meanwhile", latest_size=current.size if current is not None else 0
        )


def _claimed_size(note: str) -> int:
    try:
        return parse_checkpoint(note[: note.rfind("\n\n") + 1]).size
    except ValueError:
        return 0


# -- this node's checkpoints, submitted to its witness peers ----------------------------------------------------


@dataclass(frozen=True)
class Peer:
    """A configured witness: base URL and, when configured, its cosigner verifier key."""

    url: str
    vkey: str | None


def configured_peers(settings: Settings) -> list[Peer]:
    """Peers from settings.audit_witnesses: ``"<url>"`` or ``"<url> <cosigner verifier key>"``."""
    peers = []
    for item in settings.audit_witnesses:
        url, _, vkey = item.strip().partition(" ")
        peers.append(Peer(url.rstrip("/"), vkey.strip() or None))
    return peers


@dataclass(frozen=True)
class Submission:
    """What one submission to one witness came to."""

    peer: str
    size: int
    outcome: str  # cosigned | refused | error | skipped
    status: int | None = None
    message: str = ""


def _verifier_for(peer: Peer, pinned: str | None, http: httpx.Client) -> NoteVerifier:
    """The peer's cosigner key: configured, else pinned at first contact (trust on first use)."""
    if peer.vkey:
        return NoteVerifier.from_vkey(peer.vkey)
    if pinned:
        return NoteVerifier.from_vkey(pinned)
    response = http.get(peer.url + WITNESS_KEY_PATH, timeout=HTTP_TIMEOUT_SECONDS)
    response.raise_for_status()
    log.warning("audit witness key pinned on first use", extra={"peer": peer.url})
    return NoteVerifier.from_vkey(response.text.strip())


def submit(session_factory: sessionmaker[Session], settings: Settings, http: httpx.Client) -> list[Submission]:
    """Submit the latest checkpoint to every configured witness peer that has not cosigned it yet.

    Each peer: a short transaction to read what to send, the HTTP call outside any transaction, and
    a short transaction to store the cosignature or the refusal.
    """
    results = []
    for peer in configured_peers(settings):
        try:
            results.append(_submit_one(session_factory, settings, peer, http))
        except Exception as exc:  # one unreachable peer must not stop the others
            log.warning("audit witness submission failed", extra={"peer": peer.url, "error": type(exc).__name__})
            outcome = Submission(peer.url, 0, "error", None, f"{type(exc).__name__}: {exc}"[:500])
            with session_factory.begin() as session:
                _record(session, _event(outcome))
            results.append(outcome)
    return results


def _event(outcome: Submission) -> AuditWitnessEvent:
    return AuditWitnessEvent(
        at=utcnow(),
        role="log",
        peer=outcome.peer,
        size=outcome.size,
        outcome=outcome.outcome,
        status=outcome.status,
        message=outcome.message,
    )


def _submit_one(
    session_factory: sessionmaker[Session], settings: Settings, peer: Peer, http: httpx.Client
) -> Submission:
    with session_factory() as session:
        latest = repo.latest_checkpoint(session)
        if latest is None:
            return Submission(peer.url, 0, "skipped", message="no checkpoint yet")
        size, note = latest.size, latest.note
        row = repo.peer(session, peer.url)
        old, pinned = (row.cosigned_size, row.vkey) if row is not None else (0, None)
        if old == size and pinned and repo.has_cosignature(session, size, NoteVerifier.from_vkey(pinned).name):
            return Submission(peer.url, size, "skipped", message="already cosigned")
    verifier = _verifier_for(peer, pinned, http)
    outcome: Submission | None = None
    for _attempt in range(2):
        with session_factory() as session:
            proof = consistency_proof(old, size, repo.SqlNodeReader(session)) if old <= size else []
        body = format_add_checkpoint_request(old, proof, note)
        response = http.post(
            peer.url + ADD_CHECKPOINT_PATH,
            content=body.encode("utf-8"),
            headers={"Content-Type": "text/plain; charset=utf-8"},
            timeout=HTTP_TIMEOUT_SECONDS,
        )
        if response.status_code == 409 and response.headers.get("content-type", "").startswith("text/x.tlog.size"):
            latest_size = _size_body(response.text)
            if latest_size is not None and latest_size != old and latest_size <= size:
                old = latest_size  # the witness knows a later size of ours: prove consistency from it
                continue
            outcome = Submission(
                peer.url,
                size,
                "refused",
                409,
                f"the witness has cosigned size {latest_size} of this log, which this checkpoint "
                f"(size {size}) does not extend from size {old}: entries were removed or rewritten",
            )
        elif response.status_code == 200:
            outcome = _store_cosignature(session_factory, peer, verifier, size, note, response.text)
        elif response.status_code == 400 and old > size:
            outcome = Submission(
                peer.url,
                size,
                "refused",
                400,
                f"this checkpoint (size {size}) is smaller than size {old}, which the witness already cosigned: "
                "entries were removed from the log (truncated)",
            )
        else:
            reason = {
                422: f"the witness rejected the consistency proof from size {old} to {size}: "
                "this log's history differs from what the witness cosigned",
                403: "the witness does not trust this node's log key",
                404: "the witness does not follow this log",
            }.get(response.status_code, "the witness refused the checkpoint")
            detail = response.text.strip()[:300]
            outcome = Submission(peer.url, size, "refused", response.status_code, f"{reason} ({detail})")
        break
    assert outcome is not None
    if outcome.outcome != "cosigned":
        with session_factory.begin() as session:
            _record(session, _event(outcome))
    return outcome


def _size_body(text: str) -> int | None:
    value = text.strip()
    return int(value) if value.isdigit() else None


def _store_cosignature(
    session_factory: sessionmaker[Session], peer: Peer, verifier: NoteVerifier, size: int, note: str, text: str
) -> Submission:
    """Verify the witness's cosignature line over our checkpoint and store it with the peer's new size."""
    body = note[: note.rfind("\n\n") + 1]
    timestamp = None
    line = ""
    for candidate in text.splitlines():
        try:
            timestamp = verify_cosignature(body, candidate, verifier)
        except (NoteError, ValueError):
            continue
        line = candidate + "\n"
        break
    if timestamp is None:
        return Submission(peer.url, size, "error", 200, "the response holds no valid cosignature from the witness key")
    with session_factory.begin() as session:
        row = repo.peer(session, peer.url)
        if row is None:
            row = AuditWitnessPeer(url=peer.url)
            session.add(row)
        row.vkey = row.vkey or verifier.vkey()
        row.cosigned_size = size
        row.updated_at = utcnow()
        if not repo.has_cosignature(session, size, verifier.name):
            session.add(
                AuditCosignature(
                    checkpoint_size=size,
                    witness=verifier.name,
                    line=line,
                    cosigned_at=datetime.fromtimestamp(timestamp, UTC),
                    received_at=utcnow(),
                )
            )
        outcome = Submission(peer.url, size, "cosigned", 200)
        _record(session, _event(outcome))
    return outcome
