"""Canonical bytes of an audit entry: the exact input of its RFC 6962 leaf hash.

Encoding (version 1), documented in docs/audit-log.md:

* a JSON object with exactly the fields of ``ENTRY_FIELDS``; no field is ever omitted (absent
  values are ``null``), no other field is allowed; ``v`` is the encoding version, ``1``;
* keys sorted by code point, no whitespace (``,`` and ``:`` separators), UTF-8, non-ASCII
  characters written as themselves (not ``\\uXXXX``), control characters escaped as JSON requires;
* numbers are integers only, within ±(2**53 - 1) so every JSON reader keeps them exact; floats,
  NaN and infinities are refused;
* ``time`` is UTC, RFC 3339 with exactly six fractional digits and ``Z``
  (``2026-11-21T09:30:00.000000Z``); ``client_hash`` is lowercase hex or null; ``details`` is a
  flat object of printable-ASCII keys to string, integer, boolean or null values.

For this value set the output is byte-identical to RFC 8785 (JSON Canonicalization Scheme), so a
verifier in another language can re-derive it. ``decode_entry`` accepts only bytes that
``encode_entry`` would produce, so every entry has exactly one encoding.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import TypedDict, cast

ENTRY_FIELDS = (
    "action",
    "actor",
    "client_hash",
    "details",
    "index",
    "institution",
    "outcome",
    "purpose",
    "resource_ids",
    "resource_type",
    "time",
    "v",
)
ENCODING_VERSION = 1
"""Value of the ``v`` field: bumped only with a documented new encoding (verifiers must know each)."""
MAX_SAFE_INTEGER = 2**53 - 1
MAX_TEXT_LENGTH = 4096
MAX_DETAILS = 64

_TIME_RE = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z")
_HEX_RE = re.compile(r"[0-9a-f]{1,128}")
_DETAIL_KEY_RE = re.compile(r"[\x20-\x7e]{1,64}")
_TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"

Scalar = str | int | bool | None


class AuditEntryFields(TypedDict):
    """The decoded fields of one audit entry."""

    index: int
    time: str
    actor: str
    institution: str
    action: str
    resource_type: str
    resource_ids: list[str]
    purpose: str | None
    outcome: str
    client_hash: str | None
    details: dict[str, Scalar]
    v: int


class EntryEncodingError(ValueError):
    """An audit entry that cannot be encoded, or bytes that are not a canonical entry."""


def format_time(moment: datetime) -> str:
    """The canonical entry time of a timezone-aware datetime (converted to UTC)."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise EntryEncodingError("time must be timezone-aware")
    return moment.astimezone(UTC).strftime(_TIME_FORMAT)


def _text(field: str, value: object, *, allow_empty: bool = False) -> str:
    if not isinstance(value, str):
        raise EntryEncodingError(f"{field} must be a string, got {type(value).__name__}")
    if not value and not allow_empty:
        raise EntryEncodingError(f"{field} must not be empty")
    if len(value) > MAX_TEXT_LENGTH:
        raise EntryEncodingError(f"{field} is longer than {MAX_TEXT_LENGTH} characters")
    if not value.isascii():  # ASCII text cannot hold a lone surrogate (and isascii() is O(1))
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise EntryEncodingError(f"{field} is not valid Unicode text (lone surrogate)") from None
    return value


