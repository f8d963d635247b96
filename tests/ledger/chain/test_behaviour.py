"""The same behaviour from both chain clients: the embedded py-evm chain and JSON-RPC on anvil."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils import keccak

from biobank.ledger.client import ChainClient, Receipt, Reverted, TxRejected, deploy, transact
from biobank.ledger.codec import Contract, ContractHandle
from tests.ledger.chain.counter import counter


@pytest.fixture(params=["embedded", "jsonrpc"])
def chain(request: pytest.FixtureRequest) -> Iterator[ChainClient]:
    """Each test runs once per client."""
    if request.param == "embedded":
        yield request.getfixturevalue("embedded_chain")
    else:
        yield request.getfixturevalue("anvil_chain")


@pytest.fixture
def account() -> LocalAccount:
    """A fresh, unfunded account: gas is free on both chains."""
    return Account.create()


def _deploy(chain: ChainClient, account: LocalAccount, start: int = 5) -> ContractHandle:
    compiled = counter()
    initcode = Contract(compiled.abi).encode_constructor(compiled.bytecode, start, account.address)
    address, receipt = deploy(chain, account, initcode)
    assert receipt.status == 1 and receipt.contract_address == address
    return ContractHandle(chain, compiled.abi, address)


def test_deploy_sets_code_and_constructor_state(chain: ChainClient, account: LocalAccount) -> None:
    handle = _deploy(chain, account, start=7)
    assert len(chain.code_at(handle.address)) > 100
    assert chain.code_at(account.address) == b""
    assert handle.call("count") == 7
    assert handle.call("owner") == account.address
    assert handle.call("pair", 21) == (42, account.address)


def test_transact_changes_state_and_emits_event(chain: ChainClient, account: LocalAccount) -> None:
    handle = _deploy(chain, account)
    receipt = handle.transact(account, "bump", 3)
    assert receipt.status == 1 and receipt.gas_used > 21_000
    assert handle.call("count") == 8
    assert handle.call("last") == (account.address, 8, b"\x00" * 32)
    (log,) = receipt.logs
    assert log.block_number == receipt.block_number and log.tx_hash == receipt.tx_hash
    assert handle.decode_receipt(receipt) == [("Bumped", {"who": account.address, "value": 8, "by": 3})]
    # the default-argument overload bump()
    handle.transact(account, "bump")
    assert handle.call("count") == 9


def test_call_simulates_without_changing_state(chain: ChainClient, account: LocalAccount) -> None:
    handle = _deploy(chain, account)
    block = chain.block_number()
    assert handle.call("bump", 10, sender=account.address) == 15
    assert handle.call("count") == 5
    assert chain.block_number() == block


def test_revert_reason_from_call_and_from_transaction(chain: ChainClient, account: LocalAccount) -> None:
    handle = _deploy(chain, account)
    other = Account.create()
    with pytest.raises(Reverted, match="by must be positive"):
        handle.call("bump", 0)
    with pytest.raises(Reverted) as caught:
        handle.call("only_owner", sender=other.address)
    assert caught.value.reason == "not the owner"
    # estimating gas executes the call: a doomed transaction is refused before signing
    with pytest.raises(Reverted, match="not the owner"):
        handle.transact(other, "only_owner")
    # with explicit gas it is mined, fails, and the reason comes from the mined transaction
    data = handle.contract.encode("only_owner")
    signed = chain.sign(other, handle.address, data, chain.nonce(other.address), gas=200_000)
    with pytest.raises(Reverted) as mined:
        chain.send_raw(signed.raw)
    assert mined.value.reason == "not the owner"
    failed = mined.value.receipt
    assert failed is not None and failed.status == 0 and failed.tx_hash == signed.tx_hash
    assert chain.receipt(signed.tx_hash) == failed
    assert chain.nonce(other.address) == 1  # a failed transaction still uses its nonce
    assert handle.call("count") == 5


def test_revert_without_reason(chain: ChainClient, account: LocalAccount) -> None:
    handle = _deploy(chain, account)
    with pytest.raises(Reverted, match="without a reason"):
        handle.call("fail_silently", 1)
    assert handle.call("fail_silently", 42) is None


def test_logs_by_block_range_and_address(chain: ChainClient, account: LocalAccount) -> None:
    first = _deploy(chain, account)
    second = _deploy(chain, account)
    receipts = [first.transact(account, "bump", by) for by in (1, 2, 3)]
    other = second.transact(account, "bump", 4)
    blocks = [r.block_number for r in receipts]
    assert blocks == sorted(blocks) and len(set(blocks)) == 3  # one transaction per block

    logs = chain.logs([first.address], blocks[0], blocks[2])
    assert [log.block_number for log in logs] == blocks
    assert [log.tx_hash for log in logs] == [r.tx_hash for r in receipts]
    assert chain.logs([first.address], blocks[1], blocks[1]) == [receipts[1].logs[0]]
    assert chain.logs([first.address], blocks[2] + 1) == []
    both = chain.logs([first.address, second.address], blocks[0])
    assert len(both) == 4 and both[-1] == other.logs[0]
    events = first.events(blocks[0])
    assert [(name, args["by"]) for name, args, _ in events] == [("Bumped", 1), ("Bumped", 2), ("Bumped", 3)]


def test_indexed_dynamic_event_arguments_are_hashes(chain: ChainClient, account: LocalAccount) -> None:
    handle = _deploy(chain, account)
    tag = keccak(text="tag")
    receipt = handle.transact(account, "note", "collection", tag, "free text")
    ((name, args),) = handle.decode_receipt(receipt)
    assert name == "Noted"
    assert args == {"label": keccak(text="collection"), "tag": tag, "text": "free text"}


def test_nonce_counts_every_transaction(chain: ChainClient, account: LocalAccount) -> None:
    assert chain.nonce(account.address) == 0
    handle = _deploy(chain, account)
    assert chain.nonce(account.address) == 1
    handle.transact(account, "bump", 1)
    handle.transact(account, "bump", 1)
    assert chain.nonce(account.address) == 3


def test_receipt_lookup_by_hash(chain: ChainClient, account: LocalAccount) -> None:
    handle = _deploy(chain, account)
    receipt = handle.transact(account, "bump", 2)
    found = chain.receipt(receipt.tx_hash)
    assert found == receipt
    assert isinstance(found, Receipt) and found.logs[0].address == handle.address
    assert chain.receipt(keccak(text="no such transaction")) is None


def test_resending_the_same_raw_transaction_is_idempotent(chain: ChainClient, account: LocalAccount) -> None:
    handle = _deploy(chain, account)
    signed = chain.sign(account, handle.address, handle.contract.encode("bump", 5), chain.nonce(account.address))
    first = chain.send_raw(signed.raw)
    block = chain.block_number()
    again = chain.send_raw(signed.raw)
    assert again == first and first.tx_hash == signed.tx_hash
    assert handle.call("count") == 10  # applied once
    assert chain.block_number() == block


def test_a_stale_nonce_is_rejected(chain: ChainClient, account: LocalAccount) -> None:
    handle = _deploy(chain, account)
    handle.transact(account, "bump", 1)
    stale = chain.sign(account, handle.address, handle.contract.encode("bump", 2), 1, gas=100_000)
    with pytest.raises(TxRejected, match=r"(?i)nonce"):
        chain.send_raw(stale.raw)
    assert handle.call("count") == 6


def test_block_timestamps_do_not_go_back(chain: ChainClient, account: LocalAccount) -> None:
    # anvil may give blocks of one second the same timestamp; the embedded chain never does
    handle = _deploy(chain, account)
    receipts = [handle.transact(account, "bump", 1) for _ in range(3)]
    stamps = [chain.block_timestamp(r.block_number) for r in receipts]
    assert stamps[0] <= stamps[1] <= stamps[2]
    assert abs(stamps[0] - time.time()) < 600


def test_transact_helper_sends_plain_calldata(chain: ChainClient, account: LocalAccount) -> None:
    handle = _deploy(chain, account)
    receipt = transact(chain, account, handle.address, handle.contract.encode("bump", 4))
    assert receipt.status == 1 and handle.call("count") == 9


def test_an_included_transaction_reads_back_with_its_calldata(chain: ChainClient, account: LocalAccount) -> None:
    handle = _deploy(chain, account)
    data = handle.contract.encode("bump", 6)
    receipt = transact(chain, account, handle.address, data)
    tx = chain.transaction(receipt.tx_hash)
    assert tx is not None
    assert (tx.tx_hash, tx.block_number, tx.data) == (receipt.tx_hash, receipt.block_number, data)
    assert tx.sender == account.address and tx.to == handle.address and tx.nonce == 1
    deployment = chain.transaction(deploy(chain, account, Contract(counter().abi).encode_constructor(
        counter().bytecode, 1, account.address))[1].tx_hash)
    assert deployment is not None and deployment.to is None and deployment.data.startswith(counter().bytecode)
    assert chain.transaction(keccak(text="no such transaction")) is None
