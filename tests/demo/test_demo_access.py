"""The demo's access requests: made through the services as the demo users, shown on /access, and published
to the embedded chain by the ledger runner so /ledger and /ledger/consortium show them."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from biobank.access.models import AccessRequest
from biobank.config import Settings
from biobank.demo.generator import DEMO_USERS, DemoConfig, generate
from biobank.kit.db import session_factory
from biobank.ledger.jobs import LedgerRunner
from biobank.ledger.models import LedgerOutbox, OutboxStatus
from tests.websession import log_in

SMALL = DemoConfig(donors=30, specimens=200, seed=7)
PASSWORDS = {u.username: u.password for u in DEMO_USERS}


def test_demo_requests_show_on_the_access_and_ledger_pages(
    db: Session, engine: Engine, settings: Settings, app, client: TestClient  # type: ignore[no-untyped-def]
) -> None:
    summary = generate(session_factory(engine), SMALL, lambda _: None)
    assert [r.status for r in summary.access_requests] == ["draft", "submitted", "ethics_approved", "agreed",
                                                            "closed"]
    assert summary.consents > 0
    db.rollback()
    titles = dict(db.execute(select(AccessRequest.public_id, AccessRequest.project_title)).all())
    assert len(titles) == 5
    db.rollback()

    researcher = log_in(TestClient(app, raise_server_exceptions=False), "researcher", PASSWORDS["researcher"])
    page = researcher.get("/access")
    assert page.status_code == 200
    assert all(title in page.text for title in titles.values())  # the researcher sees all five, draft included
    ethics = log_in(TestClient(app, raise_server_exceptions=False), "ethics", PASSWORDS["ethics"])
    waiting = next(r.public_id for r in summary.access_requests if r.status == "submitted")
    assert titles[waiting] in ethics.get("/access").text

    runner = LedgerRunner(settings, engine)  # what the demo server's ledger thread does each round
    try:
        report = runner.run_round()
    finally:
        runner.close()
    assert report.failed == 0 and report.unavailable is None and report.sent >= 15
    statuses = set(db.scalars(select(LedgerOutbox.status)))
    db.rollback()
    assert statuses == {OutboxStatus.SENT}
    admin = log_in(TestClient(app, raise_server_exceptions=False), "admin", PASSWORDS["admin"])
    status_page = admin.get("/ledger")
    assert status_page.status_code == 200 and "request.agreement" in status_page.text
    consortium = admin.get("/ledger/consortium")
    assert consortium.status_code == 200 and "No agreement on chain yet" not in consortium.text
