"""Identity use cases: users and roles, logins with throttling, browser sessions, API tokens."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from biobank import audit
from biobank.config import get_settings
from biobank.identity import repository as repo
from biobank.identity.models import ApiToken, LoginAttempt, Membership, Role, User, UserKind, UserSession
from biobank.identity.passwords import MIN_PASSWORD_LENGTH, hash_password, needs_rehash, verify_password
from biobank.identity.principal import Principal
from biobank.kit.crypto import keyed_hash
from biobank.kit.db import utcnow
from biobank.kit.errors import Conflict, Invalid, NotAuthenticated, NotFound, NotPermitted, TooManyRequests
from biobank.kit.ids import new_token, new_uuid

TOKEN_PREFIX = "bbk_"  # noqa: S105 (a prefix, not a secret)
VALID_SCOPES = frozenset({"read", "write"})
GENERIC_LOGIN_ERROR = "username or password is wrong"


def _hash_secret(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def client_hash(address: str | None) -> str | None:
    """A keyed hash of a client address: comparable in the audit log, never the address itself."""
    if not address:
        return None
    return keyed_hash(get_settings().secret("secret_key"), address, namespace="client")[:32]


def principal_for(
    session: Session,
    user: User,
    *,
    via: str,
    scopes: frozenset[str] | None = None,
    csrf_token: str | None = None,
    client: str | None = None,
    roles: dict[int, Role] | None = None,
) -> Principal:
    """Build the Principal of a user with their current roles (read here unless given)."""
    return Principal(
        user_id=user.id,
        public_id=user.public_id,
        username=user.username,
        institution_code=get_settings().institution_code,
        kind=UserKind(user.kind),
        is_admin=user.is_admin,
        is_auditor=user.is_auditor,
        roles=roles if roles is not None else repo.roles_of(session, user.id),
        scopes=scopes if scopes is not None else frozenset(VALID_SCOPES),
        via=via,
        csrf_token=csrf_token,
        client_hash=client,
    )


def validate_username(username: str) -> str:
    cleaned = username.strip()
    if not 3 <= len(cleaned) <= 64 or not all(c.isalnum() or c in "._-@" for c in cleaned):
        raise Invalid.field("username", "3 to 64 letters, digits or . _ - @")
    return cleaned


def validate_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise Invalid.field("password", f"must be at least {MIN_PASSWORD_LENGTH} characters")


def create_user(
    session: Session,
    actor: Principal,
    username: str,
    password: str,
    *,
    display_name: str = "",
    kind: UserKind = UserKind.STAFF,
    is_admin: bool = False,
    is_auditor: bool = False,
    is_ethics_reviewer: bool = False,
) -> User:
    """Create a user (node admins only)."""
    if not actor.is_admin:
        raise NotPermitted("only node administrators create users")
    username = validate_username(username)
    validate_password(password)
    if repo.user_by_username(session, username) is not None:
        raise Conflict(f"username {username!r} is taken", name="UsernameTaken")
    user = User(
        public_id=new_uuid(),
        username=username,
        display_name=display_name.strip(),
        password_hash=hash_password(password),
        kind=kind,
        is_admin=is_admin,
        is_auditor=is_auditor,
        is_ethics_reviewer=is_ethics_reviewer,
    )
    session.add(user)
    session.flush()
    audit.record(
        session,
        actor,
        "user.create",
        "user",
        [user.public_id],
        details={"admin": is_admin, "auditor": is_auditor, "ethics_reviewer": is_ethics_reviewer, "kind": str(kind)},
    )
    return user


def grant_role(session: Session, actor: Principal, user: User, biobank_id: int, role: Role) -> Membership:
    """Give a user a role in a biobank, replacing any role they had there."""
    if not actor.can_manage(biobank_id):
        raise NotPermitted("only the biobank's managers or node administrators assign roles")
    current = repo.membership(session, user.id, biobank_id)
    before = current.role if current else None
    if current is None:
        current = Membership(user_id=user.id, biobank_id=biobank_id, role=role)
        session.add(current)
    else:
        current.role = role
    session.flush()
    audit.record(
        session,
        actor,
        "role.grant",
        "user",
        [user.public_id],
        details={"biobank_id": biobank_id, "role": str(role), "before": str(before) if before else None},
    )
    return current


def revoke_role(session: Session, actor: Principal, user: User, biobank_id: int) -> None:
    """Remove a user's role in a biobank."""
    if not actor.can_manage(biobank_id):
        raise NotPermitted("only the biobank's managers or node administrators assign roles")
    current = repo.membership(session, user.id, biobank_id)
    if current is None:
        raise NotFound("the user has no role in that biobank", name="MembershipNotFound")
    session.delete(current)
    session.flush()
    audit.record(session, actor, "role.revoke", "user", [user.public_id], details={"biobank_id": biobank_id})


def _subject(username: str) -> str:
    return keyed_hash(get_settings().secret("secret_key"), username.strip().lower(), namespace="login")


