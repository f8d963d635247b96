"""The canonical audit entry encoding: exact bytes, one encoding per entry, clear refusals."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from biobank.audit.encoding import (
    ENTRY_FIELDS,
    MAX_SAFE_INTEGER,
    EntryEncodingError,
    decode_entry,
    encode_entry,
    format_time,
)


def fields(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "index": 41,
        "time": "2026-11-21T09:30:00.123456Z",
        "actor": "usr-7f3a",
        "institution": "CN-SH-RJ",
        "action": "specimen.read",
        "resource_type": "specimen",
        "resource_ids": ["CN-SH-RJ:SPC-000123", "CN-SH-RJ:SPC-000124"],
        "purpose": "project:P-2026-004",
        "outcome": "success",
        "client_hash": "0123456789abcdef0123456789abcdef",
        "details": {"count": 2, "redacted": False, "criteria": "ICD-10 C50", "note": None},
        "v": 1,
    }
    base.update(overrides)
    return base


def test_exact_bytes() -> None:
    encoded = encode_entry(fields())
    assert encoded == (
        b'{"action":"specimen.read","actor":"usr-7f3a","client_hash":"0123456789abcdef0123456789abcdef",'
        b'"details":{"count":2,"criteria":"ICD-10 C50","note":null,"redacted":false},"index":41,'
        b'"institution":"CN-SH-RJ","outcome":"success","purpose":"project:P-2026-004",'
        b'"resource_ids":["CN-SH-RJ:SPC-000123","CN-SH-RJ:SPC-000124"],"resource_type":"specimen",'
        b'"time":"2026-11-21T09:30:00.123456Z","v":1}'
    )
    assert list(json.loads(encoded)) == list(ENTRY_FIELDS)


def test_round_trip_and_key_order_independence() -> None:
    original = fields(purpose=None, client_hash=None, resource_ids=[], details={})
    encoded = encode_entry(original)
    assert decode_entry(encoded) == original
    assert encode_entry(dict(reversed(list(original.items())))) == encoded


def test_non_ascii_is_utf8_and_controls_are_escaped() -> None:
    encoded = encode_entry(fields(purpose="研究 \u00e9\u2028", details={"q": 'a\nb\x01"\\'}))
    assert "研究 é\u2028".encode() in encoded
    assert b'"q":"a\\nb\\u0001\\"\\\\"' in encoded
    assert decode_entry(encoded)["purpose"] == "研究 \u00e9\u2028"


def test_datetimes_are_normalised_to_utc_microseconds() -> None:
    moment = datetime(2026, 11, 21, 17, 30, 0, 5, tzinfo=timezone(timedelta(hours=8)))
    assert format_time(moment) == "2026-11-21T09:30:00.000005Z"
    assert decode_entry(encode_entry(fields(time=moment)))["time"] == "2026-11-21T09:30:00.000005Z"
    with pytest.raises(EntryEncodingError, match="timezone-aware"):
        encode_entry(fields(time=datetime(2026, 11, 21)))
    assert format_time(datetime(2026, 1, 2, tzinfo=UTC)) == "2026-01-02T00:00:00.000000Z"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"index": 1.0}, "floats are not allowed"),
        ({"index": True}, "index must be an integer"),
        ({"index": -1}, "negative"),
        ({"details": {"ratio": 0.5}}, "details.ratio: floats are not allowed"),
        ({"details": {"nan": float("nan")}}, "floats are not allowed"),
        ({"details": {"big": MAX_SAFE_INTEGER + 1}}, "outside"),
        ({"details": {"nested": {"a": 1}}}, "details.nested must be a string, integer, boolean or null"),
        ({"details": {"list": [1]}}, "details.list must be"),
        ({"details": {"": 1}}, "details key"),
        ({"details": {"clé": 1}}, "printable ASCII"),
        ({"details": []}, "details must be an object"),
        ({"time": "2026-11-21T09:30:00Z"}, "microseconds"),
        ({"time": "2026-11-21T09:30:00.000000+00:00"}, "microseconds"),
        ({"time": "2026-02-30T09:30:00.000000Z"}, "not a valid date"),
        ({"client_hash": "ABCDEF"}, "lowercase hex"),
        ({"client_hash": 12}, "lowercase hex"),
        ({"resource_ids": "SPC-1"}, "list of strings"),
        ({"resource_ids": [1]}, r"resource_ids\[0\] must be a string"),
        ({"actor": ""}, "actor must not be empty"),
        ({"outcome": None}, "outcome must be a string"),
        ({"purpose": "\ud800"}, "lone surrogate"),
        ({"extra": 1}, "unknown extra"),
        ({"v": 2}, "encoding version 1"),
        ({"v": True}, "encoding version 1"),
        ({"v": "1"}, "encoding version 1"),
    ],
)
def test_invalid_fields_are_refused_with_the_field_named(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(EntryEncodingError, match=message):
        encode_entry(fields(**overrides))


def test_missing_fields_are_named() -> None:
    entry = fields()
    del entry["purpose"], entry["details"]
    with pytest.raises(EntryEncodingError, match="missing details, purpose"):
        encode_entry(entry)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\xff", "UTF-8"),
        (b"[1]", "JSON object"),
        (b"{", "not JSON"),
        (b'{"index":1.5}', "floats are not allowed"),
        (b'{"index":NaN}', "NaN is not allowed"),
        (b'{"index":1,"index":2}', "duplicate key"),
    ],
)
def test_decode_refuses_non_entries(data: bytes, message: str) -> None:
    with pytest.raises(EntryEncodingError, match=message):
        decode_entry(data)


def test_decode_refuses_non_canonical_bytes() -> None:
    encoded = encode_entry(fields())
    spaced = json.dumps(json.loads(encoded), sort_keys=True, ensure_ascii=False).encode()
    escaped = json.dumps(json.loads(encode_entry(fields(purpose="é"))), sort_keys=True, separators=(",", ":")).encode()
    unsorted = json.dumps(dict(reversed(list(json.loads(encoded).items()))), separators=(",", ":")).encode()
    for variant in (spaced, escaped, unsorted, encoded + b"\n"):
        with pytest.raises(EntryEncodingError, match="canonical"):
            decode_entry(variant)
    assert decode_entry(encoded) == fields()
