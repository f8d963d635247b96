"""Outbox kinds → contract calls: which contract, which function, which role signs, which arguments.

The payload of an outbox row carries exactly the on-chain arguments (hex strings for bytes32/bytes,
ints for numbers), so `ledger verify` can compare a local fact with the chain by the same keys.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from biobank.ledger.keys import CONSORTIUM_ADMIN, ROLE_NAMES, Role


def _b(value: Any) -> bytes:
    """0x-hex (or bytes) → bytes."""
    if isinstance(value, bytes):
        return value
    return bytes.fromhex(str(value).removeprefix("0x"))


def _bs(values: Any) -> list[bytes]:
    return [_b(v) for v in values]


def _i(value: Any) -> int:
    return int(value)


def _s(value: Any) -> str:
    return str(value)


def _addr(value: Any) -> str:
    from eth_utils.address import to_checksum_address

    return str(to_checksum_address(str(value)))


@dataclass(frozen=True)
class Operation:
    """One outbox kind: the contract function it calls and how its payload becomes arguments."""

    kind: str
    contract: str
    function: str
    signer: str  # a ROLE_NAMES value or CONSORTIUM_ADMIN
    args: tuple[tuple[str, Callable[[Any], Any]], ...]

    def arguments(self, payload: Mapping[str, Any]) -> list[Any]:
        """The call's positional arguments from a payload; a missing key raises KeyError naming it."""
        return [convert(payload[key]) for key, convert in self.args]


OPERATOR = ROLE_NAMES[Role.BIOBANK_OPERATOR]
RESEARCHER = ROLE_NAMES[Role.RESEARCHER]
ETHICS = ROLE_NAMES[Role.ETHICS_REVIEWER]
ADMIN = ROLE_NAMES[Role.INSTITUTION_ADMIN]
ANCHORER = ROLE_NAMES[Role.ANCHORER]

_OPERATIONS = (
    Operation("institution.add", "InstitutionRegistry", "add_institution", CONSORTIUM_ADMIN,
              (("inst", _b), ("code", _s), ("admin", _addr))),
    Operation("role.grant", "InstitutionRegistry", "grant_role", ADMIN,
              (("inst", _b), ("account", _addr), ("roles", _i))),
    Operation("resource.publish", "ResourceRegistry", "publish", OPERATOR,
              (("resource", _b), ("commitment", _b))),
    Operation("request.submit", "AccessAgreements", "submit", RESEARCHER,
              (("request", _b), ("commitment", _b), ("providers", _bs), ("ethics", _b))),
    Operation("request.ethics", "AccessAgreements", "decide_ethics", ETHICS,
              (("request", _b), ("approved", bool), ("decision_hash", _b))),
    Operation("request.provider", "AccessAgreements", "decide_provider", OPERATOR,
              (("request", _b), ("provider", _b), ("available", bool))),
    Operation("request.agreement", "AccessAgreements", "record_agreement", OPERATOR,
              (("request", _b), ("provider", _b), ("terms_hash", _b), ("requester_sig", _b), ("provider_sig", _b))),
    Operation("request.dispatch", "AccessAgreements", "dispatch", OPERATOR,
              (("request", _b), ("provider", _b), ("shipment_hash", _b))),
    Operation("request.receive", "AccessAgreements", "receive", RESEARCHER,
              (("request", _b), ("provider", _b), ("condition_hash", _b))),
    Operation("request.grant", "AccessAgreements", "grant_data_access", OPERATOR,
              (("request", _b), ("provider", _b), ("until", _i))),
    Operation("request.results", "AccessAgreements", "return_results", RESEARCHER,
              (("request", _b), ("results_hash", _b))),
    Operation("request.close", "AccessAgreements", "close", RESEARCHER, (("request", _b),)),
    Operation("request.revoke", "AccessAgreements", "revoke", OPERATOR,
              (("request", _b), ("provider", _b), ("reason_hash", _b))),
    Operation("request.expire", "AccessAgreements", "expire", RESEARCHER, (("request", _b),)),
    Operation("revenue.fee", "RevenueLedger", "record_fee", OPERATOR,
              (("agreement", _b), ("amount", _i), ("institutions", _bs), ("bps", lambda v: [int(x) for x in v]),
               ("remainder_to", _b))),
    Operation("revenue.withdraw", "RevenueLedger", "withdraw", ADMIN, (("inst", _b), ("amount", _i))),
    Operation("audit.anchor", "AuditAnchors", "anchor", ANCHORER, (("size", _i), ("root", _b))),
)  # fmt: skip

OPERATIONS: dict[str, Operation] = {op.kind: op for op in _OPERATIONS}


class UnknownOperation(KeyError):
    """An outbox row whose kind no operation handles."""


def operation(kind: str) -> Operation:
    """The operation of an outbox kind."""
    try:
        return OPERATIONS[kind]
    except KeyError:
        raise UnknownOperation(kind) from None
