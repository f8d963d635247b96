"""The access workflow and the ledger together, end to end, on the embedded chain and on anvil.

The whole walk through the services, then the outbox published until empty: every row sent, the chain's
AccessAgreements and RevenueLedger views agree with the local rows, `verify_ledger` checks every fact
and names a tampered field. A consent withdrawal after the agreement revokes the provider track on chain.
"""

from __future__ import annotations

import pytest
from sqlalchemy import update
from sqlalchemy.orm import Session, sessionmaker

from biobank.access import grants
from biobank.access.fulfilment_models import AccessAgreement, AccessShipment, AgreementStatus
from biobank.access.ledger_facts import expected_chain_facts
from biobank.access.models import RequestStatus
from biobank.config import Settings
from biobank.consent.schemas import WithdrawalCreate
from biobank.consent.withdrawal import withdraw
from biobank.ledger.anchoring import anchor_latest
from biobank.ledger.refs import institution_ref
from biobank.ledger.service import Ledger
from biobank.ledger.verify import verify_ledger
from tests.access.factories import principal_of
from tests.conftest import World
from tests.ledger.e2e import chainstate as chain
from tests.ledger.e2e import walk
from tests.ledger.e2e.conftest import CHAINS

pytestmark = pytest.mark.parametrize("settings", CHAINS, indirect=True)

# the chain's request state for each local request status
CHAIN_REQUEST_STATE = {
    RequestStatus.SUBMITTED: chain.SUBMITTED,
    RequestStatus.ETHICS_APPROVED: chain.APPROVED,
    RequestStatus.AGREED: chain.APPROVED,
    RequestStatus.FULFILLED: chain.APPROVED,
    RequestStatus.RESULTS_RETURNED: chain.APPROVED,
    RequestStatus.REVOKED: chain.APPROVED,  # a revocation ends provider tracks, not the request
    RequestStatus.ETHICS_REJECTED: chain.REJECTED,
    RequestStatus.CLOSED: chain.CLOSED,
    RequestStatus.EXPIRED: chain.EXPIRED,
}
CHAIN_TRACK_STATE = {
    AgreementStatus.PENDING: chain.AVAILABLE,
    AgreementStatus.SIGNED: chain.AGREED,
    AgreementStatus.FULFILLED: chain.AGREED,
    AgreementStatus.REVOKED: chain.REVOKED,
}


def _anchor(sessions: sessionmaker[Session], settings: Settings) -> None:
    with sessions.begin() as session:
        assert anchor_latest(session, settings) is not None


def _verify(sessions: sessionmaker[Session], ledger: Ledger):  # type: ignore[no-untyped-def]
    with sessions() as session:
        return verify_ledger(session, ledger)


def _fact_count(sessions: sessionmaker[Session], settings: Settings) -> int:
    with sessions() as session:
        return len(expected_chain_facts(session, settings))


def _assert_chain_matches(sessions: sessionmaker[Session], ledger: Ledger, walked: walk.Walked) -> None:
    provider = institution_ref(ledger.settings.institution_code)
    with sessions() as session:
        request = walked.request(session)
        agreement = walked.agreement_row(session)
        grant = walked.grant_row(session) if walked.grant else None
        assert chain.request_state(ledger, request.chain_id) == CHAIN_REQUEST_STATE[RequestStatus(request.status)]
        track = chain.provider_state(ledger, request.chain_id, provider)
        assert track == CHAIN_TRACK_STATE[AgreementStatus(agreement.status)]
        if grant is not None:
            assert chain.data_access_valid(ledger, request.chain_id, provider) is grants.is_active(grant, request)