def authenticate(session: Session, username: str, password: str, *, client: str | None = None) -> User:
    """Check a login. Unknown user and wrong password look the same; repeated failures are throttled.

    A failure raises an error with keep_changes, so the attempt is counted and audited.
    """
    settings = get_settings()
    subject = _subject(username)
    window_start = utcnow() - timedelta(minutes=settings.login_lockout_minutes)
    if repo.recent_failures(session, subject, window_start) >= settings.login_max_failures:
        verify_password(None, password)  # same work as a real check, so timing tells nothing
        audit.record(session, None, "auth.login", "user", [], outcome="throttled", client_hash=client)
        raise TooManyRequests(
            f"too many failed logins; try again in {settings.login_lockout_minutes} minutes",
            name="LoginThrottled",
            keep_changes=True,
        )
    user = repo.user_by_username(session, username)
    ok = verify_password(user.password_hash if user and user.is_active else None, password)
    session.add(LoginAttempt(subject_hash=subject, client_hash=client, success=ok))
    if not ok or user is None:
        session.flush()
        audit.record(session, None, "auth.login", "user", [], outcome="failure", client_hash=client)
        raise NotAuthenticated(GENERIC_LOGIN_ERROR, name="LoginFailed", keep_changes=True)
    if needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    user.last_login_at = utcnow()
    session.flush()
    return user


def start_session(session: Session, user: User, *, client: str | None = None) -> tuple[str, UserSession]:
    """Open a browser session; returns the cookie value (shown once) and the stored session."""
    token = new_token()
    record = UserSession(
        token_hash=_hash_secret(token),
        user_id=user.id,
        csrf_token=new_token(24),
        expires_at=utcnow() + timedelta(hours=get_settings().session_hours),
    )
    session.add(record)
    session.flush()
    actor = principal_for(session, user, via="session", client=client)
    audit.record(session, actor, "auth.login", "user", [user.public_id], client_hash=client)
    return token, record


def resolve_session(session: Session, cookie_value: str, *, client: str | None = None) -> Principal | None:
    """The principal of a session cookie, or None when unknown or expired."""
    found = repo.session_with_roles(session, _hash_secret(cookie_value))
    if found is None:
        return None
    record, user, roles = found
    if record.expires_at <= utcnow() or not user.is_active:
        return None
    return principal_for(session, user, via="session", csrf_token=record.csrf_token, client=client, roles=roles)


def end_session(session: Session, cookie_value: str) -> None:
    """Log out: delete the session so the cookie is worthless."""
    record = repo.session_by_hash(session, _hash_secret(cookie_value))
    if record is not None:
        session.delete(record)
        session.flush()


def create_token(
    session: Session,
    actor: Principal,
    user: User,
    name: str,
    *,
    scopes: list[str] | None = None,
    days: int | None = None,
) -> tuple[str, ApiToken]:
    """Create an API token for a user; returns the secret (shown once) and the stored record."""
    if actor.user_id != user.id and not actor.is_admin:
        raise NotPermitted("you may create tokens only for yourself")
    scopes = sorted(set(scopes or ["read", "write"]))
    unknown = [s for s in scopes if s not in VALID_SCOPES]
    if unknown:
        raise Invalid.field("scopes", "unknown scope; use read and/or write", value=",".join(unknown))
    days = days if days is not None else get_settings().token_default_days
    if not 1 <= days <= 366:
        raise Invalid.field("days", "a token lives between 1 and 366 days", value=days)
    if not name.strip() or len(name) > 100:
        raise Invalid.field("name", "give a name of 1 to 100 characters")
    public = new_token(6)[:8]
    secret = f"{TOKEN_PREFIX}{public}_{new_token(30)}"
    token = ApiToken(
        public_id=public,
        user_id=user.id,
        name=name.strip(),
        token_hash=_hash_secret(secret),
        scopes=scopes,
        expires_at=utcnow() + timedelta(days=days),
    )
    session.add(token)
    session.flush()
    audit.record(
        session, actor, "token.create", "api_token", [public], details={"scopes": ",".join(scopes), "days": days}
    )
    return secret, token


def resolve_token(session: Session, secret: str, *, client: str | None = None) -> Principal | None:
    """The principal of a bearer token, or None when unknown, revoked or expired."""
    if not secret.startswith(TOKEN_PREFIX):
        return None
    found = repo.token_with_roles(session, _hash_secret(secret))  # token, user and roles: one statement
    if found is None:
        return None
    token, user, roles = found
    now = utcnow()
    if token.revoked_at is not None or token.expires_at <= now or not user.is_active:
        return None
    principal = principal_for(session, user, via="token", scopes=frozenset(token.scopes), client=client, roles=roles)
    # Update last use at most once a minute so read-heavy scripts do not write on every call.
    if token.last_used_at is None or now - token.last_used_at > timedelta(minutes=1):
        token.last_used_at = now
        audit.record(session, principal, "token.use", "api_token", [token.public_id], client_hash=client)
    return principal


def revoke_token(session: Session, actor: Principal, token_public_id: str) -> None:
    """Revoke one of the actor's tokens (admins: anyone's)."""
    from sqlalchemy import select

    token = session.scalars(select(ApiToken).where(ApiToken.public_id == token_public_id)).first()
    if token is None or (token.user_id != actor.user_id and not actor.is_admin):
        raise NotFound("no such token", name="TokenNotFound")
    token.revoked_at = utcnow()
    session.flush()
    audit.record(session, actor, "token.revoke", "api_token", [token.public_id])


def get_user(session: Session, username: str) -> User:
    """A user by name, or NotFound."""
    user = repo.user_by_username(session, username)
    if user is None:
        raise NotFound(f"no user named {username!r}", name="UserNotFound")
    return user


def token_expiry(token: ApiToken) -> datetime:
    """When a token stops working."""
    return token.expires_at
