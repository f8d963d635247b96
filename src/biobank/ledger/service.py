"""The node's view of the consortium chain: a client, the contract addresses, the node's accounts.

`open_ledger` connects (embedded chain or JSON-RPC), finds the contracts — recorded locally, read from
the registry named in settings, or, on the embedded chain, deployed at first start — and makes sure
the local institution and its role accounts are registered.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from biobank.config import Settings
from biobank.kit.errors import Conflict
from biobank.ledger import keys
from biobank.ledger.client import ChainClient, Receipt, deploy, open_client
from biobank.ledger.codec import Contract, ContractHandle
from biobank.ledger.compiler import CONTRACT_NAMES, Compiled, compile_all
from biobank.ledger.keys import CONSORTIUM_ADMIN, NodeAccount, Role
from biobank.ledger.models import LedgerContract
from biobank.ledger.refs import institution_ref

log = logging.getLogger("biobank.ledger")

REGISTRY = "InstitutionRegistry"
ALL_ROLES = Role.INSTITUTION_ADMIN | Role.BIOBANK_OPERATOR | Role.ETHICS_REVIEWER | Role.RESEARCHER | Role.ANCHORER
# Constructor arguments of each contract after the registry, by the name of a deployed contract.
CONSTRUCTOR_ARGS: dict[str, tuple[str, ...]] = {
    "InstitutionRegistry": (),
    "ResourceRegistry": ("InstitutionRegistry",),
    "AccessAgreements": ("InstitutionRegistry",),
    "RevenueLedger": ("InstitutionRegistry",),
    "AuditAnchors": ("InstitutionRegistry",),
}


class LedgerNotDeployed(Conflict):
    """The chain has no contracts this node knows of."""


@dataclass
class Ledger:
    """A connected chain with the consortium's contracts."""

    settings: Settings
    client: ChainClient
    addresses: dict[str, str]
    compiled: dict[str, Compiled] = field(default_factory=compile_all)

    def contract(self, name: str) -> Contract:
        """The offline encoder/decoder of one contract at its address."""
        return Contract(self.compiled[name].abi, self.addresses[name])

    def handle(self, name: str) -> ContractHandle:
        """A handle to call and transact on one contract."""
        return ContractHandle(self.client, self.compiled[name].abi, self.addresses[name])

    def account(self, role_name: str) -> NodeAccount:
        """One of the node's accounts (a role name or CONSORTIUM_ADMIN)."""
        return keys.account_for(self.settings, role_name)

    @property
    def institution(self) -> str:
        """bytes32 (hex) of the local institution."""
        return institution_ref(self.settings.institution_code)

    def close(self) -> None:
        """Close the client."""
        self.client.close()


def code_hash(client: ChainClient, address: str) -> str:
    """keccak of the runtime code at an address (0x-hex)."""
    return "0x" + keccak(client.code_at(address)).hex()


def deploy_contracts(client: ChainClient, settings: Settings) -> dict[str, str]:
    """Deploy the five contracts from the consortium admin account and record them in the registry."""
    admin = keys.account_for(settings, CONSORTIUM_ADMIN)
    compiled = compile_all()
    addresses: dict[str, str] = {}
    for name in CONTRACT_NAMES:
        args = [addresses[dep] for dep in CONSTRUCTOR_ARGS[name]]
        initcode = Contract(compiled[name].abi, None).encode_constructor(compiled[name].bytecode, *args)
        address, _ = deploy(client, admin.account, initcode)
        addresses[name] = to_checksum_address(address)
    registry = ContractHandle(client, compiled[REGISTRY].abi, addresses[REGISTRY])
    for name in CONTRACT_NAMES:
        if name != REGISTRY:
            registry.transact(admin.account, "set_contract", name, addresses[name])
    log.info("ledger contracts deployed", extra={"chain_id": client.chain_id, "registry": addresses[REGISTRY]})
    return addresses


def addresses_from_registry(client: ChainClient, registry_address: str) -> dict[str, str]:
    """The sibling contracts' addresses recorded in the registry by the consortium admin."""
    compiled = compile_all()
    registry = ContractHandle(client, compiled[REGISTRY].abi, to_checksum_address(registry_address))
    out: dict[str, str] = {REGISTRY: to_checksum_address(registry_address)}
    for name in CONTRACT_NAMES:
        if name == REGISTRY:
            continue
        address = registry.call("contract_address", name)
        if int(str(address), 16) == 0:
            raise LedgerNotDeployed(f"the registry at {registry_address} does not name a {name} contract")
        out[name] = to_checksum_address(address)
    return out


def recorded_addresses(session: Session, chain_id: int) -> dict[str, str]:
    """Contract addresses this node recorded for a chain."""
    rows = session.scalars(select(LedgerContract).where(LedgerContract.chain_id == chain_id)).all()
    return {row.name: row.address for row in rows}


