"""API views of the audit log: entries with their exact leaf bytes, proofs, leaf ranges, access history."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from biobank.kit.schemas import ReadSchema

Scalar = str | int | bool | None


class EntryRead(ReadSchema):
    """An entry's fields (decoded from its leaf) and ``leaf``: base64 of the exact bytes that are hashed."""

    index: int
    time: str | None = None
    actor: str | None = None
    institution: str | None = None
    action: str | None = None
    resource_type: str | None = None
    resource_ids: list[str] = Field(default_factory=list)
    purpose: str | None = None
    outcome: str | None = None
    client_hash: str | None = None
    details: dict[str, Scalar] = Field(default_factory=dict)
    v: int | None = None
    leaf: str
    leaf_hash: str
    problem: str | None = None  # set when the stored bytes are not a canonical entry of this index


class InclusionProofRead(ReadSchema):
    """RFC 9162 inclusion proof of leaf ``index`` in the tree of ``size`` leaves (base64 hashes)."""

    index: int
    size: int
    hashes: list[str]


class ConsistencyProofRead(ReadSchema):
    """RFC 9162 consistency proof from tree size ``first`` to ``second`` (base64 hashes)."""

    first: int
    second: int
    hashes: list[str]


class LeavesRead(ReadSchema):
    """Leaves [start, end) as base64, null where the stored entry is missing; ``size`` is the tree size."""

    start: int
    end: int
    size: int
    leaves: list[str | None]


class AccessRead(ReadSchema):
    """One access to a donor's data or specimens: when, which institution, what, why. Never who."""

    index: int
    at: datetime
    institution: str
    action: str
    outcome: str
    purpose: str | None
    resource_ids: list[str]


class WitnessEventRead(ReadSchema):
    """A cosignature or refusal by a witness peer, or a log this node refused as a witness."""

    at: datetime
    role: str
    peer: str
    size: int
    outcome: str
    status: int | None
    message: str
