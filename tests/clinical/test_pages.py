"""Clinical pages: the import page (dry run, then import the checked files) and the quality page."""

from __future__ import annotations

import json

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from biobank.clinical.models import ClinicalDiagnosis
from tests.catalogue.conftest import anonymous  # noqa: F401
from tests.clinical.test_import import MAPPING, _csv, patients  # noqa: F401


def _upload(user, action: str, **extra):  # type: ignore[no-untyped-def]
    files = {"file": ("c.csv", _csv()), "mapping": ("m.json", json.dumps(MAPPING).encode())}
    data = {"csrf_token": user.csrf, "biobank": "BBA", "action": action} | extra
    return user.client.post("/clinical/import", files=files, data=data)


def test_dry_run_then_import_the_checked_files(db: Session, web, patients) -> None:  # noqa: F811
    user = web("tech")
    page = _upload(user, "dry_run")
    assert page.status_code == 200
    assert "Dry run" in page.text and "Dx date" in page.text
    token = page.text.split('name="staged" value="')[1].split('"')[0]
    imported = user.client.post(
        "/clinical/import",
        data={"csrf_token": user.csrf, "biobank": "BBA", "action": "import", "staged": token},
        files={"file": ("", b"")},
    )
    assert imported.status_code == 200 and "Imported" in imported.text
    assert db.execute(select(func.count()).select_from(ClinicalDiagnosis)).scalar_one() == 3
    db.rollback()


def test_errors_are_listed_by_row_and_column(web, patients) -> None:  # noqa: F811
    user = web("owner")
    files = {
        "file": ("c.csv", _csv(["MRN-001,LUAD,31/02/2024,,,,,,,,,,,,,"])),
        "mapping": ("m.json", json.dumps(MAPPING).encode()),
    }
    page = user.client.post(
        "/clinical/import", files=files, data={"csrf_token": user.csrf, "biobank": "BBA", "action": "dry_run"}
    )
    assert page.status_code == 200
    assert "31/02/2024" in page.text and "Dx date" in page.text and 'name="staged"' not in page.text


def test_the_import_page_needs_a_login_and_csrf(anonymous, web, patients) -> None:  # noqa: F811
    assert anonymous.get("/clinical/import", follow_redirects=False).status_code == 303
    user = web("owner")
    assert _upload(user, "dry_run", csrf_token="forged").status_code == 403


def test_quality_page(web, world, patients) -> None:  # noqa: F811
    owner = web("owner")
    url = f"/clinical/quality/{world.collection_a}"
    assert owner.get(url).status_code == 200
    assert owner.post(url, {}).status_code == 303
    assert "consistency checks passed" in owner.get(url).text
    assert web("other").get(url).status_code == 404
    assert web("outsider").post(url, {}).status_code == 404
