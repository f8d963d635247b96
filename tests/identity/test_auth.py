"""Authentication: tokens, sessions, CSRF, throttling, no user enumeration."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tests.conftest import World
from tests.factories import PASSWORD, make_token, make_user


def test_healthz(client: TestClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"


def test_me_requires_credentials(client: TestClient) -> None:
    response = client.get("/api/v1/me")
    assert response.status_code == 401
    assert response.json()["error"] == "NotAuthenticated"


def test_me_with_token(world: World) -> None:
    body = world.owner.get("/api/v1/me").json()
    assert body["username"] == "owner"
    assert body["memberships"] == [{"biobank": world.biobank_a, "role": "manager"}]


def test_unknown_token_is_401(client: TestClient) -> None:
    response = client.get("/api/v1/me", headers={"Authorization": "Bearer bbk_nope_nope"})
    assert response.status_code == 401
    assert response.json()["error"] == "InvalidToken"


def test_read_only_token_cannot_write(db: Session, world: World, client: TestClient) -> None:
    from biobank.identity import repository

    user = repository.user_by_username(db, "owner")
    assert user is not None
    token = make_token(db, user, scopes=["read"])
    db.commit()
    headers = {"Authorization": f"Bearer {token}"}
    assert client.get("/api/v1/me", headers=headers).status_code == 200
    response = client.post("/api/v1/tokens", json={"name": "x"}, headers=headers)
    assert response.status_code == 403
    assert response.json()["error"] == "TokenScope"


def test_token_secret_is_hashed_at_rest(db: Session, world: World) -> None:
    from sqlalchemy import select

    from biobank.identity.models import ApiToken

    hashes = db.scalars(select(ApiToken.token_hash)).all()
    assert world.owner.token not in hashes
    assert all(len(h) == 64 for h in hashes)


def test_password_is_argon2(db: Session) -> None:
    user = make_user(db, "argonuser")
    assert user.password_hash.startswith("$argon2id$")


def test_login_failure_looks_the_same_for_unknown_user(db: Session, client: TestClient) -> None:
    make_user(db, "known")
    db.commit()
    wrong = client.post("/login", data={"username": "known", "password": "wrong-password"})
    unknown = client.post("/login", data={"username": "nobody-here", "password": "wrong-password"})
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.text.replace("known", "X") == unknown.text.replace("nobody-here", "X")


def test_login_is_throttled_after_repeated_failures(db: Session, client: TestClient) -> None:
    make_user(db, "target")
    db.commit()
    for _ in range(5):
        assert client.post("/login", data={"username": "target", "password": "bad-password"}).status_code == 401
    response = client.post("/login", data={"username": "target", "password": PASSWORD})
    assert response.status_code == 429


def test_session_login_csrf_and_logout(db: Session, client: TestClient) -> None:
    make_user(db, "browser")
    db.commit()
    response = client.post("/login", data={"username": "browser", "password": PASSWORD}, follow_redirects=False)
    assert response.status_code == 303
    cookie = response.cookies.get("bb_session")
    assert cookie
    set_cookie = response.headers["set-cookie"].lower()
    assert "httponly" in set_cookie and "samesite=lax" in set_cookie
    me = client.get("/api/v1/me")
    assert me.status_code == 200
    # Unsafe API calls through the cookie need the CSRF header.
    assert client.post("/api/v1/tokens", json={"name": "x"}).status_code == 403
    client.post("/logout", data={"csrf_token": "wrong"}, follow_redirects=False)
    assert client.get("/api/v1/me").status_code == 200  # a logout without the CSRF token is refused


def test_donor_accounts_land_on_the_portal(db: Session, client: TestClient) -> None:
    from biobank.identity import service
    from biobank.identity.models import UserKind
    from tests.factories import system

    service.create_user(db, system(), "donor-user", PASSWORD, kind=UserKind.DONOR)
    db.commit()
    client.post("/login", data={"username": "donor-user", "password": PASSWORD})
    response = client.get("/", follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/portal"