def _integer(field: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        if isinstance(value, float):
            raise EntryEncodingError(f"{field}: floats are not allowed in audit entries, use an integer")
        raise EntryEncodingError(f"{field} must be an integer, got {type(value).__name__}")
    if abs(value) > MAX_SAFE_INTEGER:
        raise EntryEncodingError(f"{field} is outside ±(2**53 - 1)")
    return value


def _time(value: object) -> str:
    if isinstance(value, datetime):
        return format_time(value)
    text = _text("time", value)
    if not _TIME_RE.fullmatch(text):
        raise EntryEncodingError("time must be RFC 3339 UTC with microseconds, e.g. 2026-11-21T09:30:00.000000Z")
    try:
        datetime.strptime(text, _TIME_FORMAT)
    except ValueError:
        raise EntryEncodingError(f"time is not a valid date and time: {text}") from None
    return text


def _details(value: object) -> dict[str, Scalar]:
    if not isinstance(value, Mapping):
        raise EntryEncodingError(f"details must be an object, got {type(value).__name__}")
    if len(value) > MAX_DETAILS:
        raise EntryEncodingError(f"details has more than {MAX_DETAILS} keys")
    out: dict[str, Scalar] = {}
    for key, item in value.items():
        if not isinstance(key, str) or not _DETAIL_KEY_RE.fullmatch(key):
            raise EntryEncodingError(f"details key {key!r} must be 1-64 printable ASCII characters")
        where = f"details.{key}"
        if item is None or isinstance(item, bool):
            out[key] = item
        elif isinstance(item, int | float):
            out[key] = _integer(where, item)
        elif isinstance(item, str):
            out[key] = _text(where, item, allow_empty=True)
        else:
            raise EntryEncodingError(f"{where} must be a string, integer, boolean or null, got {type(item).__name__}")
    return out


def _validate(fields: Mapping[str, object]) -> AuditEntryFields:
    """Check every field and return them in their canonical Python form."""
    if not isinstance(fields, Mapping):
        raise EntryEncodingError("an audit entry must be a mapping of fields")
    keys = set(fields)
    missing = sorted(set(ENTRY_FIELDS) - keys)
    unknown = sorted(str(k) for k in keys - set(ENTRY_FIELDS))
    if missing or unknown:
        parts = ([f"missing {', '.join(missing)}"] if missing else []) + (
            [f"unknown {', '.join(unknown)}"] if unknown else []
        )
        raise EntryEncodingError(f"audit entry fields: {'; '.join(parts)}")
    index = _integer("index", fields["index"])
    if index < 0:
        raise EntryEncodingError("index must not be negative")
    ids = fields["resource_ids"]
    if isinstance(ids, str | bytes) or not isinstance(ids, Sequence):
        raise EntryEncodingError("resource_ids must be a list of strings")
    purpose = fields["purpose"]
    client_hash = fields["client_hash"]
    version = fields["v"]
    if type(version) is not int or version != ENCODING_VERSION:
        raise EntryEncodingError(f"v must be the encoding version {ENCODING_VERSION}, got {version!r}")
    if client_hash is not None and (not isinstance(client_hash, str) or not _HEX_RE.fullmatch(client_hash)):
        raise EntryEncodingError("client_hash must be lowercase hex (at most 128 digits) or null")
    return {
        "index": index,
        "time": _time(fields["time"]),
        "actor": _text("actor", fields["actor"]),
        "institution": _text("institution", fields["institution"]),
        "action": _text("action", fields["action"]),
        "resource_type": _text("resource_type", fields["resource_type"]),
        "resource_ids": [_text(f"resource_ids[{i}]", rid) for i, rid in enumerate(ids)],
        "purpose": None if purpose is None else _text("purpose", purpose, allow_empty=True),
        "outcome": _text("outcome", fields["outcome"]),
        "client_hash": client_hash,
        "details": _details(fields["details"]),
        "v": ENCODING_VERSION,
    }


def encode_entry(fields: Mapping[str, object]) -> bytes:
    """The canonical bytes of an audit entry (raises EntryEncodingError naming the bad field)."""
    entry = _validate(fields)
    return json.dumps(entry, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode("utf-8")


def _refuse_float(text: str) -> object:
    raise EntryEncodingError(f"floats are not allowed in audit entries: {text}")


def _refuse_constant(text: str) -> object:
    raise EntryEncodingError(f"{text} is not allowed in audit entries")


def _unique_keys(pairs: list[tuple[str, object]]) -> dict[str, object]:
    result: dict[str, object] = {}
    for key, value in pairs:
        if key in result:
            raise EntryEncodingError(f"duplicate key {key!r}")
        result[key] = value
    return result


def decode_entry(data: bytes) -> AuditEntryFields:
    """Parse canonical entry bytes; refuses anything encode_entry would not have produced."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise EntryEncodingError("an encoded audit entry must be bytes")
    raw = bytes(data)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise EntryEncodingError(f"entry is not valid UTF-8: {exc.reason}") from None
    try:
        parsed = json.loads(
            text,
            parse_float=_refuse_float,
            parse_constant=_refuse_constant,
            object_pairs_hook=_unique_keys,
        )
    except json.JSONDecodeError as exc:
        raise EntryEncodingError(f"entry is not JSON: {exc.msg} at position {exc.pos}") from None
    if not isinstance(parsed, dict):
        raise EntryEncodingError("an audit entry must be a JSON object")
    entry = _validate(cast(dict[str, object], parsed))
    if encode_entry(entry) != raw:
        raise EntryEncodingError("entry bytes are not in canonical form")
    return entry
