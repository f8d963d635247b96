"""The JSON-RPC client on real anvil nodes: an unreachable node, a node that does not mine,
two clients sharing one node, the QBFT middleware."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from eth_account import Account
from web3.middleware import ExtraDataToPOAMiddleware

from biobank.ledger.client import ChainUnavailable, deploy
from biobank.ledger.codec import Contract, ContractHandle
from biobank.ledger.jsonrpc import JsonRpcChain
from tests.ledger.chain.counter import counter
from tests.ledger.conftest import AnvilNode, free_port, start_anvil


@pytest.fixture
def own_anvil() -> Iterator[AnvilNode]:
    """An anvil of this test alone (it will be stopped or stop mining)."""
    node = start_anvil(chain_id=4242)
    try:
        yield node
    finally:
        node.stop()


def test_a_node_that_is_not_there_is_unavailable() -> None:
    client = JsonRpcChain(f"http://127.0.0.1:{free_port()}", timeout=2)  # opening does not connect
    account = Account.create()
    with pytest.raises(ChainUnavailable):
        client.block_number()
    with pytest.raises(ChainUnavailable):
        client.chain_id  # noqa: B018 - the property asks the node
    with pytest.raises(ChainUnavailable):
        client.receipt(b"\x00" * 32)
    with pytest.raises(ChainUnavailable):
        client.sign(account, account.address, b"", 0)
    client.close()


def test_a_node_that_goes_down_is_unavailable_then_back(own_anvil: AnvilNode) -> None:
    client = JsonRpcChain(own_anvil.url, timeout=2)
    account = Account.create()
    compiled = counter()
    address, _ = deploy(
        client, account, Contract(compiled.abi).encode_constructor(compiled.bytecode, 0, account.address)
    )
    handle = ContractHandle(client, compiled.abi, address)
    signed = client.sign(account, address, handle.contract.encode("bump", 1), client.nonce(account.address))
    own_anvil.stop()
    with pytest.raises(ChainUnavailable):
        client.send_raw(signed.raw)
    with pytest.raises(ChainUnavailable):
        handle.call("count")
    with pytest.raises(ChainUnavailable):
        client.logs([address], 0)
    client.close()


def test_a_transaction_not_mined_in_time_is_unavailable_and_resent_later(own_anvil: AnvilNode) -> None:
    client = JsonRpcChain(own_anvil.url, timeout=1, poll_seconds=0.05)
    account = Account.create()
    client.w3.provider.make_request("evm_setAutomine", [False])  # type: ignore[arg-type]
    signed = client.sign(account, account.address, b"", 0, gas=21_000)
    with pytest.raises(ChainUnavailable, match="not included"):
        client.send_raw(signed.raw)
    assert client.receipt(signed.tx_hash) is None
    assert client.nonce(account.address) == 1  # pending counts
    client.w3.provider.make_request("evm_mine", [])  # type: ignore[arg-type]
    receipt = client.send_raw(signed.raw)  # the outbox's retry: same bytes, the one inclusion
    assert receipt.status == 1 and receipt.tx_hash == signed.tx_hash
    client.close()


def test_two_clients_on_one_node_see_each_others_transactions(anvil: str) -> None:
    first, second = JsonRpcChain(anvil), JsonRpcChain(anvil)
    alice, bob = Account.create(), Account.create()
    compiled = counter()
    try:
        address, _ = deploy(
            first, alice, Contract(compiled.abi).encode_constructor(compiled.bytecode, 1, alice.address)
        )
        mine, theirs = ContractHandle(first, compiled.abi, address), ContractHandle(second, compiled.abi, address)
        assert second.code_at(address) == first.code_at(address) != b""
        receipt = theirs.transact(bob, "bump", 5)
        assert mine.call("count") == 6
        assert first.receipt(receipt.tx_hash) == receipt
        assert [args for _, args, _ in mine.events(receipt.block_number)] == [{"who": bob.address, "value": 6, "by": 5}]
        mine.transact(alice, "bump", 1)
        assert theirs.call("count") == 7 and second.block_number() == first.block_number()
    finally:
        first.close()
        second.close()


def test_qbft_extra_data_middleware_is_installed(anvil: str) -> None:
    client = JsonRpcChain(anvil)
    assert ExtraDataToPOAMiddleware in list(client.w3.middleware_onion)
    assert client.w3.eth.get_block("latest")["number"] >= 0  # and the chain's blocks still read
    client.close()
