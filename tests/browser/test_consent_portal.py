"""The donor portal on a phone: a donor redeems an invitation, sees their consent, changes a choice and
finds the new version in their timeline. Staff set the donor up through the API, as the UI would."""

from __future__ import annotations

import os
import re
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

from tests.browser.conftest import LiveServer

pytestmark = pytest.mark.browser

PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True, "device_scale_factor": 2}
DONOR_PASSWORD = "donor portal password"
OPTIONS = [
    {
        "code": "broad",
        "kind": "permission",
        "label_en": "Any research",
        "label_zh": "任何研究",
        "duo_permission": "GRU",
    },
    {
        "code": "health",
        "kind": "permission",
        "label_en": "Health and medical research only",
        "label_zh": "仅限健康和医学研究",
        "duo_permission": "HMB",
    },
    {"code": "ethics", "kind": "condition", "label_en": "Every study needs ethics approval", "duo_modifiers": ["IRB"]},
    {
        "code": "genetic",
        "kind": "choice",
        "label_en": "Genetic research",
        "label_zh": "遗传学研究",
        "extra_choice": "genetic",
        "default": True,
    },
    {
        "code": "commercial",
        "kind": "choice",
        "label_en": "Companies may use my samples",
        "extra_choice": "commercial",
        "applies_when": "declined",
        "duo_modifiers": ["NPUNCU"],
        "default": True,
    },
]


def _staff(live_server: LiveServer) -> tuple[httpx.Client, dict[str, str]]:
    """The biobank's manager, logged in with a session cookie; returns the client and the CSRF header."""
    client = httpx.Client(base_url=live_server.url, follow_redirects=True, timeout=30)
    page = client.post("/login", data={"username": "manager", "password": live_server.password})
    assert page.status_code == 200, page.text
    token = re.search(r'"X-CSRF-Token": "([^"]+)"', page.text)
    assert token, "no CSRF token in the page"
    return client, {"X-CSRF-Token": token.group(1)}


def _ok(response: httpx.Response) -> Any:
    assert response.status_code in (200, 201), response.text
    return response.json()


def _donor_with_consent_and_invitation(live_server: LiveServer) -> str:
    """A donor of the browser biobank with an electronic-era form, a paper consent and an invitation code."""
    staff, csrf = _staff(live_server)
    tag = uuid.uuid4().hex[:6].upper()
    donor = _ok(
        staff.post(
            "/api/v1/donors",
            headers=csrf,
            json={"biobank": live_server.biobank, "patient_id": f"MRN-{tag}", "sex": "Female", "birth_year": 1971},
        )
    )
    form = _ok(
        staff.post(
            "/api/v1/consent/forms",
            headers=csrf,
            json={
                "biobank": live_server.biobank,
                "code": f"F{tag}",
                "title_en": "Biobank consent",
                "title_zh": "知情同意",
            },
        )
    )
    version = _ok(
        staff.post(
            f"/api/v1/consent/forms/{form['public_id']}/versions",
            headers=csrf,
            json={
                "text_en": "We ask you to give samples for research.",
                "text_zh": "我们邀请您为研究捐献样本。",
                "options": OPTIONS,
            },
        )
    )
    scan = _ok(
        staff.post(
            "/api/v1/consent/scans",
            headers=csrf,
            data={"biobank": live_server.biobank},
            files={"scan": ("form.pdf", b"%PDF-1.4 signed form", "application/pdf")},
        )
    )
    _ok(
        staff.post(
            f"/api/v1/consent/donors/{donor['public_id']}/records",
            headers=csrf,
            json={
                "version": version["public_id"],
                "scan": scan["public_id"],
                "given_at": datetime.now(UTC).isoformat(),
                "choices": {"broad": True, "health": False, "genetic": True, "commercial": True},
            },
        )
    )
    invitation = _ok(
        staff.post(f"/api/v1/consent/donors/{donor['public_id']}/invitations", headers=csrf, json={"days": 7})
    )
    staff.close()
    return str(invitation["code"])


def test_donor_on_a_phone_changes_a_choice_and_sees_the_new_version(
    chromium_browser: Any, live_server: LiveServer, tmp_path: Path
) -> None:
    code = _donor_with_consent_and_invitation(live_server)
    shots = Path(os.environ.get("BIOBANK_SCREENSHOT_DIR", tmp_path))
    context = chromium_browser.new_context(base_url=live_server.url, **PHONE)
    context.set_default_timeout(10_000)
    page = context.new_page()
    try:
        page.goto("/portal")
        expect(page).to_have_url(re.compile(r"/portal/login"))
        page.get_by_role("link", name="I have an invitation code").click()
        page.get_by_label("Invitation code").fill(code)
        page.get_by_label("Username").fill(f"donor-{uuid.uuid4().hex[:8]}")
        page.get_by_label(re.compile(r"^Password\W*$")).fill(DONOR_PASSWORD)
        page.get_by_label("Password again").fill(DONOR_PASSWORD)
        page.get_by_role("button", name="Create my account").click()

        expect(page).to_have_url(f"{live_server.url}/portal")
        expect(page.get_by_role("heading", name="My consent", exact=True)).to_be_visible()
        current = page.locator("#current-consent")
        expect(current).to_contain_text("Version 1")
        expect(current).to_contain_text("Your samples and data may be used for any kind of research.")
        expect(current).to_contain_text("Every study must be approved by an ethics committee.")
        # Mobile-friendly: the page fits the phone's width (no sideways scrolling).
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
        page.screenshot(path=str(shots / "portal-consent-phone.png"), full_page=True)

        page.locator("#current-consent").get_by_role("button", name="Change my choices").click()
        expect(page).to_have_url(re.compile(r"/portal/consent/change$"))
        page.get_by_label("Health and medical research only").check()
        page.locator('fieldset[data-option="genetic"]').get_by_label("No").check()
        page.get_by_label("Type your full name to sign").fill("Wang Fang")
        page.get_by_label("I have read the consent form and confirm these choices.").check()
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth + 1")
        page.get_by_role("button", name="Save as a new version").click()

        expect(page).to_have_url(f"{live_server.url}/portal")
        expect(page.get_by_role("status").first).to_contain_text("your consent is now version 2")
        expect(current).to_contain_text("Version 2")
        expect(current).to_contain_text("health, medical and biomedical research")
        expect(current).to_contain_text("They may not be used for genetic research.")
        timeline = page.locator("#timeline")
        expect(timeline.locator('li[data-version="2"]')).to_contain_text("current")
        expect(timeline.locator('li[data-version="1"]')).to_contain_text("replaced by a newer version")
        page.screenshot(path=str(shots / "portal-new-version-phone.png"), full_page=True)

        page.get_by_role("link", name="中文").click()
        expect(current).to_contain_text("您的样本和数据可用于健康、医学和生物医学研究。")
    finally:
        context.close()
