"""The embedded chain: persistence across restarts, crash safety, the file lock, free gas, clock,
threads, and `open_client` choosing the implementation."""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount

from biobank.config import Environment, Settings
from biobank.ledger.client import TX_GAS_CAP, ChainLocked, Reverted, TxRejected, deploy, open_client, sign_zero_fee
from biobank.ledger.codec import Contract, ContractHandle
from biobank.ledger.embedded import BLOCK_GAS_LIMIT, EmbeddedChain
from biobank.ledger.jsonrpc import JsonRpcChain
from tests.ledger.chain.counter import counter
from tests.ledger.conftest import EMBEDDED_CHAIN_ID

ROOT = Path(__file__).resolve().parents[3]


def _deploy(chain: EmbeddedChain, account: LocalAccount, start: int = 0) -> ContractHandle:
    compiled = counter()
    address, _ = deploy(
        chain, account, Contract(compiled.abi).encode_constructor(compiled.bytecode, start, account.address)
    )
    return ContractHandle(chain, compiled.abi, address)


def test_genesis_is_block_zero_with_zero_base_fee(embedded_chain: EmbeddedChain) -> None:
    header = embedded_chain.header()
    assert embedded_chain.block_number() == 0
    assert header.base_fee_per_gas == 0 and header.gas_limit == BLOCK_GAS_LIMIT
    assert embedded_chain.chain_id == EMBEDDED_CHAIN_ID


def test_base_fee_and_gas_limit_stay_put_and_accounts_need_no_funds(embedded_chain: EmbeddedChain) -> None:
    account = Account.create()
    handle = _deploy(embedded_chain, account)
    for _ in range(5):
        handle.transact(account, "bump", 1)
    for number in range(1, embedded_chain.block_number() + 1):
        header = embedded_chain.header(number)
        assert header.base_fee_per_gas == 0 and header.gas_limit == BLOCK_GAS_LIMIT
        assert header.gas_used <= BLOCK_GAS_LIMIT // 2
    assert embedded_chain.balance(account.address) == 0


def test_gas_above_the_cap_is_rejected(embedded_chain: EmbeddedChain) -> None:
    account = Account.create()
    signed = sign_zero_fee(account, EMBEDDED_CHAIN_ID, account.address, b"", 0, TX_GAS_CAP + 1)
    with pytest.raises(TxRejected, match="cap"):
        embedded_chain.send_raw(signed.raw)
    assert embedded_chain.block_number() == 0


def test_a_rejected_transaction_leaves_nothing_behind(embedded_chain: EmbeddedChain) -> None:
    account = Account.create()
    handle = _deploy(embedded_chain, account)
    wrong_chain = sign_zero_fee(account, 1, handle.address, handle.contract.encode("bump", 1), 1, 100_000)
    with pytest.raises(TxRejected):
        embedded_chain.send_raw(wrong_chain.raw)
    too_high = sign_zero_fee(account, EMBEDDED_CHAIN_ID, handle.address, handle.contract.encode("bump", 1), 9, 100_000)
    with pytest.raises(TxRejected, match=r"(?i)nonce"):
        embedded_chain.send_raw(too_high.raw)
    with pytest.raises(TxRejected, match="not a valid signed transaction"):
        embedded_chain.send_raw(b"\x02garbage")
    assert embedded_chain._kv.pending_count == 0
    assert embedded_chain.block_number() == 1
    assert embedded_chain.receipt(wrong_chain.tx_hash) is None
    handle.transact(account, "bump", 2)
    assert handle.call("count") == 2 and embedded_chain.block_number() == 2


def test_timestamps_follow_the_clock_and_strictly_increase(tmp_path: Path) -> None:
    now = [1_800_000_000.0]
    chain = EmbeddedChain(tmp_path / "c.sqlite3", chain_id=EMBEDDED_CHAIN_ID, durable=False, clock=lambda: now[0])
    try:
        account = Account.create()
        handle = _deploy(chain, account)
        handle.transact(account, "bump", 1)  # same wall-clock second: one second later than its parent
        now[0] += 100
        handle.transact(account, "bump", 1)
        stamps = [chain.block_timestamp(n) for n in range(4)]
        assert stamps == [1_800_000_000, 1_800_000_001, 1_800_000_002, 1_800_000_100]
    finally:
        chain.close()


