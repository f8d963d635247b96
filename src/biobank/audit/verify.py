"""Verifying a node's log from the outside: signature, every leaf, the root, and consistency over time.

A verifier fetches the log's verifier key (pinned in a state file on first use), the latest signed
checkpoint and every leaf; it recomputes the RFC 6962 root with ``CompactRange`` and compares it with
the checkpoint, checks each entry sits at its own index, and checks the log still extends the last
checkpoint it verified. When something is wrong it names the first bad entry: a missing index, an
entry at the wrong place, or, when the root differs, the first index from which the served leaves
no longer match the node's own tree (a bisection with consistency proofs). The same code verifies
the local database (``LocalSource``) or a remote node over HTTP (``RemoteSource``).
"""

from __future__ import annotations

import base64
import json
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import httpx
from sqlalchemy.orm import Session, sessionmaker

from biobank.audit import keys
from biobank.audit import repository as repo
from biobank.audit.checkpoint import (
    MalformedCheckpoint,
    NoteError,
    NoteVerifier,
    open_note,
    parse_checkpoint,
)
from biobank.audit.checkpoints import with_cosignatures
from biobank.audit.encoding import EntryEncodingError, decode_entry
from biobank.audit.merkle import CompactRange, consistency_proof, leaf_hash, verify_consistency
from biobank.config import Settings

PAGE = 10_000
MAX_LISTED_PROBLEMS = 50
_INDEX_KEY = b'"index":'

Progress = Callable[[int, int], None]


class VerifyAborted(RuntimeError):
    """Verification cannot go on (the source failed to answer)."""


class LogSource(Protocol):
    """Where a verifier reads a log from."""

    def public_key(self) -> str:
        """The log's verifier key."""
        ...

    def checkpoint(self) -> str:
        """The latest signed checkpoint note (cosignatures included)."""
        ...

    def leaves(self, start: int, end: int) -> list[bytes | None]:
        """Leaves [start, end), None where one is missing; shorter when the log ends before ``end``."""
        ...

    def consistency_proof(self, first: int, second: int) -> list[bytes]:
        """The node's consistency proof from ``first`` to ``second``."""
        ...


class LocalSource:
    """This node's own database and key file (read-only; one short transaction per page)."""

    def __init__(self, session_factory: sessionmaker[Session], settings: Settings) -> None:
        self.session_factory = session_factory
        self.settings = settings

    def public_key(self) -> str:
        """The checkpoint verifier key from the node's key file."""
        return keys.log_signer(self.settings).vkey()

    def checkpoint(self) -> str:
        """The latest stored checkpoint with its cosignatures (none is made here)."""
        with self.session_factory() as session:
            latest = repo.latest_checkpoint(session)
            if latest is None:
                raise VerifyAborted("the log has no checkpoint yet: run `biobank audit checkpoint`")
            return with_cosignatures(session, latest).note

    def leaves(self, start: int, end: int) -> list[bytes | None]:
        """Stored leaves of [start, end), aligned by index."""
        with self.session_factory() as session:
            size = repo.tree_head(session)[0]
            rows = repo.leaves(session, start, end)
        end = min(end, max(size, start))
        if len(rows) == end - start and (not rows or (rows[0][0], rows[-1][0]) == (start, end - 1)):
            return [leaf for _, leaf in rows]  # indexes are unique and ordered: all are there
        found = dict(rows)
        return [found.get(i) for i in range(start, end)]

    def consistency_proof(self, first: int, second: int) -> list[bytes]:
        """The proof from the stored nodes."""
        with self.session_factory() as session:
            return consistency_proof(first, second, repo.SqlNodeReader(session))


