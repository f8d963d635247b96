"""A logged-in browser session for page tests: cookies from the login form plus the page's CSRF token."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from fastapi.testclient import TestClient

CSRF_INPUT = re.compile(r'name="csrf_token" value="([^"]+)"')


@dataclass
class WebUser:
    """A browser session of one user: its own cookies and the CSRF token read from a page."""

    client: TestClient
    csrf: str

    def get(self, url: str, **kw: Any) -> Any:
        return self.client.get(url, **kw)

    def post(self, url: str, data: dict[str, Any], *, csrf: bool = True, **kw: Any) -> Any:
        body = dict(data)
        if csrf:
            body["csrf_token"] = self.csrf
        return self.client.post(url, data=body, follow_redirects=False, **kw)


def log_in(client: TestClient, username: str, password: str) -> WebUser:
    """Log in through the form and read the session's CSRF token from the home page."""
    response = client.post("/login", data={"username": username, "password": password}, follow_redirects=False)
    assert response.status_code == 303, response.text
    match = CSRF_INPUT.search(client.get("/").text)
    assert match, "the page carries the session's CSRF token in a hidden input"
    return WebUser(client, match.group(1))
