"""Looking for personal data in what went on chain: every form an identifier could take in bytes."""

from __future__ import annotations

import contextlib
import hashlib
import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass

import rlp
from eth_utils.crypto import keccak

from biobank.ledger.client import ChainClient

MIN_LENGTH = 4  # shorter values match random bytes by chance
HEX = re.compile(r"^(0x)?([0-9a-fA-F]{2})+$")


@dataclass(frozen=True)
class Finding:
    secret: str
    form: str
    where: str


def forms_of(secret: str) -> dict[str, bytes]:
    """The byte forms a value could reach the chain in: text, its hex text, its bytes if it is hex or a UUID,
    and its plain keccak / SHA-256 hash (the chain must never hold a plain hash of a low-entropy identifier)."""
    text = secret.encode("utf-8")
    out = {"utf-8": text, "hex text": text.hex().encode(), "keccak": keccak(text),
           "sha256": hashlib.sha256(text).digest()}
    if HEX.match(secret) and len(secret.removeprefix("0x")) >= 8:
        out["hex bytes"] = bytes.fromhex(secret.removeprefix("0x"))
    with contextlib.suppress(ValueError):
        out["uuid bytes"] = uuid.UUID(secret).bytes
    return out


class Scanner:
    """Every secret in every form, matched against byte strings (case-insensitively for hex text)."""

    def __init__(self, secrets: Iterable[str]) -> None:
        self.needles: list[tuple[str, str, bytes]] = []
        for secret in sorted({s.strip() for s in secrets if s and len(s.strip()) >= MIN_LENGTH}):
            for form, needle in forms_of(secret).items():
                self.needles.append((secret, form, needle))
        self.scanned = 0

    def scan(self, blob: bytes, where: str) -> list[Finding]:
        self.scanned += 1
        lowered = blob.lower()
        return [
            Finding(secret, form, where)
            for secret, form, needle in self.needles
            if needle in blob or (form in ("utf-8", "hex text") and needle.lower() in lowered)
        ]


def calldata_of(raw_tx: bytes) -> bytes:
    """The `data` field of a signed transaction (EIP-1559 type 2 or legacy), decoded with rlp."""
    if raw_tx[0] == 0x02:
        fields = rlp.decode(raw_tx[1:])
        return bytes(fields[7])  # chainId, nonce, tip, maxFee, gas, to, value, data, accessList, v, r, s
    if raw_tx[0] >= 0xC0:
        return bytes(rlp.decode(raw_tx)[5])  # legacy: nonce, gasPrice, gas, to, value, data, v, r, s
    raise ValueError(f"transaction type {raw_tx[0]} not handled")


def chain_blobs(client: ChainClient, outbox_raw: Iterable[tuple[str, str]]) -> list[tuple[str, bytes]]:
    """What anyone reading the chain sees: the calldata of each outbox transaction (from the signed bytes and
    read back from the chain), of every other transaction that emitted an event (role grants, admissions),
    and every event log's topics and data. Contract deployments (init code: public bytecode) are skipped."""
    blobs: list[tuple[str, bytes]] = []
    seen: set[bytes] = set()
    for tx_hash, raw in outbox_raw:
        blobs.append((f"outbox tx {tx_hash} (signed bytes)", calldata_of(bytes.fromhex(raw))))
    logs = client.logs([], 0)
    hashes = [bytes.fromhex(h[2:]) for h, _ in outbox_raw] + [log.tx_hash for log in logs]
    for tx_hash in hashes:
        if tx_hash in seen:
            continue
        seen.add(tx_hash)
        tx = client.transaction(tx_hash)
        assert tx is not None, f"0x{tx_hash.hex()} not on chain"
        if tx.to is not None:
            blobs.append((f"tx 0x{tx_hash.hex()} (read from the chain)", tx.data))
    for log in logs:
        blobs.append((f"log {log.block_number}/{log.log_index}", b"".join(log.topics) + log.data))
    return blobs
