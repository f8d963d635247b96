"""How local things are named on chain: never a plain hash of a low-entropy identifier."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from typing import Any

from eth_utils.crypto import keccak

from biobank.config import Settings
from biobank.kit.crypto import derive_key


def institution_ref(code: str) -> str:
    """bytes32 of an institution: keccak256 of its public code (codes are public, not personal)."""
    return "0x" + keccak(text=code).hex()


def object_ref(settings: Settings, kind: str, public_id: str) -> str:
    """bytes32 of a request, agreement, shipment or resource: HMAC-SHA256 keyed with the node's ledger key."""
    key = derive_key(settings.secret("secret_key"), "ledger-ref")
    return "0x" + hmac.new(key, f"{kind}\x00{public_id}".encode(), hashlib.sha256).hexdigest()


def canonical_bytes(document: Any) -> bytes:
    """Canonical JSON (sorted keys, no spaces, UTF-8) of a document to commit to."""
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str).encode()


def new_salt() -> str:
    """A fresh 32-byte salt, hex; stored locally beside what it salts, never on chain."""
    return os.urandom(32).hex()


def commitment(salt_hex: str, document: Any) -> str:
    """bytes32 salted commitment keccak256(salt || canonical bytes) of a document."""
    return "0x" + keccak(bytes.fromhex(salt_hex) + canonical_bytes(document)).hex()


def digest_bytes(ref: str) -> bytes:
    """The 32 bytes of a 0x-hex bytes32."""
    raw = bytes.fromhex(ref.removeprefix("0x"))
    if len(raw) != 32:
        raise ValueError("not a bytes32")
    return raw
