"""The node's chain accounts: one secp256k1 key per role of the local institution, derived (HKDF)
from the node secret, so there is nothing extra to store or leak. Signatures are EIP-191."""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntFlag

from eth_account import Account
from eth_account.messages import encode_defunct
from eth_account.signers.local import LocalAccount

from biobank.config import Settings
from biobank.kit.crypto import derive_key


class Role(IntFlag):
    """Role bit flags of the InstitutionRegistry contract (keep in step with the .vy source)."""

    INSTITUTION_ADMIN = 1
    BIOBANK_OPERATOR = 2
    ETHICS_REVIEWER = 4
    RESEARCHER = 8
    ANCHORER = 16


ROLE_NAMES = {
    Role.INSTITUTION_ADMIN: "institution_admin",
    Role.BIOBANK_OPERATOR: "biobank_operator",
    Role.ETHICS_REVIEWER: "ethics_reviewer",
    Role.RESEARCHER: "researcher",
    Role.ANCHORER: "anchorer",
}
# The deployer of the contracts on a chain is the consortium admin.
CONSORTIUM_ADMIN = "consortium_admin"


@dataclass(frozen=True)
class NodeAccount:
    """A role account of this node's institution."""

    name: str
    account: LocalAccount

    @property
    def address(self) -> str:
        """Checksummed address."""
        return str(self.account.address)


def account_for(settings: Settings, role_name: str, institution: str | None = None) -> NodeAccount:
    """The account of `role_name` (a ROLE_NAMES value or CONSORTIUM_ADMIN) for the local institution."""
    code = institution or settings.institution_code
    secret = settings.secret("secret_key")
    key = derive_key(secret, f"ledger-key/{code}/{role_name}")
    # a 32-byte HKDF output is a valid secp256k1 key except with negligible probability
    return NodeAccount(role_name, Account.from_key(key))


def role_account(settings: Settings, role: Role, institution: str | None = None) -> NodeAccount:
    """The account of one role flag."""
    return account_for(settings, ROLE_NAMES[role], institution)


def sign_digest(account: NodeAccount, digest: bytes) -> bytes:
    """EIP-191 ("\\x19Ethereum Signed Message:\\n32") signature of a 32-byte digest: 65 bytes r||s||v."""
    if len(digest) != 32:
        raise ValueError("digest must be 32 bytes")
    signed = account.account.sign_message(encode_defunct(primitive=digest))
    return bytes(signed.signature)


def recover_signer(digest: bytes, signature: bytes) -> str:
    """The address that made an EIP-191 signature of `digest`."""
    return str(Account.recover_message(encode_defunct(primitive=digest), signature=signature))
