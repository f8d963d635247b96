"""The JSON-RPC chain client: web3.py over HTTP to any EVM node (anvil in tests, Besu/QBFT in
production), with local signing (eth_account) and the QBFT extra-data middleware. Transactions carry
zero fees (Besu: `--min-gas-price=0` and `zeroBaseFee`; anvil: `--base-fee 0 --gas-price 0`).

The node being down or slow is `ChainUnavailable` (the outbox retries); the chain refusing a call or
a transaction is `Reverted` with the contract's reason."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

import requests
from eth_account.signers.local import LocalAccount
from eth_utils.crypto import keccak
from web3 import HTTPProvider, Web3
from web3.exceptions import (
    ContractLogicError,
    ProviderConnectionError,
    RequestTimedOut,
    TransactionNotFound,
    Web3RPCError,
)
from web3.middleware import ExtraDataToPOAMiddleware

from biobank.ledger.client import (
    TX_GAS_CAP,
    ChainTransaction,
    ChainUnavailable,
    LogEntry,
    Receipt,
    Reverted,
    SignedTx,
    TxRejected,
    checksum,
    revert_reason,
    sign_zero_fee,
)

T = TypeVar("T")
_UNAVAILABLE = (requests.exceptions.RequestException, ProviderConnectionError, RequestTimedOut, ConnectionError)
# messages nodes use when the very same transaction is already in their pool
_ALREADY_KNOWN = ("already known", "known transaction", "already imported", "transaction already exists")


@contextmanager
def _translate() -> Iterator[None]:
    """Map transport failures to ChainUnavailable and reverts to Reverted."""
    try:
        yield
    except _UNAVAILABLE as exc:
        raise ChainUnavailable(f"chain node unreachable: {type(exc).__name__}") from exc
    except ContractLogicError as exc:
        raise Reverted(_logic_error_reason(exc)) from None


def _logic_error_reason(exc: ContractLogicError) -> str:
    data = exc.data
    if isinstance(data, str) and data.startswith("0x"):
        return revert_reason(bytes.fromhex(data[2:]))
    message = str(exc.message or exc)
    return message.removeprefix("execution reverted: ").removeprefix("execution reverted") or "reverted"


class JsonRpcChain:
    """A `ChainClient` over a node's JSON-RPC endpoint."""

    def __init__(self, url: str, *, timeout: float = 30.0, poll_seconds: float = 0.05) -> None:
        self.url = url
        self.timeout = timeout
        self.poll_seconds = poll_seconds
        # no retries inside web3: one failed request is ChainUnavailable, the outbox retries with backoff
        self._session = requests.Session()
        provider = HTTPProvider(
            url, request_kwargs={"timeout": timeout}, session=self._session, exception_retry_configuration=None
        )
        self.w3 = Web3(provider)
        self.w3.middleware_onion.inject(ExtraDataToPOAMiddleware, layer=0)
        self._chain_id: int | None = None

    def _rpc(self, fn: Callable[[], T]) -> T:
        with _translate():
            return fn()

    @property
    def chain_id(self) -> int:
        """The node's chain id (asked once; the node may be down when the client is opened)."""
        if self._chain_id is None:
            self._chain_id = int(self._rpc(lambda: self.w3.eth.chain_id))
        return self._chain_id

    def block_number(self) -> int:
        """The number of the latest block."""
        return int(self._rpc(lambda: self.w3.eth.block_number))

    def nonce(self, address: str) -> int:
        """The next nonce of `address`, counting the node's pending transactions."""
        return int(self._rpc(lambda: self.w3.eth.get_transaction_count(checksum(address), "pending")))

    def code_at(self, address: str) -> bytes:
        """The runtime code at `address`."""
        return bytes(self._rpc(lambda: self.w3.eth.get_code(checksum(address))))

    def block_timestamp(self, number: int) -> int:
        """The timestamp of block `number`."""
        return int(self._rpc(lambda: self.w3.eth.get_block(number)["timestamp"]))

    def call(self, to: str, data: bytes, sender: str | None = None, block: int | str = "latest") -> bytes:
        """eth_call against `block` (latest); raises Reverted with the decoded reason."""
        tx: dict[str, Any] = {"to": checksum(to), "data": bytes(data)}
        if sender:
            tx["from"] = checksum(sender)
        return bytes(self._rpc(lambda: self.w3.eth.call(tx, block)))  # type: ignore[arg-type]

    def estimate_gas(self, sender: str, to: str | None, data: bytes) -> int:
        """The node's estimate (eth_estimateGas), capped like the embedded chain."""
        tx: dict[str, Any] = {
            "from": checksum(sender),
            "data": bytes(data),
            "maxFeePerGas": 0,
            "maxPriorityFeePerGas": 0,
        }
        if to is not None:
            tx["to"] = checksum(to)
        return min(int(self._rpc(lambda: self.w3.eth.estimate_gas(tx))), TX_GAS_CAP)  # type: ignore[arg-type]

    def sign(self, account: LocalAccount, to: str | None, data: bytes, nonce: int, gas: int | None = None) -> SignedTx:
        """Sign a zero-fee EIP-1559 transaction locally (gas estimated by the node when not given)."""
        if gas is None:
            gas = self.estimate_gas(account.address, to, data)
        return sign_zero_fee(account, self.chain_id, to, data, nonce, gas)

    def send_raw(self, raw: bytes) -> Receipt:
        """Broadcast (unless already included) and wait for the receipt; raises Reverted on status 0."""
        tx_hash = keccak(raw)
        receipt = self.receipt(tx_hash)
        if receipt is None:
            try:
                self._rpc(lambda: self.w3.eth.send_raw_transaction(raw))
            except Web3RPCError as exc:
                message = str(exc.message or exc).lower()
                if not any(known in message for known in _ALREADY_KNOWN):
                    # the very same tx mined meanwhile reports "nonce too low": look once more
                    receipt = self.receipt(tx_hash)
                    if receipt is None:
                        raise TxRejected(str(exc.message or exc)) from None
            if receipt is None:
                receipt = self._wait(tx_hash)
        if receipt.status == 0:
            raise Reverted(self._failure_reason(receipt), receipt)
        return receipt

    def _wait(self, tx_hash: bytes) -> Receipt:
        deadline = time.monotonic() + self.timeout
        while True:
            receipt = self.receipt(tx_hash)
            if receipt is not None:
                return receipt
            if time.monotonic() > deadline:
                raise ChainUnavailable(f"transaction 0x{tx_hash.hex()} not included within {self.timeout:g} s")
            time.sleep(self.poll_seconds)

    def _failure_reason(self, receipt: Receipt) -> str:
        """Replay a failed transaction on its parent block's state to learn the revert reason."""
        tx = self._rpc(lambda: self.w3.eth.get_transaction(receipt.tx_hash))  # type: ignore[arg-type]
        call: dict[str, Any] = {"from": tx["from"], "data": bytes(tx["input"]), "gas": tx["gas"]}
        if tx.get("to"):
            call["to"] = tx["to"]
        try:
            self._rpc(lambda: self.w3.eth.call(call, receipt.block_number - 1))  # type: ignore[arg-type]
        except Reverted as exc:
            return exc.reason
        except Web3RPCError as exc:  # out of gas and the like
            return str(exc.message or exc)
        return "reverted"

    def receipt(self, tx_hash: bytes) -> Receipt | None:
        """The receipt of an included transaction, None when unknown or pending."""
        try:
            raw = self._rpc(lambda: self.w3.eth.get_transaction_receipt(tx_hash))  # type: ignore[arg-type]
        except TransactionNotFound:
            return None
        if raw is None or raw.get("blockNumber") is None:
            return None
        return Receipt(
            tx_hash=bytes(raw["transactionHash"]),
            block_number=int(raw["blockNumber"]),
            status=int(raw["status"]),
            gas_used=int(raw["gasUsed"]),
            logs=tuple(_log(entry) for entry in raw["logs"]),
            contract_address=checksum(created) if (created := raw.get("contractAddress")) else None,
        )

    def transaction(self, tx_hash: bytes) -> ChainTransaction | None:
        """eth_getTransactionByHash of an included transaction, None when unknown or pending."""
        try:
            tx = self._rpc(lambda: self.w3.eth.get_transaction(tx_hash))  # type: ignore[arg-type]
        except TransactionNotFound:
            return None
        if tx is None or tx.get("blockNumber") is None:
            return None
        return ChainTransaction(
            tx_hash=bytes(tx["hash"]),
            block_number=int(tx["blockNumber"]),
            sender=checksum(tx["from"]),
            to=checksum(tx["to"]) if tx.get("to") else None,
            nonce=int(tx["nonce"]),
            data=bytes(tx["input"]),
        )

    def logs(self, addresses: Sequence[str], from_block: int, to_block: int | None = None) -> list[LogEntry]:
        """eth_getLogs for `addresses` (all when empty) in the inclusive block range."""
        params: dict[str, Any] = {"fromBlock": from_block, "toBlock": "latest" if to_block is None else to_block}
        if addresses:
            params["address"] = [checksum(a) for a in addresses]
        entries = self._rpc(lambda: self.w3.eth.get_logs(params))  # type: ignore[arg-type]
        return sorted((_log(e) for e in entries), key=lambda log: (log.block_number, log.log_index))

    def close(self) -> None:
        """Close the HTTP session."""
        self._session.close()


def _log(entry: Any) -> LogEntry:
    return LogEntry(
        address=checksum(entry["address"]),
        topics=tuple(bytes(t) for t in entry["topics"]),
        data=bytes(entry["data"]),
        block_number=int(entry["blockNumber"]),
        tx_hash=bytes(entry["transactionHash"]),
        log_index=int(entry["logIndex"]),
    )
