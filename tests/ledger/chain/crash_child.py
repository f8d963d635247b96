"""Child process of the crash test: mines `bump(1)` blocks on an embedded chain until killed,
printing each acknowledged block number. Usage: python -m tests.ledger.chain.crash_child PATH [ADDRESS]"""

from __future__ import annotations

import sys
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
        address, _ = deploy(chain, ACCOUNT, Contract(compiled.abi).encode_constructor(compiled.bytecode, 0, ACCOUNT.address))
    print(f"address {address}", flush=True)
    handle = ContractHandle(chain, compiled.abi, address)
    data = handle.contract.encode("bump", 1)
    while True:
        # fixed gas: no estimate, so the loop spends its time mining and committing
        signed = chain.sign(ACCOUNT, address, data, chain.nonce(ACCOUNT.address), gas=200_000)
        receipt = chain.send_raw(signed.raw)
        print(f"block {receipt.block_number}", flush=True)


if __name__ == "__main__":
    main()
