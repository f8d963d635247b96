"""Steps of the fulfilment walk through the API, for tests that need to be further along."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from tests.factories import PASSWORD


def now_iso(minutes: float = 0) -> str:
    return (datetime.now(UTC) + timedelta(minutes=minutes)).isoformat()


def generate(case: Any, **body: Any) -> dict[str, Any]:
    response = case.world.owner.post(f"{case.url}/agreements", json={"fee_amount": 900} | body)
    assert response.status_code == 201, response.text
    return dict(response.json())


def sign_both(case: Any, agreement: str) -> dict[str, Any]:
    first = case.researcher.post(f"{case.url}/agreements/{agreement}/sign", json={"password": PASSWORD})
    assert first.status_code == 200, first.text
    second = case.world.owner.post(f"{case.url}/agreements/{agreement}/sign", json={"password": PASSWORD})
    assert second.status_code == 200, second.text
    return dict(second.json())


def agreed(case: Any, **body: Any) -> dict[str, Any]:
    return sign_both(case, generate(case, **body)["public_id"])


def reserve(case: Any, refs: list[str]) -> Any:
    return case.world.owner.post(f"{case.url}/reservations", json={"specimens": refs})


def dispatch(case: Any) -> Any:
    return case.world.owner.post(
        f"{case.url}/shipments",
        json={
            "courier": "SF Express",
            "tracking_number": "SF1234567890",
            "temperature_logger": "TL-77",
            "dispatched_at": now_iso(-60),
        },
    )


def receive(case: Any, shipment: str, condition: str = "good") -> Any:
    return case.researcher.post(
        f"{case.url}/shipments/{shipment}/receive", json={"received_at": now_iso(-1), "condition": condition}
    )


def fulfilled(case: Any) -> str:
    """Agreement signed, broad donor's specimens reserved, shipped and received; returns the shipment id."""
    agreed(case)
    assert reserve(case, case.specimens["broad"]).status_code == 201
    shipment = dispatch(case)
    assert shipment.status_code == 201, shipment.text
    assert receive(case, shipment.json()["public_id"]).status_code == 200
    return str(shipment.json()["public_id"])


def outbox(db: Any, kind: str | None = None) -> list[dict[str, Any]]:
    """Outbox payloads (copies) of one kind, oldest first; the test session's transaction is ended after."""
    from sqlalchemy import select

    from biobank.ledger.models import LedgerOutbox

    db.expire_all()
    stmt = select(LedgerOutbox).order_by(LedgerOutbox.id)
    if kind is not None:
        stmt = stmt.where(LedgerOutbox.kind == kind)
    rows = [{"kind": r.kind, "payload": dict(r.payload), "dedupe_key": r.dedupe_key} for r in db.scalars(stmt)]
    db.rollback()  # SQLite: a read transaction of the test session would hold the write lock
    return rows


def status_of(db: Any, request_id: int) -> str:
    """The request's status now (ends the test session's transaction)."""
    from biobank.access.models import AccessRequest

    db.expire_all()
    row = db.get(AccessRequest, request_id)
    value = str(row.status)
    db.rollback()
    return value