class RemoteSource:
    """A node's API (``/api/v1/audit/...``) with a bearer token of a node admin or auditor."""

    def __init__(self, url: str, token: str | None, *, http: httpx.Client | None = None) -> None:
        self.url = url.rstrip("/")
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.http = http or httpx.Client(timeout=60.0)
        self.headers = headers

    def _get(self, path: str, **params: int) -> httpx.Response:
        try:
            response = self.http.get(self.url + path, params=params, headers=self.headers)
        except httpx.HTTPError as exc:
            raise VerifyAborted(f"{self.url}{path}: {type(exc).__name__}: {exc}") from None
        if response.status_code != 200:
            raise VerifyAborted(f"{self.url}{path} answered {response.status_code}: {response.text[:300]}")
        return response

    def public_key(self) -> str:
        """GET /api/v1/audit/public-key."""
        return self._get("/api/v1/audit/public-key").text.strip()

    def checkpoint(self) -> str:
        """GET /api/v1/audit/checkpoint."""
        return self._get("/api/v1/audit/checkpoint").text

    def leaves(self, start: int, end: int) -> list[bytes | None]:
        """GET /api/v1/audit/entries?start=&end= (the node caps end at its tree size)."""
        body = self._get("/api/v1/audit/entries", start=start, end=end).json()
        return [base64.b64decode(leaf) if leaf is not None else None for leaf in body["leaves"]]

    def consistency_proof(self, first: int, second: int) -> list[bytes]:
        """GET /api/v1/audit/proofs/consistency."""
        body = self._get("/api/v1/audit/proofs/consistency", first=first, second=second).json()
        return [base64.b64decode(h) for h in body["hashes"]]


# -- state file ------------------------------------------------------------------------------------------------


@dataclass
class VerifiedState:
    """What the verifier saw last time it succeeded: the pinned key and the checkpoint it verified."""

    origin: str
    vkey: str
    size: int
    root: str
    note: str
    verified_at: str

    @classmethod
    def load(cls, path: Path) -> VerifiedState | None:
        """Read a state file; None when there is none yet."""
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        return cls(**{k: data[k] for k in ("origin", "vkey", "size", "root", "note", "verified_at")})

    def save(self, path: Path) -> None:
        """Write atomically (a crash leaves the old file or the new one, never half of one)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(path.name + ".tmp")
        temporary.write_text(json.dumps(asdict(self), indent=2) + "\n", encoding="utf-8")
        os.replace(temporary, path)


def default_state_path(origin: str) -> Path:
    """``~/.biobank/audit-verify-<origin>.json`` (characters other than letters, digits, . and - become -)."""
    return Path.home() / ".biobank" / f"audit-verify-{re.sub(r'[^A-Za-z0-9.-]', '-', origin)}.json"


# -- verification ----------------------------------------------------------------------------------------------


@dataclass
class Report:
    """The outcome: ok only when every check held; problems in the order found; the first bad entry."""

    origin: str = ""
    size: int = 0
    root: bytes = b""
    checked: int = 0
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    first_bad: int | None = None
    state_path: Path | None = None
    unlisted: int = 0

    @property
    def ok(self) -> bool:
        """Whether the log verified."""
        return not self.problems

    def bad(self, index: int, problem: str) -> None:
        """Note a problem with one entry (the smallest index is the first bad entry)."""
        if len(self.problems) < MAX_LISTED_PROBLEMS:
            self.problems.append(problem)
        else:
            self.unlisted += 1
        if self.first_bad is None or index < self.first_bad:
            self.first_bad = index


def _claimed_index(leaf: bytes) -> int | None:
    """The entry's own ``index`` field, read without parsing the JSON (the top-level key is the last one)."""
    position = leaf.rfind(_INDEX_KEY)
    if position < 0:
        return None
    start = position + len(_INDEX_KEY)
    end = leaf.find(b",", start)
    digits = leaf[start:end]
    return int(digits) if digits.isdigit() else None


def verify_log(
    source: LogSource,
    *,
    state_path: Path | None = None,
    progress: Progress | None = None,
    accept_new_key: bool = False,
    witness_keys: Sequence[str] = (),
    deep: bool = False,
) -> Report:
    """Verify a log from ``source``; the state file is updated only when everything holds."""
    report = Report()
    try:
        _verify(source, report, state_path, progress, accept_new_key, witness_keys, deep)
    except VerifyAborted as exc:
        report.problems.append(str(exc))
    return report


