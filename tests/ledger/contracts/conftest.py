"""Contract fixtures: the exact bytecode from biobank.ledger.compiler deployed on titanoboa's py-evm,
three institutions with one key per role, and a state snapshot rolled back after every test."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boa
import pytest
from eth_abi import encode
from eth_account import Account
from eth_account.messages import encode_defunct
from eth_account.signers.local import LocalAccount
from eth_utils import keccak

from biobank.ledger.compiler import compile_contract
from biobank.ledger.keys import Role

ROLE_ATTRS = {
    Role.BIOBANK_OPERATOR: "operator",
    Role.ETHICS_REVIEWER: "reviewer",
    Role.RESEARCHER: "researcher",
    Role.ANCHORER: "anchorer",
}


def key_account(label: str) -> LocalAccount:
    """A deterministic test key."""
    return Account.from_key(keccak(text=f"biobank-test/{label}"))


def inst_id(code: str) -> bytes:
    """Institution id: keccak256(code)."""
    return keccak(text=code)


def h(label: str) -> bytes:
    """A bytes32 test value."""
    return keccak(text=label)


def sign(account: LocalAccount, digest: bytes) -> bytes:
    """EIP-191 signature of a 32-byte digest (as biobank.ledger.keys.sign_digest)."""
    return bytes(account.sign_message(encode_defunct(primitive=digest)).signature)


def deploy(name: str, *args: Any) -> Any:
    """Deploy the compiler's exact bytecode and wrap it with its ABI."""
    compiled = compile_contract(name)
    ctor = next((item for item in compiled.abi if item["type"] == "constructor"), None)
    data = compiled.bytecode
    if ctor is not None:
        data += encode([arg["type"] for arg in ctor["inputs"]], list(args))
    address, _ = boa.env.deploy_code(bytecode=data)
    return boa.loads_abi(json.dumps(compiled.abi), name=name).at(address)


def events(contract: Any, name: str) -> list[Any]:
    """Decoded events of one name emitted by the last transaction."""
    return [log for log in contract.get_logs() if type(log).__name__ == name]


@dataclass
class Inst:
    """A member institution with one account per role."""

    code: str
    id: bytes
    admin: LocalAccount
    operator: LocalAccount
    reviewer: LocalAccount
    researcher: LocalAccount
    anchorer: LocalAccount


@dataclass
class World:
    """Deployed contracts and the institutions A, B, C (all active) plus an outsider."""

    deployer: str
    registry: Any
    resources: Any
    agreements: Any
    revenue: Any
    anchors: Any
    a: Inst
    b: Inst
    c: Inst
    outsider: LocalAccount


def make_inst(registry: Any, code: str) -> Inst:
    """Register an institution and grant one account per role."""
    accounts = {attr: key_account(f"{code}/{attr}") for attr in ["admin", *ROLE_ATTRS.values()]}
    inst = Inst(code=code, id=inst_id(code), **accounts)
    registry.add_institution(inst.id, code, inst.admin.address)
    with boa.env.prank(inst.admin.address):
        for role, attr in ROLE_ATTRS.items():
            registry.grant_role(inst.id, accounts[attr].address, int(role))
    return inst


@pytest.fixture(scope="session")
def world() -> World:
    """Deploy all five contracts once per session."""
    deployer = str(boa.env.eoa)
    registry = deploy("InstitutionRegistry")
    resources = deploy("ResourceRegistry", registry.address)
    agreements = deploy("AccessAgreements", registry.address)
    revenue = deploy("RevenueLedger", registry.address)
    anchors = deploy("AuditAnchors", registry.address)
    for contract in (resources, agreements, revenue, anchors):
        registry.set_contract(contract.contract_name, contract.address)
    return World(
        deployer=deployer,
        registry=registry,
        resources=resources,
        agreements=agreements,
        revenue=revenue,
        anchors=anchors,
        a=make_inst(registry, "CN-SH-A"),
        b=make_inst(registry, "CN-SH-B"),
        c=make_inst(registry, "CN-BJ-C"),
        outsider=key_account("outsider"),
    )


@pytest.fixture(autouse=True)
def _rollback(world: World) -> Iterator[None]:
    """Every test starts from the freshly set-up world."""
    with boa.env.anchor():
        yield


def as_(account: LocalAccount | str) -> Any:
    """Context manager: send the next calls from `account`."""
    return boa.env.prank(account if isinstance(account, str) else account.address)


def who(world: World, spec: str) -> str:
    """Address named by a short spec: "deployer", "outsider" or "<a|b|c>.<role attr>"."""
    if spec == "deployer":
        return world.deployer
    if spec == "outsider":
        return str(world.outsider.address)
    inst_name, attr = spec.split(".")
    return str(getattr(getattr(world, inst_name), attr).address)
