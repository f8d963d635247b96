"""Benchmark: the chain clients (biobank.ledger) — transactions per second on the embedded py-evm
chain and on anvil (JSON-RPC), the embedded chain's reopen time at 10,000 blocks, and bare py-evm
on an in-memory AtomicDB as the raw limit.

Every transaction is `bump(1)` on a small Vyper counter that stores a value and emits an event.
Two figures per chain: `send_raw` of pre-signed transactions (mining + durable commit, or the
node's work), and `transact` (nonce + gas estimate + local signing + send: what the outbox
publisher does per row). ECDSA (signing, sender recovery) runs in pure Python unless `coincurve`
is installed; the backend in use is reported.

Run: ``python -m bench ledger [--quick]``.
"""

from __future__ import annotations

import os
import shutil
import socket
import statistics
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import vyper
from eth.chains.base import MiningChain
from eth.db.atomic import AtomicDB
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_keys.backends import get_backend
from eth_utils.crypto import keccak
from vyper.compiler.settings import Settings

from biobank.ledger.client import ChainClient, deploy, sign_zero_fee
from biobank.ledger.codec import Contract, ContractHandle
from biobank.ledger.embedded import BLOCK_GAS_LIMIT, VM_CLASS, EmbeddedChain, _chain_class
from biobank.ledger.jsonrpc import JsonRpcChain

ROOT = Path(__file__).resolve().parent.parent
CHAIN_ID = 20387
GOALS = {"embedded_tps": 50, "reopen_seconds": 1.0}
SOURCE = """
# pragma version 0.4.3
event Bumped:
    who: indexed(address)
    value: uint256

count: public(uint256)

@external
def bump(by: uint256):
    assert by > 0, "by must be positive"
    self.count += by
    log Bumped(who=msg.sender, value=self.count)
"""


def _compiled() -> tuple[list[dict[str, Any]], bytes]:
    out = vyper.compiler.compile_code(
        SOURCE, output_formats=["abi", "bytecode"], settings=Settings(evm_version="cancun")
    )
    return out["abi"], bytes.fromhex(out["bytecode"].removeprefix("0x"))


def _account(label: str) -> LocalAccount:
    return Account.from_key(keccak(text=f"bench-ledger/{label}"))


def _rate(count: int, seconds: float) -> float:
    return round(count / seconds, 1) if seconds > 0 else 0.0


def measure_client(client: ChainClient, n: int, transact: bool = True) -> dict[str, Any]:
    """tx/s of send_raw (pre-signed) and of transact (nonce + estimate + sign + send)."""
    abi, bytecode = _compiled()
    account = _account(f"client-{time.time_ns()}")
    address, _ = deploy(client, account, bytecode)
    handle = ContractHandle(client, abi, address)
    data = handle.contract.encode("bump", 1)
    gas = 100_000
    nonce = client.nonce(account.address)
    signed = [client.sign(account, address, data, nonce + i, gas) for i in range(n)]

    wall, cpu = time.perf_counter(), time.process_time()
    for tx in signed:
        client.send_raw(tx.raw)
    send_wall, send_cpu = time.perf_counter() - wall, time.process_time() - cpu
    sent = {
        "transactions": n,
        "send_raw_per_second": _rate(n, send_wall),
        "send_raw_ms": round(1000 * send_wall / n, 2),
        "send_raw_cpu_ms": round(1000 * send_cpu / n, 2),
    }
    if not transact:
        return sent

    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(n):
        handle.transact(account, "bump", 1)
    transact_wall, transact_cpu = time.perf_counter() - wall, time.process_time() - cpu
    assert handle.call("count") == 2 * n
    return {
        **sent,
        "transact_per_second": _rate(n, transact_wall),
        "transact_ms": round(1000 * transact_wall / n, 2),
        "transact_cpu_ms": round(1000 * transact_cpu / n, 2),
    }


def bench_embedded(folder: Path, n: int) -> dict[str, Any]:
    """The embedded chain with durable commits (synchronous=FULL: one fsync per block)."""
    with EmbeddedChain(folder / "tps.sqlite3", chain_id=CHAIN_ID, durable=True) as chain:
        figures = measure_client(chain, n)
    with EmbeddedChain(folder / "tps-normal.sqlite3", chain_id=CHAIN_ID, durable=False) as chain:
        normal = measure_client(chain, n, transact=False)
    figures["send_raw_sync_normal_per_second"] = normal["send_raw_per_second"]
    figures["send_raw_sync_normal_ms"] = normal["send_raw_ms"]
    return figures