def test_restart_keeps_state_receipts_and_logs(tmp_path: Path) -> None:
    path = tmp_path / "chain.sqlite3"
    account = Account.create()
    chain = EmbeddedChain(path, chain_id=EMBEDDED_CHAIN_ID)
    handle = _deploy(chain, account, start=10)
    receipts = [handle.transact(account, "bump", by) for by in (1, 2, 3)]
    head, root, logs = chain.block_number(), chain.header().state_root, chain.logs([handle.address], 0)
    chain.close()

    reopened = EmbeddedChain(path, chain_id=EMBEDDED_CHAIN_ID)
    try:
        again = ContractHandle(reopened, handle.contract.abi, handle.address)
        assert reopened.block_number() == head and reopened.header().state_root == root
        assert again.call("count") == 16
        assert reopened.logs([handle.address], 0) == logs
        assert [reopened.receipt(r.tx_hash) for r in receipts] == receipts
        assert reopened.nonce(account.address) == 4
        assert again.transact(account, "bump", 4).block_number == head + 1
        assert again.call("count") == 20
    finally:
        reopened.close()


def test_reopening_with_another_chain_id_is_refused(tmp_path: Path) -> None:
    EmbeddedChain(tmp_path / "chain.sqlite3", chain_id=EMBEDDED_CHAIN_ID).close()
    with pytest.raises(ValueError, match="holds chain 20387"):
        EmbeddedChain(tmp_path / "chain.sqlite3", chain_id=1)
    # the refused open released the file lock
    EmbeddedChain(tmp_path / "chain.sqlite3", chain_id=EMBEDDED_CHAIN_ID).close()


def test_only_one_opener_at_a_time(tmp_path: Path) -> None:
    path = tmp_path / "chain.sqlite3"
    chain = EmbeddedChain(path, chain_id=EMBEDDED_CHAIN_ID)
    try:
        with pytest.raises(ChainLocked, match=f"already open \\(process {os.getpid()}\\)"):
            EmbeddedChain(path, chain_id=EMBEDDED_CHAIN_ID)
        code = f"from biobank.ledger.embedded import EmbeddedChain; EmbeddedChain({str(path)!r}, chain_id=20387)"
        other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT)
        assert other.returncode != 0
        assert "ChainLocked" in other.stderr and "only one process may write it" in other.stderr
    finally:
        chain.close()
    EmbeddedChain(path, chain_id=EMBEDDED_CHAIN_ID).close()  # free again after close


def test_threads_share_one_chain(embedded_chain: EmbeddedChain) -> None:
    owner = Account.create()
    handle = _deploy(embedded_chain, owner)
    errors: list[BaseException] = []

    def worker() -> None:
        account = Account.create()
        try:
            for _ in range(5):
                handle.transact(account, "bump", 1)
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert handle.call("count") == 20 and embedded_chain.block_number() == 21
    assert len(embedded_chain.logs([handle.address], 0)) == 20


def test_a_reverted_transaction_is_recorded_with_its_reason(embedded_chain: EmbeddedChain) -> None:
    owner, other = Account.create(), Account.create()
    handle = _deploy(embedded_chain, owner)
    signed = embedded_chain.sign(other, handle.address, handle.contract.encode("only_owner"), 0, gas=100_000)
    with pytest.raises(Reverted, match="not the owner"):
        embedded_chain.send_raw(signed.raw)
    # re-sending the failed transaction reports the same failure, without a new block
    with pytest.raises(Reverted, match="not the owner") as again:
        embedded_chain.send_raw(signed.raw)
    assert again.value.receipt is not None and again.value.receipt.block_number == 2
    assert embedded_chain.block_number() == 2


def test_closed_chain_refuses_writes(tmp_path: Path) -> None:
    chain = EmbeddedChain(tmp_path / "chain.sqlite3", chain_id=EMBEDDED_CHAIN_ID)
    chain.close()
    chain.close()  # idempotent
    with pytest.raises(RuntimeError, match="closed"):
        chain.send_raw(b"\x02")


def test_open_client_chooses_by_ledger_url(tmp_path: Path, anvil: str) -> None:
    base = {"env": Environment.TEST, "data_dir": tmp_path / "data", "secret_key": "k" * 40}
    embedded = open_client(Settings(ledger_url="embedded", **base))  # type: ignore[arg-type]
    try:
        assert isinstance(embedded, EmbeddedChain)
        assert embedded.path == tmp_path / "data" / "chain.sqlite3" and embedded.chain_id == 20387
    finally:
        embedded.close()
    remote = open_client(Settings(ledger_url=anvil, **base))  # type: ignore[arg-type]
    try:
        assert isinstance(remote, JsonRpcChain) and remote.chain_id == 31337
    finally:
        remote.close()
    with pytest.raises(ValueError, match="embedded"):
        open_client(Settings(ledger_url="ftp://nowhere", **base))  # type: ignore[arg-type]


