"""The authenticated caller of a request, job or CLI command, and what it may do."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from biobank.identity.models import Role, UserKind

WRITE_ROLES = frozenset({Role.MANAGER, Role.TECHNICIAN})


@dataclass(frozen=True)
class Principal:
    """Who is acting: their pseudonymous id, node roles and roles per biobank (by biobank row id)."""

    user_id: int
    public_id: str
    username: str
    institution_code: str
    kind: UserKind = UserKind.STAFF
    is_admin: bool = False
    is_auditor: bool = False
    roles: dict[int, Role] = field(default_factory=dict)
    scopes: frozenset[str] = frozenset({"read", "write"})
    via: str = "session"
    csrf_token: str | None = None
    client_hash: str | None = None

    def visible_biobank_ids(self) -> list[int] | None:
        """Biobanks whose private records this principal may read; None means all (node admin)."""
        if self.is_admin:
            return None
        return sorted(self.roles)

    def can_read(self, biobank_id: int) -> bool:
        """May read this biobank's donors and specimens."""
        return self.is_admin or biobank_id in self.roles

    def can_write(self, biobank_id: int) -> bool:
        """May register and change this biobank's donors, specimens and storage."""
        if "write" not in self.scopes:
            return False
        return self.is_admin or self.roles.get(biobank_id) in WRITE_ROLES

    def can_manage(self, biobank_id: int) -> bool:
        """May curate this biobank's collections and settings."""
        if "write" not in self.scopes:
            return False
        return self.is_admin or self.roles.get(biobank_id) is Role.MANAGER

    def writable_biobank_ids(self, candidates: Iterable[int]) -> list[int]:
        """The candidates this principal may write to."""
        return [b for b in candidates if self.can_write(b)]


def system_principal(institution_code: str) -> Principal:
    """The node itself, acting in CLI commands and jobs."""
    return Principal(
        user_id=0, public_id="system", username="system", institution_code=institution_code, is_admin=True, via="system"
    )