def _verify(
    source: LogSource,
    report: Report,
    state_path: Path | None,
    progress: Progress | None,
    accept_new_key: bool,
    witness_keys: Sequence[str],
    deep: bool,
) -> None:
    vkey = source.public_key()
    try:
        verifier = NoteVerifier.from_vkey(vkey)
    except NoteError as exc:
        report.problems.append(f"the node's public key is not a verifier key: {exc}")
        return
    report.origin = verifier.name
    path = state_path or default_state_path(verifier.name)
    report.state_path = path
    state = VerifiedState.load(path)
    if state is not None and state.origin != verifier.name:
        report.problems.append(f"the state file {path} belongs to log {state.origin!r}, not {verifier.name!r}")
        return
    if state is not None and state.vkey != vkey:
        message = (
            f"THE LOG'S PUBLIC KEY CHANGED since {state.verified_at}: pinned {state.vkey}, now {vkey}. "
            "Unless the node's operator announced a key rotation, do not trust this log."
        )
        report.warnings.append(message)
        if not accept_new_key:
            report.problems.append(message + " Re-run with --accept-new-key after confirming the rotation.")
            return

    note = source.checkpoint()
    checkpoint = _open_checkpoint(note, verifier, witness_keys, report)
    if checkpoint is None:
        return
    size, tree_root = checkpoint
    report.size, report.root = size, tree_root

    old_size = state.size if state is not None else None
    compact, old_root, snapshots = _stream(source, size, old_size, report, progress, deep)
    if compact is None:
        _check_history(source, state, size, tree_root, None, report)
        return
    computed = compact.root()
    if computed != tree_root:
        located = _locate(source, size, tree_root, snapshots)
        where = f"; the first entry that differs from the node's tree is {located}" if located is not None else ""
        report.problems.append(f"the recomputed root of {size} entries differs from the signed checkpoint{where}")
        if located is not None:
            report.first_bad = located if report.first_bad is None else min(report.first_bad, located)
    _check_history(source, state, size, tree_root, old_root, report)
    if report.ok:
        VerifiedState(
            origin=verifier.name,
            vkey=vkey,
            size=size,
            root=base64.b64encode(tree_root).decode("ascii"),
            note=note,
            verified_at=datetime.now(UTC).isoformat(timespec="seconds"),
        ).save(path)


def _open_checkpoint(
    note: str, verifier: NoteVerifier, witness_keys: Sequence[str], report: Report
) -> tuple[int, bytes] | None:
    """Check the note's signature (and required cosignatures); the checkpoint's size and root."""
    witnesses = [NoteVerifier.from_vkey(k) for k in witness_keys]
    try:
        text, signers = open_note(note, [verifier, *witnesses])
        parsed = parse_checkpoint(text)
    except (NoteError, MalformedCheckpoint) as exc:
        report.problems.append(f"the checkpoint does not verify: {exc}")
        return None
    if verifier.name not in signers:
        report.problems.append("the checkpoint is not signed by the log's key")
        return None
    if parsed.origin != verifier.name:
        report.problems.append(f"the checkpoint's origin {parsed.origin!r} is not the key's name {verifier.name!r}")
        return None
    for witness in witnesses:
        if witness.name not in signers:
            report.problems.append(f"the checkpoint carries no valid cosignature from witness {witness.name}")
    return parsed.size, parsed.root


def _stream(
    source: LogSource,
    size: int,
    old_size: int | None,
    report: Report,
    progress: Progress | None,
    deep: bool,
) -> tuple[CompactRange | None, bytes | None, dict[int, list[bytes]]]:
    """Hash every leaf of [0, size); returns the range (None if entries are missing), the root at
    the previously verified size, and frontier snapshots at page boundaries (for locating)."""
    compact = CompactRange()
    snapshots: dict[int, list[bytes]] = {0: []}
    old_root = None
    for start in range(0, size, PAGE):
        end = min(size, start + PAGE)
        leaves = source.leaves(start, end)
        for index, leaf in enumerate(leaves, start):
            if leaf is None:
                report.bad(index, f"entry {index} is missing from the log")
                return None, old_root, snapshots
            # Fast path: the top-level "index" key is the last one in the canonical bytes.
            if deep or not leaf.startswith(b'"index":%d,' % index, leaf.rfind(_INDEX_KEY)):
                claimed = _check_entry(leaf, deep)
                if claimed != index:
                    what = "is not a canonical entry" if claimed is None else f"says it is entry {claimed}"
                    report.bad(index, f"entry {index} {what}")
        if len(leaves) < end - start:
            missing = start + len(leaves)
            report.bad(missing, f"the checkpoint covers {size} entries but the log ends at entry {missing}")
            return None, old_root, snapshots
        if old_size is not None and start < old_size <= end:
            split = old_size - start
            compact.extend_entries(leaves[:split])  # type: ignore[arg-type]
            old_root = compact.root()
            compact.extend_entries(leaves[split:])  # type: ignore[arg-type]
        else:
            compact.extend_entries(leaves)  # type: ignore[arg-type]
        snapshots[end] = compact.hashes
        report.checked = end
        if progress is not None:
            progress(end, size)
    return compact, old_root, snapshots