def record_addresses(session: Session, client: ChainClient, addresses: dict[str, str], block: int = 0) -> None:
    """Remember the contracts of a chain (replacing what was recorded for it)."""
    for row in session.scalars(select(LedgerContract).where(LedgerContract.chain_id == client.chain_id)).all():
        session.delete(row)
    session.flush()
    for name, address in addresses.items():
        session.add(LedgerContract(chain_id=client.chain_id, name=name, address=address,
                                   code_hash=code_hash(client, address), deployed_block=block))
    session.flush()


def is_registered(ledger: Ledger, role: Role, role_name: str | None = None) -> bool:
    """Whether the node's account for `role` holds it on chain."""
    account = ledger.account(role_name or keys.ROLE_NAMES[role])
    return bool(ledger.handle(REGISTRY).call("has_role", account.address, int(role)))


def admit_institution(ledger: Ledger, code: str, admin_address: str) -> Receipt | None:
    """As consortium admin: add an institution with its admin account (no-op if it exists)."""
    registry = ledger.handle(REGISTRY)
    inst = bytes.fromhex(institution_ref(code)[2:])
    if _institution_exists(registry, inst):
        return None
    admin = ledger.account(CONSORTIUM_ADMIN)
    return registry.transact(admin.account, "add_institution", inst, code, to_checksum_address(admin_address))


def _institution_exists(registry: ContractHandle, inst: bytes) -> bool:
    return bool(registry.call("is_registered", inst))


def grant_local_roles(ledger: Ledger) -> list[Receipt]:
    """As the local institution's admin: give each role account its role (skips those already set)."""
    registry = ledger.handle(REGISTRY)
    admin = ledger.account(keys.ROLE_NAMES[Role.INSTITUTION_ADMIN])
    inst = bytes.fromhex(ledger.institution[2:])
    receipts = []
    for role, name in keys.ROLE_NAMES.items():
        if role is Role.INSTITUTION_ADMIN:
            continue
        account = ledger.account(name)
        if int(registry.call("roles_of", account.address)) & int(role):
            continue  # granted (even while the institution is suspended)
        receipts.append(registry.transact(admin.account, "grant_role", inst, account.address, int(role)))
    return receipts


def bootstrap_local(ledger: Ledger) -> None:
    """Register the local institution (when this node is the consortium admin) and its role accounts."""
    admin_address = ledger.account(keys.ROLE_NAMES[Role.INSTITUTION_ADMIN]).address
    consortium_admin = ledger.handle(REGISTRY).call("admin")
    if to_checksum_address(consortium_admin) == ledger.account(CONSORTIUM_ADMIN).address:
        admit_institution(ledger, ledger.settings.institution_code, admin_address)
    if not _institution_exists(ledger.handle(REGISTRY), bytes.fromhex(ledger.institution[2:])):
        raise LedgerNotDeployed(
            f"institution {ledger.settings.institution_code} is not admitted yet: ask the consortium admin to run "
            f"`biobank ledger admit {ledger.settings.institution_code} {admin_address}`"
        )
    if ledger.handle(REGISTRY).call("is_active", bytes.fromhex(ledger.institution[2:])):
        grant_local_roles(ledger)
    else:
        log.warning("institution suspended on chain", extra={"institution": ledger.settings.institution_code})


def open_ledger(settings: Settings, sessions: sessionmaker[Session], *, client: ChainClient | None = None,
                deploy_if_missing: bool | None = None) -> Ledger:
    """Connect, find (or on the embedded chain deploy) the contracts, register the local institution."""
    client = client or open_client(settings)
    try:
        with sessions() as session:
            addresses = recorded_addresses(session, client.chain_id)
        if addresses and any(not client.code_at(a) for a in addresses.values()):
            addresses = {}  # a fresh chain behind the same id (e.g. a restarted dev node)
        if not addresses and settings.ledger_registry:
            addresses = addresses_from_registry(client, settings.ledger_registry)
        if not addresses:
            embedded = settings.ledger_url == "embedded"
            if not (deploy_if_missing if deploy_if_missing is not None else embedded):
                raise LedgerNotDeployed(
                    "no contracts known on this chain: run `biobank ledger deploy` (consortium admin) "
                    "or set BIOBANK_LEDGER_REGISTRY to the registry's address"
                )
            addresses = deploy_contracts(client, settings)
        with sessions() as session, session.begin():
            if recorded_addresses(session, client.chain_id) != addresses:
                record_addresses(session, client, addresses, client.block_number())
        ledger = Ledger(settings, client, addresses)
        bootstrap_local(ledger)
        return ledger
    except BaseException:
        if client is not None:
            client.close()
        raise


def describe(ledger: Ledger) -> dict[str, Any]:
    """Chain facts for status pages."""
    return {
        "chain_id": ledger.client.chain_id,
        "block": ledger.client.block_number(),
        "url": "embedded" if ledger.settings.ledger_url == "embedded" else ledger.settings.ledger_url,
        "institution": ledger.settings.institution_code,
        "contracts": dict(ledger.addresses),
        "accounts": {name: ledger.account(name).address for name in (*keys.ROLE_NAMES.values(), CONSORTIUM_ADMIN)},
    }