def build_chain(path: Path, blocks: int) -> dict[str, Any]:
    """A chain of `blocks` blocks (one bump each), built without fsync (it does not change reopening)."""
    abi, bytecode = _compiled()
    account = _account("reopen")
    started = time.perf_counter()
    with EmbeddedChain(path, chain_id=CHAIN_ID, durable=False) as chain:
        address, _ = deploy(chain, account, bytecode)
        data = Contract(abi).encode("bump", 1)
        for i in range(blocks - 1):
            chain.send_raw(chain.sign(account, address, data, i + 1, 100_000).raw)
        head = chain.block_number()
    return {"blocks": head, "address": address, "build_seconds": round(time.perf_counter() - started, 1)}


def bench_reopen(path: Path, address: str, repeats: int = 5) -> dict[str, Any]:
    """Open the file, read the head, call a view, close: median and worst of `repeats` (warm OS cache)."""
    abi, _ = _compiled()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        chain = EmbeddedChain(path, chain_id=CHAIN_ID)
        head = chain.block_number()
        count = ContractHandle(chain, abi, address).call("count")
        times.append(time.perf_counter() - started)
        chain.close()
        assert count == head - 1
    wal = path.with_name(path.name + "-wal")
    size = path.stat().st_size + (wal.stat().st_size if wal.exists() else 0)
    return {
        "reopen_median_seconds": round(statistics.median(times), 4),
        "reopen_max_seconds": round(max(times), 4),
        "file_mb": round(size / 1e6, 1),
    }


def bench_raw_pyevm(n: int) -> dict[str, Any]:
    """Bare py-evm on an in-memory AtomicDB: the same pre-signed transactions, the raw limit."""
    abi, bytecode = _compiled()
    account = _account("raw")
    builder = VM_CLASS.get_transaction_builder()
    data = Contract(abi).encode("bump", 1)
    create = builder.decode(sign_zero_fee(account, CHAIN_ID, None, bytecode, 0, 1_000_000).raw)
    address = keccak(b"\xd6\x94" + bytes.fromhex(account.address[2:]) + b"\x80")[12:]  # CREATE at nonce 0
    raws = [sign_zero_fee(account, CHAIN_ID, "0x" + address.hex(), data, i + 1, 100_000).raw for i in range(n)]
    # decoded twice: a decoded transaction caches its sender, and recovering it is part of the work
    first, second = [builder.decode(raw) for raw in raws], [builder.decode(raw) for raw in raws]

    def fresh() -> MiningChain:
        genesis = {
            "difficulty": 0,
            "gas_limit": BLOCK_GAS_LIMIT,
            "timestamp": int(time.time()),
            "nonce": b"\x00" * 8,
            "base_fee_per_gas": 0,
        }
        chain = _chain_class(CHAIN_ID).from_genesis(AtomicDB(), genesis, {})
        parent = chain.get_canonical_head()
        chain.header = chain.create_header_from_parent(
            parent, gas_limit=BLOCK_GAS_LIMIT, timestamp=parent.timestamp + 1
        )
        chain.mine_all([create])
        return chain  # type: ignore[return-value]

    # all n transactions applied in one block (vm.apply_all_transactions, then one mine)
    chain = fresh()
    wall, cpu = time.perf_counter(), time.process_time()
    chain.mine_all(first)
    one_block = (time.perf_counter() - wall, time.process_time() - cpu)

    # one transaction per block, as the embedded chain does, on memory instead of SQLite
    chain = fresh()
    head = chain.get_canonical_head()
    wall, cpu = time.perf_counter(), time.process_time()
    for tx in second:
        chain.header = chain.create_header_from_parent(head, gas_limit=BLOCK_GAS_LIMIT, timestamp=head.timestamp + 1)
        result, _, _ = chain.mine_all([tx])
        head = result.imported_block.header
    per_block = (time.perf_counter() - wall, time.process_time() - cpu)
    return {
        "transactions": n,
        "all_in_one_block_per_second": _rate(n, one_block[0]),
        "all_in_one_block_cpu_ms": round(1000 * one_block[1] / n, 2),
        "one_block_per_tx_per_second": _rate(n, per_block[0]),
        "one_block_per_tx_cpu_ms": round(1000 * per_block[1] / n, 2),
    }


@contextmanager
def anvil_node() -> Iterator[str | None]:
    """A zero-fee anvil on a free loopback port (None when anvil is not installed)."""
    local = ROOT / ".ci" / "tools" / "node_modules" / ".bin" / "anvil"
    binary = str(local) if local.exists() else shutil.which("anvil")
    if binary is None:
        yield None
        return
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    args = [binary, "--host", "127.0.0.1", "--port", str(port), "--chain-id", "31337", "--base-fee", "0",
            "--gas-price", "0", "--hardfork", "prague", "--silent"]  # fmt: skip
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                body = b'{"jsonrpc":"2.0","id":1,"method":"eth_chainId","params":[]}'
                request = urllib.request.Request(url, body, {"Content-Type": "application/json"})
                urllib.request.urlopen(request, timeout=1).close()  # noqa: S310
                break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError("anvil did not start") from None
                time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