def _check_entry(leaf: bytes, deep: bool) -> int | None:
    """The entry's own index (deep: after a full canonical decode), None when it is not an entry."""
    if not deep:
        return _claimed_index(leaf)
    try:
        return decode_entry(leaf)["index"]
    except EntryEncodingError:
        return None


def _check_history(
    source: LogSource,
    state: VerifiedState | None,
    size: int,
    tree_root: bytes,
    old_root: bytes | None,
    report: Report,
) -> None:
    """The log must extend the checkpoint verified last time: never shrink, never rewrite."""
    if state is None or state.size == 0:
        return
    seen = f"size {state.size} verified on {state.verified_at}"
    expected = base64.b64decode(state.root)
    if size < state.size:
        report.bad(size, f"the log shrank: the checkpoint has {size} entries, fewer than the {seen}")
        return
    if old_root is not None and old_root != expected:
        report.problems.append(f"the first {state.size} entries differ from the checkpoint of {seen}")
    proof = source.consistency_proof(state.size, size)
    if not verify_consistency(state.size, size, expected, tree_root, proof):
        report.problems.append(f"the checkpoint of size {size} is not consistent with the {seen}")


def _locate(source: LogSource, size: int, tree_root: bytes, snapshots: dict[int, list[bytes]]) -> int | None:
    """The first entry from which the served leaves stop matching the signed tree, by bisection.

    A prefix of m leaves is good when the node's consistency proof from m to ``size`` verifies with
    our recomputed prefix root; good prefixes come first, so we bisect page boundaries, then leaves.
    """

    def good(m: int, hashes: list[bytes]) -> bool:
        if m == 0:
            return True
        prefix = CompactRange.from_hashes(m, hashes).root()
        return verify_consistency(m, size, prefix, tree_root, source.consistency_proof(m, size))

    bounds = sorted(b for b in snapshots if b < size)
    lo, hi = 0, len(bounds)  # bounds[lo] is good; every bound at or past hi is bad (size itself is)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if good(bounds[mid], snapshots[bounds[mid]]):
            lo = mid
        else:
            hi = mid
    start = bounds[lo]
    end = bounds[hi] if hi < len(bounds) else size
    page = source.leaves(start, end)
    if any(leaf is None for leaf in page):
        return None
    hashes = [leaf_hash(leaf) for leaf in page if leaf is not None]

    def good_at(m: int) -> bool:
        compact = CompactRange.from_hashes(start, snapshots[start])
        compact.extend(hashes[: m - start])
        return good(m, compact.hashes)

    lo_m, hi_m = start, end  # prefix lo_m is good, prefix hi_m is bad
    while hi_m - lo_m > 1:
        mid = (lo_m + hi_m) // 2
        if good_at(mid):
            lo_m = mid
        else:
            hi_m = mid
    return hi_m - 1


def describe(report: Report) -> dict[str, Any]:
    """The report as JSON-ready data."""
    return {
        "ok": report.ok,
        "origin": report.origin,
        "size": report.size,
        "root": base64.b64encode(report.root).decode("ascii") if report.root else None,
        "checked": report.checked,
        "first_bad_entry": report.first_bad,
        "problems": report.problems,
        "unlisted_problems": report.unlisted,
        "warnings": report.warnings,
    }
