"""Child process of the crash test: mines `bump(1)` blocks on an embedded chain until killed,
printing each acknowledged block number. Usage: python -m tests.ledger.chain.crash_child PATH [ADDRESS]

With CRASH_IN_COMMIT_OF_BLOCK=N it SIGKILLs itself inside block N's SQLite transaction, after the
state, header and head keys were written and before COMMIT: the worst moment for a crash."""

from __future__ import annotations

import os
import signal
import sqlite3
import sys
from collections.abc import Callable
from pathlib import Path

from eth_account import Account
from eth_utils import keccak

from biobank.ledger.client import deploy
from biobank.ledger.codec import Contract, ContractHandle
from biobank.ledger.embedded import EmbeddedChain
from tests.ledger.chain.counter import counter

CHAIN_ID = 20387
ACCOUNT = Account.from_key(keccak(text="biobank-test/crash-child"))


def main() -> None:
    """Deploy the counter (first run) and bump it forever."""
    compiled = counter()
    chain = EmbeddedChain(Path(sys.argv[1]), chain_id=CHAIN_ID, durable=True)
    if len(sys.argv) > 2:
        address = sys.argv[2]
    else:
        address, _ = deploy(
            chain, ACCOUNT, Contract(compiled.abi).encode_constructor(compiled.bytecode, 0, ACCOUNT.address)
        )
    print(f"address {address}", flush=True)
    crash_at = int(os.environ.get("CRASH_IN_COMMIT_OF_BLOCK", "0"))
    if crash_at:
        _crash_inside_commit(chain, crash_at)
    handle = ContractHandle(chain, compiled.abi, address)
    data = handle.contract.encode("bump", 1)
    while True:
        # fixed gas: no estimate, so the loop spends its time mining and committing
        signed = chain.sign(ACCOUNT, address, data, chain.nonce(ACCOUNT.address), gas=200_000)
        receipt = chain.send_raw(signed.raw)
        print(f"block {receipt.block_number}", flush=True)


def _crash_inside_commit(chain: EmbeddedChain, block: int) -> None:
    kv = chain._kv
    commit = kv.commit

    def crashing_commit(extra: Callable[[sqlite3.Connection], None] | None = None) -> None:
        def then_die(conn: sqlite3.Connection) -> None:
            if extra is not None:
                extra(conn)
            if chain.header().block_number == block:  # the buffered (uncommitted) head
                os.kill(os.getpid(), signal.SIGKILL)

        commit(then_die)

    kv.commit = crashing_commit  # type: ignore[method-assign]


if __name__ == "__main__":
    main()
