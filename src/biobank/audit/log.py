"""Appending to the log: gap-free indexes under concurrency, exact leaf bytes, tree nodes, resource links.

Appends run at commit time (the ``before_commit`` listener in ``audit.service``) under the head-row
lock, so the lock is held only from the append to the commit. See
docs/decisions/2026-11-21-audit-append-serialisation.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from sqlalchemy.orm import Session

from biobank.audit import repository as repo
from biobank.audit.encoding import ENCODING_VERSION, encode_entry, format_time
from biobank.audit.merkle import append_and_root, leaf_hash

if TYPE_CHECKING:
    from biobank.audit.service import PendingEntry


def entry_fields(index: int, entry: PendingEntry) -> dict[str, object]:
    """The fields of an entry as they are encoded into its leaf."""
    return {
        "index": index,
        "time": format_time(entry.at),
        "actor": entry.actor,
        "institution": entry.institution,
        "action": entry.action,
        "resource_type": entry.resource_type,
        "resource_ids": entry.resource_ids,
        "purpose": entry.purpose,
        "outcome": entry.outcome,
        "client_hash": entry.client_hash,
        "details": entry.details,
        "v": ENCODING_VERSION,
    }


_INDEX_MARKER = b'"index":0,"institution":'


def leaf_template(entry: PendingEntry) -> bytes:
    """The entry's canonical bytes with index 0 (validates every field; raises EntryEncodingError)."""
    # The datetime itself (not its text) spares formatting and re-parsing the time: same bytes.
    return encode_entry(
        {
            "index": 0,
            "time": entry.at,
            "actor": entry.actor,
            "institution": entry.institution,
            "action": entry.action,
            "resource_type": entry.resource_type,
            "resource_ids": entry.resource_ids,
            "purpose": entry.purpose,
            "outcome": entry.outcome,
            "client_hash": entry.client_hash,
            "details": entry.details,
            "v": ENCODING_VERSION,
        }
    )


def with_index(template: bytes, index: int) -> bytes:
    """The canonical bytes of a template entry at ``index``: exactly ``encode_entry`` with that index.

    Keys are sorted, so the top-level ``"index":0,"institution":`` is the last occurrence of that text
    (``details`` sorts before ``index``, and string values cannot hold an unescaped quote).
    """
    position = template.rfind(_INDEX_MARKER)
    if position < 0:
        raise ValueError("not an entry template")
    return b'%s"index":%d,"institution":%s' % (
        template[:position],
        index,
        template[position + len(_INDEX_MARKER) :],
    )


def append_entries(session: Session, entries: Sequence[PendingEntry]) -> range:
    """Append entries at the end of the log in this transaction; returns their indexes.

    Under the head lock: one read of the old frontier, the new nodes and root
    (``merkle.append_and_root``), three bulk inserts and the head update.
    """
    if not entries:
        return range(0)
    templates = [entry.leaf or leaf_template(entry) for entry in entries]
    start, _ = repo.lock_head(session)
    rows: list[repo.EntryRow] = []
    links: list[tuple[str, int]] = []
    hashes: list[bytes] = []
    for index, (entry, template) in enumerate(zip(entries, templates, strict=True), start):
        leaf = with_index(template, index)
        hashes.append(leaf_hash(leaf))
        rows.append(
            (
                index,
                entry.at,
                entry.actor,
                entry.institution,
                entry.action,
                entry.resource_type,
                entry.resource_ids,
                entry.purpose,
                entry.outcome,
                leaf,
            )
        )
        links.extend((rid, index) for rid in dict.fromkeys(entry.resource_ids))
    nodes, root = append_and_root(start, hashes, repo.SqlNodeReader(session))
    repo.insert_appended(session, rows, links, nodes)
    repo.set_head(session, start + len(rows), root)
    return range(start, start + len(rows))
