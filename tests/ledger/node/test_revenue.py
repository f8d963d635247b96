"""Revenue shares: fees credited on chain, balances from mirrored events, withdrawals pulled by the admin."""

from __future__ import annotations

from sqlalchemy.orm import Session, sessionmaker

from biobank.ledger import publisher
from biobank.ledger.outbox import enqueue
from biobank.ledger.refs import institution_ref, object_ref
from biobank.ledger.revenue import shares
from biobank.ledger.service import Ledger
from biobank.ledger.sync import sync_events


def _fee(sessions: sessionmaker[Session], ledger: Ledger, amount: int) -> None:
    own = institution_ref(ledger.settings.institution_code)
    with sessions.begin() as session:
        enqueue(session, "revenue.fee",
                {"agreement": object_ref(ledger.settings, "agreement", f"AGR-{amount}"), "amount": amount,
                 "institutions": [own], "bps": [10_000], "remainder_to": own},
                dedupe_key=f"fee:{amount}")
    assert publisher.publish_due(sessions, ledger).sent == 1
    sync_events(sessions, ledger)


def test_balances_and_withdrawal_through_the_pages(web, sessions, ledger) -> None:  # type: ignore[no-untyped-def]
    _fee(sessions, ledger, 1_201)
    with sessions() as session:
        (share,) = shares(session, ledger.client.chain_id)
    assert (share.credited, share.withdrawn, share.balance) == (1_201, 0, 1_201)
    assert share.institution == institution_ref(ledger.settings.institution_code)

    admin = web("admin")
    admin.client.app.state.ledger_runner.status.chain = {"chain_id": ledger.client.chain_id}
    page = admin.get("/ledger/consortium")
    assert page.status_code == 200 and "1,201" in page.text and 'id="withdraw"' in page.text
    too_much = admin.post("/ledger/revenue/withdraw", {"amount": "5000"})
    assert too_much.status_code == 422 and "only 1201 units are available" in too_much.text
    assert admin.post("/ledger/revenue/withdraw", {"amount": "abc"}).status_code == 422
    assert admin.post("/ledger/revenue/withdraw", {"amount": "200"}).status_code == 303
    # a second request counts what is already queued
    assert "only 1001 units" in admin.post("/ledger/revenue/withdraw", {"amount": "1100"}).text
    assert web("owner").post("/ledger/revenue/withdraw", {"amount": "1"}).status_code == 404

    assert publisher.publish_due(sessions, ledger).sent == 1
    sync_events(sessions, ledger)
    with sessions() as session:
        (share,) = shares(session, ledger.client.chain_id)
    assert (share.withdrawn, share.balance) == (200, 1_001)
    inst = bytes.fromhex(share.institution[2:])
    assert ledger.handle("RevenueLedger").call("balance_of", inst) == 1_001