def run(quick: bool = False) -> dict[str, Any]:
    """Every measurement; returns figures and a table of rows."""
    n = 100 if quick else 300
    blocks = 2_000 if quick else 10_000
    backend = type(get_backend()).__name__
    result: dict[str, Any] = {
        "name": "ledger",
        "description": "Chain clients: tx/s on the embedded py-evm chain (durable SQLite commit per block) "
        f"and on anvil; reopen at {blocks:,} blocks; bare py-evm as the raw limit. ECDSA backend: {backend}.",
        "ecdsa_backend": backend,
        "rows": [],
    }
    rows: list[dict[str, Any]] = result["rows"]

    def row(measurement: str, chain: str, value: str, goal: str = "", note: str = "") -> None:
        rows.append({"measurement": measurement, "chain": chain, "result": value, "goal": goal, "note": note})

    with tempfile.TemporaryDirectory(prefix="bench-ledger-") as tmp:
        folder = Path(tmp)
        embedded = bench_embedded(folder, n)
        result["embedded"] = embedded
        goal = f"≥ {GOALS['embedded_tps']} tx/s"
        row(
            "send_raw, pre-signed",
            "embedded",
            f"{embedded['send_raw_per_second']} tx/s",
            goal,
            f"{embedded['send_raw_ms']} ms per block ({embedded['send_raw_cpu_ms']} ms CPU)",
        )
        row(
            "send_raw, pre-signed, synchronous=NORMAL",
            "embedded",
            f"{embedded['send_raw_sync_normal_per_second']} tx/s",
            note=f"{embedded['send_raw_sync_normal_ms']} ms per block: the cost of one fsync per block is the "
            "difference (NORMAL survives a process crash, not a power cut)",
        )
        row(
            "transact (nonce, estimate, sign, send)",
            "embedded",
            f"{embedded['transact_per_second']} tx/s",
            goal,
            f"{embedded['transact_ms']} ms ({embedded['transact_cpu_ms']} ms CPU)",
        )

        with anvil_node() as url:
            if url is None:
                result["anvil"] = "not installed"
                row("send_raw / transact", "anvil", "not run", note="anvil not installed")
            else:
                client = JsonRpcChain(url)
                try:
                    remote = measure_client(client, n)
                finally:
                    client.close()
                result["anvil"] = remote
                row(
                    "send_raw, pre-signed",
                    "anvil",
                    f"{remote['send_raw_per_second']} tx/s",
                    note=f"{remote['send_raw_ms']} ms round trips ({remote['send_raw_cpu_ms']} ms CPU here)",
                )
                row(
                    "transact (nonce, estimate, sign, send)",
                    "anvil",
                    f"{remote['transact_per_second']} tx/s",
                    note=f"{remote['transact_ms']} ms ({remote['transact_cpu_ms']} ms CPU here)",
                )

        raw = bench_raw_pyevm(n)
        result["raw_pyevm"] = raw
        row(
            f"bare py-evm, {n} transactions in one block",
            "memory",
            f"{raw['all_in_one_block_per_second']} tx/s",
            note=f"{raw['all_in_one_block_cpu_ms']} ms CPU per transaction (AtomicDB on MemoryDB)",
        )
        row(
            "bare py-evm, one transaction per block",
            "memory",
            f"{raw['one_block_per_tx_per_second']} tx/s",
            note=f"{raw['one_block_per_tx_cpu_ms']} ms CPU per block",
        )

        path = folder / "reopen.sqlite3"
        built = build_chain(path, blocks)
        reopen = bench_reopen(path, built["address"])
        result["reopen"] = {**built, **reopen}
        result["reopen"].pop("address")
        row(
            f"reopen at {built['blocks']:,} blocks (open, head, one call)",
            "embedded",
            f"{reopen['reopen_median_seconds'] * 1000:.1f} ms median, {reopen['reopen_max_seconds'] * 1000:.1f} ms max",
            f"≤ {GOALS['reopen_seconds']:g} s",
            f"file {reopen['file_mb']} MB; built in {built['build_seconds']} s without fsync",
        )
    result["load_average_1min_end"] = round(os.getloadavg()[0], 2)
    return result


def _print(result: dict[str, Any]) -> None:
    for r in result["rows"]:
        print(f"{r['measurement']:<50} {r['chain']:<9} {r['result']:<32} {r['goal']:<12} {r['note']}")


if __name__ == "__main__":
    _print(run(quick=bool(os.environ.get("QUICK"))))
