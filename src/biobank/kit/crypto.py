"""Crypto helpers: keyed pseudonyms, the encrypted vault, fingerprints."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF


def derive_key(secret: bytes, purpose: str, length: int = 32) -> bytes:
    """A sub-key for one purpose (HKDF-SHA256), so one configured secret never serves two uses."""
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=None, info=purpose.encode()).derive(secret)


def pseudonym(key: bytes, identifier: str, *, namespace: str = "donor") -> str:
    """A keyed HMAC pseudonym of an identifier; stable per key and namespace, not reversible."""
    normalised = " ".join(identifier.strip().split()).upper()
    digest = hmac.new(key, f"{namespace}\x00{normalised}".encode(), hashlib.sha256).hexdigest()
    return digest[:32]


class Vault:
    """AES-256-GCM encryption of small JSON documents (identifying data), bound to their owner id."""

    VERSION = b"\x01"

    def __init__(self, key: bytes) -> None:
        self._aead = AESGCM(derive_key(key, "biobank-vault-v1"))

    def seal(self, document: dict[str, Any], *, bound_to: str) -> bytes:
        """Encrypt a JSON document; `bound_to` (e.g. the donor's public id) is authenticated, not stored."""
        nonce = os.urandom(12)
        plaintext = json.dumps(document, sort_keys=True, ensure_ascii=False).encode()
        return self.VERSION + nonce + self._aead.encrypt(nonce, plaintext, bound_to.encode())

    def open(self, sealed: bytes, *, bound_to: str) -> dict[str, Any]:
        """Decrypt what seal() produced for the same owner id."""
        if sealed[:1] != self.VERSION:
            raise ValueError("unknown vault format")
        nonce, ciphertext = sealed[1:13], sealed[13:]
        result: dict[str, Any] = json.loads(self._aead.decrypt(nonce, ciphertext, bound_to.encode()))
        return result


def sha256_hex(data: bytes | str) -> str:
    """Hex SHA-256 of bytes or UTF-8 text."""
    if isinstance(data, str):
        data = data.encode()
    return hashlib.sha256(data).hexdigest()


def keyed_hash(key: bytes, value: str, *, namespace: str) -> str:
    """A keyed hash for values that must be compared but never revealed (client addresses, tokens)."""
    return hmac.new(key, f"{namespace}\x00{value}".encode(), hashlib.sha256).hexdigest()


def b64(data: bytes) -> str:
    """Standard base64 text."""
    return base64.b64encode(data).decode()
