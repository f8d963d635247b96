"""The chain client interface: one `ChainClient` protocol, two implementations (embedded py-evm in
`ledger.embedded`, JSON-RPC in `ledger.jsonrpc`), chosen by `settings.ledger_url` in `open_client`.

Transactions are signed locally (gas price 0: the consortium chain has free gas) and sent raw;
`send_raw` waits for inclusion and is idempotent: re-sending the same signed bytes returns the
receipt of the first inclusion. Errors: `ChainUnavailable` (try again later) and `Reverted` (the
chain rejected the call for good, with the contract's reason)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from eth_abi.abi import decode as abi_decode
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_typing import ChecksumAddress
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak

if TYPE_CHECKING:
    from biobank.config import Settings

# The most gas one transaction may use. It is half the embedded chain's block gas limit (the
# EIP-1559 gas target), so a block never uses more than its target and the base fee stays 0.
TX_GAS_CAP = 30_000_000

_ERROR_SELECTOR = bytes.fromhex("08c379a0")  # Error(string)
_PANIC_SELECTOR = bytes.fromhex("4e487b71")  # Panic(uint256)


@dataclass(frozen=True)
class LogEntry:
    """One event log of an included transaction."""

    address: str  # checksummed
    topics: tuple[bytes, ...]
    data: bytes
    block_number: int
    tx_hash: bytes
    log_index: int


@dataclass(frozen=True)
class Receipt:
    """The outcome of an included transaction."""

    tx_hash: bytes
    block_number: int
    status: int  # 1 success, 0 reverted
    gas_used: int
    logs: tuple[LogEntry, ...]
    contract_address: str | None


@dataclass(frozen=True)
class ChainTransaction:
    """An included transaction as the chain holds it (what anyone reading the chain sees)."""

    tx_hash: bytes
    block_number: int
    sender: str  # checksummed
    to: str | None  # checksummed; None for a deployment
    nonce: int
    data: bytes  # the calldata (init code for a deployment)


@dataclass(frozen=True)
class SignedTx:
    """A locally signed transaction, ready for `send_raw`."""

    raw: bytes
    tx_hash: bytes


class ChainError(Exception):
    """Base of the chain client errors."""


class ChainUnavailable(ChainError):
    """The node is down or unreachable (or did not include the transaction in time): retry later."""


class Reverted(ChainError):
    """The chain rejected the call or transaction for good; `reason` is the contract's message."""

    def __init__(self, reason: str, receipt: Receipt | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.receipt = receipt


class TxRejected(Reverted):
    """The transaction was refused before inclusion (bad nonce, gas above the cap, bad chain id)."""


class ChainLocked(ChainError):
    """The embedded chain file is already open for writing in another process."""


@runtime_checkable
class ChainClient(Protocol):
    """What the ledger needs from a chain."""

    @property
    def chain_id(self) -> int:
        """The chain id transactions are signed for."""
        ...

    def block_number(self) -> int:
        """The number of the latest block."""
        ...

    def nonce(self, address: str) -> int:
        """The next nonce of `address`, counting pending transactions."""
        ...

    def sign(self, account: LocalAccount, to: str | None, data: bytes, nonce: int, gas: int | None = None) -> SignedTx:
        """Sign a zero-fee transaction locally (`to=None` deploys); estimates gas when not given."""
        ...

    def send_raw(self, raw: bytes) -> Receipt:
        """Broadcast a signed transaction and wait for its receipt; raises Reverted on status 0."""
        ...

    def receipt(self, tx_hash: bytes) -> Receipt | None:
        """The receipt of an included transaction, None when unknown or still pending."""
        ...

    def transaction(self, tx_hash: bytes) -> ChainTransaction | None:
        """An included transaction (sender, recipient, calldata), None when unknown or still pending."""
        ...

    def call(self, to: str, data: bytes, sender: str | None = None) -> bytes:
        """Execute a read-only call against the latest state; raises Reverted."""
        ...

    def logs(self, addresses: list[str], from_block: int, to_block: int | None = None) -> list[LogEntry]:
        """Logs emitted by `addresses` in the block range (inclusive; `to_block=None`: latest)."""
        ...

    def code_at(self, address: str) -> bytes:
        """The runtime code at `address` (empty when none)."""
        ...

    def block_timestamp(self, number: int) -> int:
        """The timestamp (Unix seconds) of block `number`."""
        ...

    def close(self) -> None:
        """Release the connection or file."""
        ...


def transact(
    client: ChainClient, account: LocalAccount, to: str | None, data: bytes, gas: int | None = None
) -> Receipt:
    """Sign with the account's next nonce and send; returns the receipt (raises Reverted)."""
    signed = client.sign(account, to, data, client.nonce(account.address), gas)
    return client.send_raw(signed.raw)


def deploy(client: ChainClient, account: LocalAccount, bytecode_with_args: bytes) -> tuple[str, Receipt]:
    """Deploy a contract (init code with its ABI-encoded constructor arguments appended)."""
    receipt = transact(client, account, None, bytecode_with_args)
    if receipt.contract_address is None:  # pragma: no cover - a successful create always has one
        raise Reverted("deployment produced no contract", receipt)
    return receipt.contract_address, receipt


def revert_reason(output: bytes) -> str:
    """Decode revert data: Error(string) → its message, Panic(uint256) → "panic 0x..", else hex."""
    if output[:4] == _ERROR_SELECTOR:
        try:
            (message,) = abi_decode(["string"], output[4:])
            return str(message)
        except Exception:  # malformed revert data: show it raw
            return "0x" + output.hex()
    if output[:4] == _PANIC_SELECTOR and len(output) >= 36:
        return f"panic 0x{int.from_bytes(output[4:36], 'big'):02x}"
    if not output:
        return "reverted without a reason"
    return "0x" + output.hex()


def tx_hash_of(raw: bytes) -> bytes:
    """The hash of a signed transaction's raw bytes (typed or legacy)."""
    return keccak(raw)


def checksum(address: str | bytes) -> ChecksumAddress:
    """A checksummed address from hex or 20 bytes."""
    return to_checksum_address(address)


def sign_zero_fee(account: LocalAccount, chain_id: int, to: str | None, data: bytes, nonce: int, gas: int) -> SignedTx:
    """An EIP-1559 transaction with zero fees, signed locally."""
    tx: dict[str, Any] = {
        "type": 2,
        "chainId": chain_id,
        "nonce": nonce,
        "gas": gas,
        "maxFeePerGas": 0,
        "maxPriorityFeePerGas": 0,
        "value": 0,
        "data": bytes(data),
    }
    if to is not None:
        tx["to"] = checksum(to)
    signed = Account.sign_transaction(tx, account.key)
    return SignedTx(raw=bytes(signed.raw_transaction), tx_hash=bytes(signed.hash))


def open_client(settings: Settings) -> ChainClient:
    """The client `settings.ledger_url` asks for: "embedded" (or empty) or an http(s) JSON-RPC URL."""
    url = (settings.ledger_url or "embedded").strip()
    if url == "embedded":
        from biobank.ledger.embedded import EmbeddedChain

        settings.data_dir.mkdir(parents=True, exist_ok=True)
        return EmbeddedChain(settings.data_dir / "chain.sqlite3", chain_id=settings.ledger_embedded_chain_id)
    if url.startswith(("http://", "https://")):
        from biobank.ledger.jsonrpc import JsonRpcChain

        timeout = settings.ledger_rpc_timeout_seconds
        return JsonRpcChain(url, timeout=timeout)
    raise ValueError(f"ledger_url must be 'embedded' or an http(s) URL, not {url!r}")
