"""Offline ABI helpers: calldata, results, constructor arguments, logs."""

from __future__ import annotations

import pytest
from eth_abi import encode
from eth_account import Account
from eth_utils import function_signature_to_4byte_selector, keccak

from biobank.ledger.client import LogEntry, revert_reason
from biobank.ledger.codec import Contract
from tests.ledger.chain.counter import counter

ABI_WITH_ARRAYS = [
    {
        "type": "function",
        "name": "fee",
        "stateMutability": "nonpayable",
        "outputs": [],
        "inputs": [
            {"name": "agreement", "type": "bytes32"},
            {"name": "institutions", "type": "bytes32[]"},
            {"name": "bps", "type": "uint16[]"},
            {"name": "to", "type": "address"},
        ],
    },
]


def test_calldata_matches_the_canonical_encoding() -> None:
    contract = Contract(counter().abi)
    assert contract.encode("bump", 3) == function_signature_to_4byte_selector("bump(uint256)") + encode(
        ["uint256"], [3]
    )
    assert contract.encode("bump") == function_signature_to_4byte_selector("bump()")  # the overload by arity
    assert contract.selector("note") == function_signature_to_4byte_selector("note(string,bytes32,string)")
    with pytest.raises(TypeError, match="arguments"):
        contract.encode("bump", 1, 2)
    with pytest.raises(KeyError):
        contract.encode("nope")


def test_hex_strings_are_accepted_for_bytes_and_arrays() -> None:
    contract = Contract(ABI_WITH_ARRAYS)
    a, b = keccak(text="a"), keccak(text="b")
    to = Account.create().address
    expected = contract.encode("fee", a, [a, b], [5000, 5000], to)
    assert contract.encode("fee", "0x" + a.hex(), [a.hex(), "0x" + b.hex()], [5000, 5000], to) == expected


def test_results_decode_to_values_and_tuples_with_checksummed_addresses() -> None:
    contract = Contract(counter().abi)
    owner = Account.create().address
    assert contract.decode("count", encode(["uint256"], [9])) == 9
    assert contract.decode("pair", encode(["uint256", "address"], [4, owner.lower()]), 1) == (4, owner)
    assert contract.decode("last", encode(["(address,uint256,bytes32)"], [(owner, 1, b"\x01" * 32)])) == (
        owner,
        1,
        b"\x01" * 32,
    )
    assert contract.decode("only_owner", b"") is None


def test_constructor_arguments_are_appended() -> None:
    compiled = counter()
    owner = Account.create().address
    initcode = Contract(compiled.abi).encode_constructor("0x" + compiled.bytecode.hex(), 7, owner)
    assert initcode == compiled.bytecode + encode(["uint256", "address"], [7, owner])
    with pytest.raises(TypeError, match="constructor takes 2"):
        Contract(compiled.abi).encode_constructor(compiled.bytecode, 7)


def test_logs_of_other_contracts_or_events_are_not_decoded() -> None:
    address = Account.create().address
    contract = Contract(counter().abi, address)
    topic = keccak(text="Bumped(address,uint256,uint256)")
    who = Account.create().address
    log = LogEntry(
        address,
        (topic, b"\x00" * 12 + bytes.fromhex(who[2:])),
        encode(["uint256", "uint256"], [2, 1]),
        3,
        b"\x01" * 32,
        0,
    )
    assert contract.decode_log(log) == ("Bumped", {"who": who, "value": 2, "by": 1})
    assert contract.decode_log(LogEntry(Account.create().address, log.topics, log.data, 3, b"", 0)) is None
    assert contract.decode_log(LogEntry(address, (keccak(text="Other()"),), b"", 3, b"", 0)) is None
    assert contract.decode_log(LogEntry(address, (), b"", 3, b"", 0)) is None
    assert contract.event_topic("Bumped") == topic


def test_revert_reasons() -> None:
    error = function_signature_to_4byte_selector("Error(string)") + encode(["string"], ["no"])
    panic = function_signature_to_4byte_selector("Panic(uint256)") + encode(["uint256"], [0x11])
    assert revert_reason(error) == "no"
    assert revert_reason(panic) == "panic 0x11"
    assert revert_reason(b"") == "reverted without a reason"
    assert revert_reason(b"\xde\xad") == "0xdead"
