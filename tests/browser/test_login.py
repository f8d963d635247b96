"""Logging in and out through the web form, in a real browser."""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import LiveServer

pytestmark = pytest.mark.browser


def test_login_shows_home_with_username_then_logout_returns_to_login(
    page: Page, live_server: LiveServer, log_in: Callable[..., None], tmp_path: Path
) -> None:
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/login$"))
    expect(page.get_by_role("heading", name="Log in")).to_be_visible()

    log_in(page, "manager")

    expect(page).to_have_url(f"{live_server.url}/")
    expect(page.locator("header")).to_contain_text("manager")
    expect(page.get_by_role("button", name="Log out")).to_be_visible()
    expect(page.get_by_role("link", name="Specimens")).to_be_visible()
    # Pico's stylesheet is served and applied (its body font is not the browser's default serif).
    assert page.evaluate("getComputedStyle(document.body).fontFamily") != "Times New Roman"
    page.screenshot(path=str(Path(os.environ.get("BIOBANK_SCREENSHOT_DIR", tmp_path)) / "home.png"),
                    full_page=True)

    page.get_by_role("button", name="Log out").click()

    expect(page).to_have_url(re.compile(r"/login$"))
    expect(page.get_by_role("status")).to_have_text("You are logged out.")
    expect(page.get_by_role("heading", name="Log in")).to_be_visible()
    expect(page.get_by_role("button", name="Log out")).to_have_count(0)
    # The session is over: the home page sends the browser back to the login form.
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/login$"))


def test_wrong_password_shows_the_error_and_keeps_the_username(
    page: Page, log_in: Callable[..., None], tmp_path: Path
) -> None:
    log_in(page, "tech", "not the password")

    expect(page.get_by_role("alert")).to_have_text("username or password is wrong")
    expect(page.get_by_label("Username")).to_have_value("tech")
    expect(page.get_by_label("Password")).to_have_value("")
    expect(page.get_by_role("button", name="Log out")).to_have_count(0)
    page.screenshot(path=str(Path(os.environ.get("BIOBANK_SCREENSHOT_DIR", tmp_path)) / "login-error.png"),
                    full_page=True)