def test_the_whole_walk_lands_on_chain_and_verifies(
    db: Session, world: World, settings: Settings, sessions: sessionmaker[Session], ledger: Ledger
) -> None:
    who = walk.cast(db, world)
    walked = walk.through_grant(db, world, who)
    chain.publish_all(sessions, ledger)
    _assert_chain_matches(sessions, ledger, walked)  # fulfilled: agreed on chain, data access valid
    assert chain.data_access_valid(ledger, walked.chain_id, ledger.institution)

    walk.finish(db, walked, who)
    _anchor(sessions, settings)
    sent = chain.publish_all(sessions, ledger)
    rows = chain.all_sent(sessions)
    assert sent >= 3  # results, close, anchor
    kinds = [r.kind for r in rows]
    for kind in ("request.submit", "request.ethics", "request.provider", "request.agreement", "revenue.fee",
                 "request.dispatch", "request.receive", "request.grant", "request.results", "request.close",
                 "audit.anchor"):
        assert kind in kinds, kind
    assert kinds.count("request.provider") == 1  # two biobanks, one institution on chain
    assert walked.steps == ["draft", "submit", "ethics", "providers", "agreement", "reservation", "dispatch",
                            "receive", "grant", "results", "close"]
    with sessions() as session:
        assert walked.request(session).status == RequestStatus.CLOSED
    assert chain.request_state(ledger, walked.chain_id) == chain.CLOSED
    assert chain.provider_state(ledger, walked.chain_id, ledger.institution) == chain.AGREED
    # the fee went to the only provider institution, in full
    assert chain.balance_of(ledger, ledger.institution) == walk.FEE

    report = _verify(sessions, ledger)
    assert report.ok, report.differences
    facts = _fact_count(sessions, settings)
    assert facts == 4  # agreement, dispatch, receipt, data grant
    assert report.checked >= facts + 1 and report.pending == 0  # + the anchor

    # tamper with local facts: verify names the fact and the field
    with sessions.begin() as session:
        session.execute(update(AccessAgreement).where(AccessAgreement.public_id == walked.agreement)
                        .values(terms_hash="0x" + "ab" * 32))
        session.execute(update(AccessShipment).where(AccessShipment.public_id == walked.shipment)
                        .values(shipment_hash="0x" + "cd" * 32))
    report = _verify(sessions, ledger)
    assert not report.ok
    short = walked.public_id.rsplit(":", 1)[-1]
    (terms,) = [d for d in report.differences if d.startswith("agreement ")]
    assert short in terms and settings.institution_code in terms
    assert "terms_hash: chain" in terms and "≠ local 0x" + "ab" * 32 in terms
    (shipment,) = [d for d in report.differences if d.startswith("dispatch ")]
    assert short in shipment and "shipment_hash: chain" in shipment and "cd" * 32 in shipment
    assert len(report.differences) == 2, report.differences


def test_after_closing_the_chain_and_the_node_agree_on_data_access(
    db: Session, world: World, sessions: sessionmaker[Session], ledger: Ledger
) -> None:
    who = walk.cast(db, world)
    walked = walk.through_grant(db, world, who)
    walk.finish(db, walked, who)
    chain.publish_all(sessions, ledger)
    _assert_chain_matches(sessions, ledger, walked)


def test_a_consent_withdrawal_after_the_agreement_revokes_on_chain(
    db: Session, world: World, settings: Settings, sessions: sessionmaker[Session], ledger: Ledger
) -> None:
    who = walk.cast(db, world)
    walked = walk.requested(db, world, who)
    walk.providers_answer(db, walked, who)
    walk.agree(db, walked, who, data=False)
    walk.reserve(db, walked, who, who.specimens["broad2"])
    chain.publish_all(sessions, ledger)
    assert chain.provider_state(ledger, walked.chain_id, ledger.institution) == chain.AGREED

    donor = who.donors["broad2"]
    withdrawal = withdraw(db, principal_of(db, who.manager_a), db.merge(donor),
                          WithdrawalCreate(kind="no_further_use"), channel="staff")  # type: ignore[arg-type]
    assert walked.public_id in withdrawal.flagged_requests
    db.commit()
    chain.publish_all(sessions, ledger)
    rows = chain.all_sent(sessions)
    assert [r.kind for r in rows].count("request.revoke") == 1
    with sessions() as session:
        assert walked.agreement_row(session).status == AgreementStatus.REVOKED
        assert walked.request(session).status == RequestStatus.REVOKED
    assert chain.provider_state(ledger, walked.chain_id, ledger.institution) == chain.REVOKED
    _assert_chain_matches(sessions, ledger, walked)
    report = _verify(sessions, ledger)
    assert report.ok, report.differences
    assert report.checked == _fact_count(sessions, settings) == 2  # the agreement and its revocation
