"""API schemas of users and tokens."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from biobank.identity.models import Role, UserKind
from biobank.kit.schemas import ReadSchema, Schema


class MembershipRead(ReadSchema):
    biobank: str
    role: Role


class MeRead(ReadSchema):
    public_id: str
    username: str
    kind: UserKind
    is_admin: bool
    is_auditor: bool
    memberships: list[MembershipRead]


class UserCreate(Schema):
    username: str = Field(min_length=3, max_length=64)
    password: str = Field(min_length=10, max_length=200)
    display_name: str = ""
    is_admin: bool = False
    is_auditor: bool = False


class UserRead(ReadSchema):
    public_id: str
    username: str
    display_name: str
    kind: UserKind
    is_admin: bool
    is_auditor: bool
    is_active: bool


class RoleGrant(Schema):
    biobank: str = Field(description="biobank code")
    role: Role


class TokenCreate(Schema):
    name: str = Field(min_length=1, max_length=100)
    scopes: list[str] = Field(default_factory=lambda: ["read", "write"])
    days: int = Field(default=90, ge=1, le=366)


class TokenRead(ReadSchema):
    public_id: str
    name: str
    scopes: list[str]
    created_at: datetime
    expires_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None


class TokenCreated(TokenRead):
    token: str = Field(description="the secret; shown only once")


class LoginRequest(Schema):
    username: str
    password: str