# --- crash safety ---------------------------------------------------------------------------------


def _child(path: Path, address: str | None, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    args = [sys.executable, "-m", "tests.ledger.chain.crash_child", str(path)] + ([address] if address else [])
    return subprocess.Popen(
        args, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, **(env or {})}
    )


def _run_child_until_killed(path: Path, address: str | None, min_blocks: int, rng: random.Random) -> tuple[str, int]:
    """Start the miner, let it acknowledge `min_blocks` blocks plus a random moment, SIGKILL it."""
    child = _child(path, address)
    assert child.stdout is not None
    acknowledged = 0
    try:
        first = child.stdout.readline().split()
        assert first and first[0] == "address", child.stderr.read() if child.stderr else ""
        address = first[1]
        seen = 0
        while seen < min_blocks:
            line = child.stdout.readline()
            assert line, child.stderr.read() if child.stderr else "child exited"
            acknowledged = int(line.split()[1])
            seen += 1
        time.sleep(rng.uniform(0.0, 0.3))  # land somewhere inside a later block's mining or commit
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=30)
        for line in child.stdout.read().splitlines():  # blocks acknowledged before the kill landed
            acknowledged = int(line.split()[1])
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        child.stdout.close()
        if child.stderr:
            child.stderr.close()
    assert child.returncode == -signal.SIGKILL
    return address, acknowledged


def _assert_consistent(path: Path, address: str, acknowledged: int) -> int:
    chain = EmbeddedChain(path, chain_id=EMBEDDED_CHAIN_ID)  # opening checks the head's state root
    try:
        head = chain.block_number()
        # every acknowledged block survived; at most the one in flight was added after it
        assert acknowledged <= head <= acknowledged + 1
        header = chain.header()
        assert chain.has_node(header.state_root)
        handle = ContractHandle(chain, counter().abi, address)
        # block 1 deployed the counter at 0; every later block bumped it once
        assert handle.call("count") == head - 1
        # the index tables hold exactly the blocks of the canonical chain: nothing half written
        db = sqlite3.connect(path)
        try:
            txs = db.execute("SELECT COUNT(*), MIN(block), MAX(block) FROM txs").fetchone()
            logs = db.execute("SELECT COUNT(*), MAX(block) FROM logs").fetchone()
        finally:
            db.close()
        assert txs == (head, 1, head)
        assert logs == (head - 1, head)
        assert [e[1]["value"] for e in handle.events(head - 2)] == [head - 3, head - 2, head - 1]
        for number in range(1, head + 1):
            assert chain.header(number).parent_hash == chain.header(number - 1).hash
        # and the chain keeps going
        receipt = handle.transact(Account.create(), "bump", 1)
        assert receipt.block_number == head + 1 and handle.call("count") == head
        return head + 1
    finally:
        chain.close()


def test_sigkill_while_mining_leaves_a_consistent_chain(tmp_path: Path) -> None:
    path = tmp_path / "chain.sqlite3"
    rng = random.Random(6)
    address, acknowledged = _run_child_until_killed(path, None, min_blocks=5, rng=rng)
    _assert_consistent(path, address, acknowledged)
    for _ in range(2):  # kill the same file again, at other moments
        _, acknowledged = _run_child_until_killed(path, address, min_blocks=3, rng=rng)
        _assert_consistent(path, address, acknowledged)


def test_sigkill_inside_the_block_transaction_keeps_the_previous_block(tmp_path: Path) -> None:
    path = tmp_path / "chain.sqlite3"
    address, acknowledged = _run_child_until_killed(path, None, min_blocks=3, rng=random.Random(1))
    head = _assert_consistent(path, address, acknowledged)
    target = head + 4
    child = _child(path, address, {"CRASH_IN_COMMIT_OF_BLOCK": str(target)})
    out, err = child.communicate(timeout=120)
    assert child.returncode == -signal.SIGKILL, err
    blocks = [int(line.split()[1]) for line in out.splitlines() if line.startswith("block")]
    assert blocks[-1] == target - 1
    assert _assert_consistent(path, address, target - 1) == target  # block `target` never happened
