"""REST: /api/v1/me, /api/v1/tokens, /api/v1/users (admins)."""

from __future__ import annotations

from fastapi import APIRouter

from biobank.identity import repository as repo
from biobank.identity import service
from biobank.identity.deps import CurrentPrincipal
from biobank.identity.schemas import (
    MembershipRead,
    MeRead,
    RoleGrant,
    TokenCreate,
    TokenCreated,
    TokenRead,
    UserCreate,
    UserRead,
)
from biobank.institutions import service as institutions
from biobank.kit.deps import DbSession
from biobank.kit.errors import NotPermitted

router = APIRouter(prefix="/api/v1", tags=["identity"])


@router.get("/me", response_model=MeRead)
def me(session: DbSession, principal: CurrentPrincipal) -> MeRead:
    """Who the caller is and which roles they hold."""
    codes = institutions.biobank_codes(session, list(principal.roles))
    return MeRead(
        public_id=principal.public_id,
        username=principal.username,
        kind=principal.kind,
        is_admin=principal.is_admin,
        is_auditor=principal.is_auditor,
        memberships=[MembershipRead(biobank=codes[b], role=r) for b, r in principal.roles.items()],
    )


@router.get("/tokens", response_model=list[TokenRead])
def list_tokens(session: DbSession, principal: CurrentPrincipal) -> list[TokenRead]:
    """The caller's API tokens (never their secrets)."""
    return [TokenRead.model_validate(t) for t in repo.tokens_of(session, principal.user_id)]


@router.post("/tokens", response_model=TokenCreated, status_code=201)
def create_token(data: TokenCreate, session: DbSession, principal: CurrentPrincipal) -> TokenCreated:
    """Create an API token for the caller; the secret is in the response and nowhere else."""
    user = repo.user_by_id(session, principal.user_id)
    assert user is not None
    secret, token = service.create_token(session, principal, user, data.name, scopes=data.scopes, days=data.days)
    return TokenCreated.model_validate({**TokenRead.model_validate(token).model_dump(), "token": secret})


@router.delete("/tokens/{public_id}", status_code=204)
def revoke_token(public_id: str, session: DbSession, principal: CurrentPrincipal) -> None:
    """Revoke one of the caller's tokens."""
    service.revoke_token(session, principal, public_id)


@router.get("/users", response_model=list[UserRead])
def list_users(session: DbSession, principal: CurrentPrincipal) -> list[UserRead]:
    """All users of this node (node administrators)."""
    if not principal.is_admin:
        raise NotPermitted("only node administrators list users")
    return [UserRead.model_validate(u) for u in repo.list_users(session)]


@router.post("/users", response_model=UserRead, status_code=201)
def create_user(data: UserCreate, session: DbSession, principal: CurrentPrincipal) -> UserRead:
    """Create a user (node administrators)."""
    user = service.create_user(
        session,
        principal,
        data.username,
        data.password,
        display_name=data.display_name,
        is_admin=data.is_admin,
        is_auditor=data.is_auditor,
    )
    return UserRead.model_validate(user)


@router.put("/users/{username}/roles", response_model=MembershipRead)
def grant_role(username: str, data: RoleGrant, session: DbSession, principal: CurrentPrincipal) -> MembershipRead:
    """Give a user a role in a biobank (its managers or node administrators)."""
    user = service.get_user(session, username) if principal.is_admin else None
    biobank = institutions.get_biobank(session, data.biobank)
    if user is None:
        if not principal.can_manage(biobank.id):
            raise NotPermitted("only the biobank's managers or node administrators assign roles")
        user = service.get_user(session, username)
    service.grant_role(session, principal, user, biobank.id, data.role)
    return MembershipRead(biobank=biobank.code, role=data.role)
