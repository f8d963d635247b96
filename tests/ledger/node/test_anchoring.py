"""Anchoring the audit log on chain, checking anchors against the log, verifying local facts."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from biobank.audit import repository as audit_repo
from biobank.audit.service import record
from biobank.audit.verify import LocalSource
from biobank.config import Settings
from biobank.ledger import publisher
from biobank.ledger.anchoring import ChainAnchor, anchor_latest, check_anchors
from biobank.ledger.models import LedgerAnchor
from biobank.ledger.service import Ledger, open_ledger
from biobank.ledger.verify import verify_ledger


def _events(sessions: sessionmaker[Session], n: int, tag: str = "x") -> None:
    with sessions.begin() as session:
        for i in range(n):
            record(session, None, "test.event", "thing", [f"{tag}{i}"])


def _anchor(sessions: sessionmaker[Session], settings: Settings) -> LedgerAnchor | None:
    with sessions.begin() as session:
        anchor = anchor_latest(session, settings)
        if anchor is not None:
            session.expunge(anchor)
        return anchor


def test_the_latest_checkpoint_goes_on_chain_and_only_grows(
    sessions: sessionmaker[Session], ledger: Ledger, settings: Settings
) -> None:
    _events(sessions, 5)
    first = _anchor(sessions, settings)
    assert first is not None and first.tree_size >= 5
    assert _anchor(sessions, settings) is None  # nothing new: nothing queued
    assert publisher.publish_due(sessions, ledger).sent == 1
    size, root, block, _ = ledger.handle("AuditAnchors").call("latest", bytes.fromhex(ledger.institution[2:]))
    assert (size, root.hex()) == (first.tree_size, first.root_hash)
    with sessions() as session:
        stored = session.scalars(select(LedgerAnchor)).one()
        assert stored.block_number == block and stored.anchored_at is not None
    _events(sessions, 3, "y")
    second = _anchor(sessions, settings)
    assert second is not None and second.tree_size > first.tree_size
    publisher.publish_due(sessions, ledger)
    assert ledger.handle("AuditAnchors").call("anchor_count", bytes.fromhex(ledger.institution[2:])) == 2


def test_anchored_roots_are_checked_against_the_log(
    sessions: sessionmaker[Session], ledger: Ledger, settings: Settings
) -> None:
    _events(sessions, 4)
    small = _anchor(sessions, settings)
    _events(sessions, 7, "y")
    assert small is not None
    with sessions() as session:
        size, root = audit_repo.tree_head(session)
    source = LocalSource(sessions, settings)
    good = ChainAnchor(small.tree_size, bytes.fromhex(small.root_hash), 3)
    assert check_anchors([good], size, root, source) == []
    forged = ChainAnchor(small.tree_size, b"\x01" * 32, 4)
    assert "not consistent" in check_anchors([forged], size, root, source)[0]
    beyond = ChainAnchor(size + 10, b"\x02" * 32, 5)
    assert "has only" in check_anchors([beyond], size, root, source)[0]


def test_verify_names_a_local_anchor_that_differs_from_the_chain(
    sessions: sessionmaker[Session], ledger: Ledger, settings: Settings
) -> None:
    _events(sessions, 3)
    _anchor(sessions, settings)
    publisher.publish_due(sessions, ledger)
    with sessions() as session:
        report = verify_ledger(session, ledger)
    assert report.ok and report.checked == 1, report.differences
    with sessions.begin() as session:
        anchor = session.scalars(select(LedgerAnchor)).one()
        anchor.root_hash = "ab" * 32
    with sessions() as session:
        report = verify_ledger(session, ledger)
    assert not report.ok
    assert any("audit anchor at size" in d and "root" in d for d in report.differences), report.differences


def test_an_unsent_anchor_is_pending_not_a_difference(
    sessions: sessionmaker[Session], ledger: Ledger, settings: Settings
) -> None:
    _events(sessions, 2)
    _anchor(sessions, settings)
    with sessions() as session:
        report = verify_ledger(session, ledger)
    assert report.ok and report.pending == 1


def test_reopening_uses_the_recorded_contracts(
    sessions: sessionmaker[Session], ledger: Ledger, settings: Settings
) -> None:
    addresses, block = dict(ledger.addresses), ledger.client.block_number()
    ledger.close()
    again = open_ledger(settings, sessions)
    try:
        assert again.addresses == addresses
        assert again.client.block_number() == block  # nothing redeployed or re-registered
    finally:
        again.close()
