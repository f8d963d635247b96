"""The embedded chain: py-evm (Prague rules, so it runs the contracts' cancun bytecode) in process,
persisted in one SQLite file (`ledger.kvstore`). One transaction per block, mined as soon as it
is sent; each block — state trie, header, canonical head, transaction and log index rows — is
written in ONE SQLite transaction, so a crash leaves the previous block intact.

Gas is free: the genesis base fee is 0 and no transaction may use more than `TX_GAS_CAP`, half
the block gas limit (the EIP-1559 target). A block never uses more than its target, so by the
standard base-fee rule the base fee stays 0 forever and no account needs a balance.
Timestamps come from the wall clock and strictly increase (one second per block at least): under a
burst of more than one transaction per second they run ahead of the clock until the chain idles.
"""

from __future__ import annotations

import fcntl
import os
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from sqlite3 import Connection
from typing import Any, cast

from eth.abc import BlockHeaderAPI, ComputationAPI, SignedTransactionAPI
from eth.chains.base import MiningChain
from eth.constants import BLANK_ROOT_HASH, ZERO_ADDRESS
from eth.db.atomic import AtomicDB
from eth.exceptions import HeaderNotFound, Revert
from eth.vm.forks.prague import PragueVM
from eth.vm.spoof import SpoofTransaction
from eth_account.signers.local import LocalAccount
from eth_typing import Address, BlockNumber
from eth_utils.address import to_canonical_address
from eth_utils.crypto import keccak
from eth_utils.exceptions import ValidationError

from biobank.ledger.client import (
    TX_GAS_CAP,
    ChainLocked,
    ChainTransaction,
    LogEntry,
    Receipt,
    Reverted,
    SignedTx,
    TxRejected,
    checksum,
    revert_reason,
    sign_zero_fee,
)
from biobank.ledger.kvstore import SCHEMA_VERSION, SqliteKV

VM_CLASS = PragueVM
BLOCK_GAS_LIMIT = 2 * TX_GAS_CAP
GENESIS_EXTRA_DATA = b"biobank-commons"

_INDEX_SCHEMA = """
CREATE TABLE IF NOT EXISTS txs (
    hash BLOB PRIMARY KEY, block INTEGER NOT NULL, tx_index INTEGER NOT NULL, status INTEGER NOT NULL,
    gas_used INTEGER NOT NULL, contract_address BLOB, reason TEXT
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS logs (
    block INTEGER NOT NULL, log_index INTEGER NOT NULL, tx_hash BLOB NOT NULL, address BLOB NOT NULL,
    topics BLOB NOT NULL, data BLOB NOT NULL, PRIMARY KEY (block, log_index)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS logs_by_address ON logs (address, block);
"""


def _chain_class(chain_id: int) -> type[MiningChain]:
    return MiningChain.configure(
        __name__=f"BiobankChain{chain_id}", vm_configuration=((0, VM_CLASS),), chain_id=chain_id
    )


def calldata_floor_gas(data: bytes) -> int:
    """EIP-7623 (Prague): the least gas a transaction carrying `data` must pay."""
    zeros = data.count(0)
    return 21_000 + 10 * (zeros + 4 * (len(data) - zeros))


