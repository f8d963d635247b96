"""Queries over users, memberships, tokens, sessions and login attempts."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TypeVar

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from biobank.identity.models import ApiToken, LoginAttempt, Membership, Role, User, UserSession


def user_by_username(session: Session, username: str) -> User | None:
    return session.scalars(select(User).where(func.lower(User.username) == username.lower())).first()


def user_by_id(session: Session, user_id: int) -> User | None:
    return session.get(User, user_id)


def roles_of(session: Session, user_id: int) -> dict[int, Role]:
    rows = session.execute(select(Membership.biobank_id, Membership.role).where(Membership.user_id == user_id))
    return {biobank_id: Role(role) for biobank_id, role in rows}


def membership(session: Session, user_id: int, biobank_id: int) -> Membership | None:
    return session.scalars(
        select(Membership).where(Membership.user_id == user_id, Membership.biobank_id == biobank_id)
    ).first()


def session_by_hash(session: Session, token_hash: str) -> UserSession | None:
    return session.scalars(select(UserSession).where(UserSession.token_hash == token_hash)).first()


def token_by_hash(session: Session, token_hash: str) -> ApiToken | None:
    return session.scalars(select(ApiToken).where(ApiToken.token_hash == token_hash)).first()


def token_with_roles(session: Session, token_hash: str) -> tuple[ApiToken, User, dict[int, Role]] | None:
    """A token, its user and the user's roles in one statement (every API request starts here)."""
    stmt = (
        select(ApiToken, User, Membership.biobank_id, Membership.role)
        .join(User, User.id == ApiToken.user_id)
        .outerjoin(Membership, Membership.user_id == User.id)
        .where(ApiToken.token_hash == token_hash)
    )
    return _with_roles(session.execute(stmt).all())


def session_with_roles(session: Session, token_hash: str) -> tuple[UserSession, User, dict[int, Role]] | None:
    """A browser session, its user and the user's roles in one statement."""
    stmt = (
        select(UserSession, User, Membership.biobank_id, Membership.role)
        .join(User, User.id == UserSession.user_id)
        .outerjoin(Membership, Membership.user_id == User.id)
        .where(UserSession.token_hash == token_hash)
    )
    return _with_roles(session.execute(stmt).all())


_Credential = TypeVar("_Credential", ApiToken, UserSession)


def _with_roles(
    rows: Sequence[tuple[_Credential, User, int | None, Role | None]],
) -> tuple[_Credential, User, dict[int, Role]] | None:
    """One row per membership (a single row with no role when the user has none)."""
    if not rows:
        return None
    roles = {biobank_id: Role(role) for _, _, biobank_id, role in rows if biobank_id is not None and role is not None}
    return rows[0][0], rows[0][1], roles


def recent_failures(session: Session, subject_hash: str, since: datetime) -> int:
    """Failed attempts for a subject since `since` and after its last success."""
    last_success = session.execute(
        select(func.max(LoginAttempt.at)).where(LoginAttempt.subject_hash == subject_hash, LoginAttempt.success)
    ).scalar_one_or_none()
    start = max(since, last_success) if last_success else since
    return session.execute(
        select(func.count()).where(
            LoginAttempt.subject_hash == subject_hash, LoginAttempt.success.is_(False), LoginAttempt.at > start
        )
    ).scalar_one()


def list_users(session: Session) -> list[User]:
    return list(session.scalars(select(User).order_by(User.username)))


def tokens_of(session: Session, user_id: int) -> list[ApiToken]:
    return list(session.scalars(select(ApiToken).where(ApiToken.user_id == user_id).order_by(ApiToken.created_at)))