class _FileLock:
    """An exclusive, non-blocking lock on a side file; released by the kernel if the process dies."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(self._fd, 32, 0).decode(errors="replace").strip() or "unknown"
            os.close(self._fd)
            raise ChainLocked(
                f"the embedded chain {path.with_suffix('')} is already open (process {holder}); "
                "only one process may write it: stop that process or point it at the same node's API"
            ) from None
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, str(os.getpid()).encode(), 0)

    def release(self) -> None:
        if self._fd >= 0:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = -1


class EmbeddedChain:
    """A `ChainClient` over an in-process py-evm chain stored in `path` (SQLite)."""

    def __init__(
        self,
        path: Path | str,
        *,
        chain_id: int,
        durable: bool = True,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.chain_id = chain_id
        self._clock = clock
        self._lock = threading.RLock()
        self._file_lock = _FileLock(self.path.with_name(self.path.name + ".lock"))
        try:
            self._kv = SqliteKV(self.path, durable=durable)
            self._kv.conn.executescript(_INDEX_SCHEMA)
            self._chain_class = _chain_class(chain_id)
            stored = self._kv.get_meta("chain_id")
            if stored is None:
                self._chain = self._create_genesis()
            elif int(stored) != chain_id:
                raise ValueError(f"{self.path} holds chain {stored}, not chain {chain_id}")
            else:
                self._chain = self._chain_class(AtomicDB(self._kv))
                self._check_head()
        except BaseException:
            self._file_lock.release()
            raise
        self._closed = False

    # --- opening ------------------------------------------------------------------------------
    def _create_genesis(self) -> MiningChain:
        genesis: dict[str, Any] = {
            "coinbase": ZERO_ADDRESS,
            "difficulty": 0,
            "gas_limit": BLOCK_GAS_LIMIT,
            "timestamp": int(self._clock()),
            "extra_data": GENESIS_EXTRA_DATA,
            "nonce": b"\x00" * 8,
            "base_fee_per_gas": 0,
        }
        chain = cast(MiningChain, self._chain_class.from_genesis(AtomicDB(self._kv), genesis, {}))

        def meta(conn: Connection) -> None:
            conn.executemany(
                "INSERT INTO meta (key, value) VALUES (?, ?)",
                [("chain_id", str(self.chain_id)), ("schema_version", str(SCHEMA_VERSION)), ("vm", VM_CLASS.fork)],
            )

        self._kv.commit(meta)
        return chain

    def _check_head(self) -> None:
        """The head's state root must be in the store (it is, unless the file was damaged)."""
        head = self._chain.get_canonical_head()
        if head.state_root != BLANK_ROOT_HASH and not self._kv.exists(head.state_root):
            raise RuntimeError(f"{self.path}: state of head block {head.block_number} is missing")

    # --- reads ----------------------------------------------------------------------------------
    def block_number(self) -> int:
        """The number of the latest block."""
        with self._lock:
            return int(self._chain.get_canonical_head().block_number)

    def _head_state(self) -> Any:
        return self._chain.get_vm(self._chain.get_canonical_head()).state

    def nonce(self, address: str) -> int:
        """The next nonce (no mempool: every sent transaction is already mined)."""
        with self._lock:
            return int(self._head_state().get_nonce(to_canonical_address(address)))

    def balance(self, address: str) -> int:
        """The balance of `address` in wei."""
        with self._lock:
            return int(self._head_state().get_balance(to_canonical_address(address)))

    def code_at(self, address: str) -> bytes:
        """The runtime code at `address`."""
        with self._lock:
            return bytes(self._head_state().get_code(to_canonical_address(address)))

    def block_timestamp(self, number: int) -> int:
        """The timestamp of block `number`."""
        return int(self.header(number).timestamp)

    def header(self, number: int | None = None) -> BlockHeaderAPI:
        """The py-evm header of block `number` (the latest when None): base fee, gas, state root."""
        with self._lock:
            if number is None:
                return self._chain.get_canonical_head()
            try:
                return self._chain.get_canonical_block_header_by_number(BlockNumber(number))
            except HeaderNotFound:
                raise ValueError(f"no block {number}") from None

    def has_node(self, key: bytes) -> bool:
        """Whether the store holds `key` (a trie node hash, for consistency checks)."""
        with self._lock:
            return self._kv.exists(key)

    def _execute(self, to: str | None, data: bytes, sender: str | None, gas: int) -> ComputationAPI:
        """Run a message against the latest state without keeping its effects."""
        head = self._chain.get_canonical_head()
        vm = self._chain.get_vm(head)
        origin = to_canonical_address(sender) if sender else ZERO_ADDRESS
        with vm.in_costless_state() as state:
            unsigned = vm.create_unsigned_transaction(
                nonce=state.get_nonce(origin),
                gas_price=0,
                gas=gas,
                to=to_canonical_address(to) if to else Address(b""),
                value=0,
                data=bytes(data),
            )
            spoofed = cast(SignedTransactionAPI, SpoofTransaction(unsigned, from_=origin))
            return state.costless_execute_transaction(spoofed)

    def call(self, to: str, data: bytes, sender: str | None = None) -> bytes:
        """Execute a read-only call; raises Reverted with the contract's reason."""
        with self._lock:
            computation = self._execute(to, data, sender, TX_GAS_CAP)
        if computation.is_error:
            raise Reverted(_failure_reason(computation))
        return bytes(computation.output)

    def estimate_gas(self, sender: str, to: str | None, data: bytes) -> int:
        """One trial run at the cap, plus a margin for the 63/64 rule and refunds (gas is free)."""
        with self._lock:
            computation = self._execute(to, data, sender, TX_GAS_CAP)
        if computation.is_error:
            raise Reverted(_failure_reason(computation))
        gross = TX_GAS_CAP - computation.get_gas_remaining()
        estimate = max(gross + gross // 2 + 20_000, calldata_floor_gas(data))
        return min(estimate, TX_GAS_CAP)

    # --- writes -----------------------------------------------------------------------------------
    def sign(self, account: LocalAccount, to: str | None, data: bytes, nonce: int, gas: int | None = None) -> SignedTx:
        """Sign a zero-fee EIP-1559 transaction locally (gas estimated when not given)."""
        if gas is None:
            gas = self.estimate_gas(account.address, to, data)
        return sign_zero_fee(account, self.chain_id, to, data, nonce, gas)

    def send_raw(self, raw: bytes) -> Receipt:
        """Mine `raw` alone in a new block (or return the receipt of its earlier inclusion)."""
        tx_hash = keccak(raw)
        with self._lock:
            self._ensure_open()
            receipt = self._receipt(tx_hash)
            if receipt is None:
                tx = self._decode(raw)
                receipt = self._mine(tx, tx_hash)
        if receipt.status == 0:
            raise Reverted(self._reason(tx_hash), receipt)
        return receipt

    def _decode(self, raw: bytes) -> SignedTransactionAPI:
        try:
            tx = VM_CLASS.get_transaction_builder().decode(raw)
            tx.validate()
        except Exception as exc:
            raise TxRejected(f"not a valid signed transaction: {exc}") from None
        # py-evm does not check it: a transaction signed for another chain must not replay here
        if getattr(tx, "chain_id", None) != self.chain_id:
            raise TxRejected(f"transaction is for chain {getattr(tx, 'chain_id', None)}, not {self.chain_id}")
        if tx.gas > TX_GAS_CAP:
            raise TxRejected(f"gas {tx.gas} is above the per-transaction cap {TX_GAS_CAP}")
        return tx

    def _mine(self, tx: SignedTransactionAPI, tx_hash: bytes) -> Receipt:
        chain = self._chain
        head = chain.get_canonical_head()
        number = head.block_number + 1
        timestamp = max(int(self._clock()), head.timestamp + 1)
        try:
            chain.header = chain.create_header_from_parent(head, gas_limit=BLOCK_GAS_LIMIT, timestamp=timestamp)
            result, receipts, computations = chain.mine_all([tx])
        except ValidationError as exc:
            self._rollback()
            raise TxRejected(str(exc)) from None
        except BaseException:
            self._rollback()
            raise
        computation, evm_receipt = computations[0], receipts[0]
        status = 0 if computation.is_error else 1
        contract = None
        if not tx.to and status:
            contract = bytes(computation.msg.storage_address)
        logs = tuple(
            LogEntry(
                address=checksum(log.address),
                topics=tuple(topic.to_bytes(32, "big") for topic in log.topics),
                data=bytes(log.data),
                block_number=number,
                tx_hash=tx_hash,
                log_index=i,
            )
            for i, log in enumerate(evm_receipt.logs)
        )
        receipt = Receipt(
            tx_hash=tx_hash,
            block_number=number,
            status=status,
            gas_used=int(evm_receipt.gas_used),
            logs=logs,
            contract_address=checksum(contract) if contract else None,
        )
        reason = _failure_reason(computation) if status == 0 else None

        def index(conn: Connection) -> None:
            conn.execute(
                "INSERT INTO txs (hash, block, tx_index, status, gas_used, contract_address, reason)"
                " VALUES (?, ?, 0, ?, ?, ?, ?)",
                (tx_hash, number, status, receipt.gas_used, contract, reason),
            )
            conn.executemany(
                "INSERT INTO logs (block, log_index, tx_hash, address, topics, data) VALUES (?, ?, ?, ?, ?, ?)",
                [
                    (number, log.log_index, tx_hash, to_canonical_address(log.address), b"".join(log.topics), log.data)
                    for log in logs
                ],
            )

        try:
            self._kv.commit(index)
        except BaseException:
            self._rollback()
            raise
        if result.imported_block.number != number:  # pragma: no cover - py-evm invariant
            raise RuntimeError("mined block number mismatch")
        return receipt

    def _rollback(self) -> None:
        """Drop the failed block's buffered writes and rebuild the chain object from the file."""
        self._kv.discard()
        self._chain = self._chain_class(AtomicDB(self._kv))

    # --- receipts and logs ---------------------------------------------------------------------
    def receipt(self, tx_hash: bytes) -> Receipt | None:
        """The receipt of an included transaction, None when unknown."""
        with self._lock:
            return self._receipt(bytes(tx_hash))

    def _receipt(self, tx_hash: bytes) -> Receipt | None:
        row = self._kv.conn.execute(
            "SELECT block, status, gas_used, contract_address FROM txs WHERE hash = ?", (tx_hash,)
        ).fetchone()
        if row is None:
            return None
        block, status, gas_used, contract = row
        rows = self._kv.conn.execute(
            "SELECT address, topics, data, block, tx_hash, log_index FROM logs WHERE block = ? ORDER BY log_index",
            (block,),
        ).fetchall()
        return Receipt(
            tx_hash=tx_hash,
            block_number=block,
            status=status,
            gas_used=gas_used,
            logs=tuple(_log_from_row(r) for r in rows if bytes(r[4]) == tx_hash),
            contract_address=checksum(bytes(contract)) if contract else None,
        )

    def transaction(self, tx_hash: bytes) -> ChainTransaction | None:
        """An included transaction read back from its block, None when unknown."""
        with self._lock:
            row = self._kv.conn.execute(
                "SELECT block, tx_index FROM txs WHERE hash = ?", (bytes(tx_hash),)
            ).fetchone()
            if row is None:
                return None
            block, index = row
            tx = self._chain.get_canonical_block_by_number(BlockNumber(block)).transactions[index]
        return ChainTransaction(
            tx_hash=bytes(tx_hash),
            block_number=block,
            sender=checksum(tx.sender),
            to=checksum(tx.to) if tx.to else None,
            nonce=int(tx.nonce),
            data=bytes(tx.data),
        )

    def _reason(self, tx_hash: bytes) -> str:
        row = self._kv.conn.execute("SELECT reason FROM txs WHERE hash = ?", (tx_hash,)).fetchone()
        return str(row[0]) if row and row[0] else "reverted"

    def logs(self, addresses: Sequence[str], from_block: int, to_block: int | None = None) -> list[LogEntry]:
        """Logs of `addresses` (all contracts when empty) in the inclusive block range, from the index."""
        with self._lock:
            last = self._chain.get_canonical_head().block_number if to_block is None else to_block
            sql = "SELECT address, topics, data, block, tx_hash, log_index FROM logs WHERE block BETWEEN ? AND ?"
            params: list[Any] = [from_block, last]
            if addresses:
                sql += f" AND address IN ({', '.join('?' * len(addresses))})"
                params += [to_canonical_address(a) for a in addresses]
            rows = self._kv.conn.execute(sql + " ORDER BY block, log_index", params).fetchall()
        return [_log_from_row(r) for r in rows]

    # --- lifecycle -------------------------------------------------------------------------------
    def _ensure_open(self) -> None:
        if self._closed:
            raise RuntimeError("the embedded chain is closed")

    def close(self) -> None:
        """Close the file and release the lock (idempotent)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._kv.close()
            self._file_lock.release()

    def __enter__(self) -> EmbeddedChain:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _log_from_row(row: tuple[Any, ...]) -> LogEntry:
    address, topics, data, block, tx_hash, log_index = row
    topics = bytes(topics)
    return LogEntry(
        address=checksum(bytes(address)),
        topics=tuple(topics[i : i + 32] for i in range(0, len(topics), 32)),
        data=bytes(data),
        block_number=block,
        tx_hash=bytes(tx_hash),
        log_index=log_index,
    )


def _failure_reason(computation: ComputationAPI) -> str:
    if isinstance(computation.error, Revert):
        return revert_reason(bytes(computation.output))
    return f"{type(computation.error).__name__}: {computation.error}".rstrip(": ")
