"""Published collection records go on chain as salted commitments, one version per change."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from biobank.catalogue.commitment_models import CatalogueCommitment
from biobank.catalogue.commitments import commit_listed, published_record
from biobank.config import Settings
from biobank.institutions.models import Collection
from biobank.kit.db import session_factory
from biobank.ledger import publisher
from biobank.ledger.models import LedgerOutbox
from biobank.ledger.refs import commitment
from biobank.ledger.service import open_ledger
from biobank.ledger.verify import verify_ledger


def _rows(db: Session) -> list[CatalogueCommitment]:
    rows = list(db.scalars(select(CatalogueCommitment).order_by(CatalogueCommitment.id)))
    db.expunge_all()  # detached: reading them later opens no transaction (SQLite would hold its lock)
    db.rollback()
    return rows


def test_an_edit_of_a_listed_collection_commits_a_new_version(world, db: Session) -> None:  # type: ignore[no-untyped-def]
    url = f"/api/v1/catalogue/collections/{world.collection_a}"
    assert world.owner.patch(url, json={"description": "Lung cancer, first version"}).status_code == 200
    assert world.owner.patch(url, json={"description": "Lung cancer, first version"}).status_code == 200
    assert len(_rows(db)) == 1  # nothing changed the second time: no new version
    assert world.owner.patch(url, json={"description": "Lung cancer, second version"}).status_code == 200
    first, second = _rows(db)
    assert (first.version, second.version) == (1, 2) and first.resource_ref == second.resource_ref
    assert first.salt != second.salt and first.commitment != second.commitment
    kinds = [row.kind for row in db.scalars(select(LedgerOutbox))]
    db.rollback()
    assert kinds == ["resource.publish", "resource.publish"]
    # the salt and the record reveal the commitment (and the record alone does not)
    collection = db.scalars(select(Collection).where(Collection.public_id == world.collection_a)).one()
    assert commitment(second.salt, published_record(db, collection)) == second.commitment
    db.rollback()


def test_unlisted_collections_are_not_committed(world, db: Session) -> None:  # type: ignore[no-untyped-def]
    url = f"/api/v1/catalogue/collections/{world.collection_b}"
    assert world.other.patch(url, json={"listed": False, "description": "hidden"}).status_code == 200
    assert _rows(db) == []


def test_commitments_reach_the_chain_and_verify(world, db: Session, settings: Settings, engine) -> None:  # type: ignore[no-untyped-def]
    assert commit_listed(db, None, settings) == 2
    db.commit()
    assert commit_listed(db, None, settings) == 0
    db.commit()
    sessions = session_factory(engine)
    ledger = open_ledger(settings, sessions)
    try:
        assert publisher.publish_due(sessions, ledger).sent == 2
        published = [args for name, args, _ in ledger.handle("ResourceRegistry").events() if name == "Published"]
        assert sorted("0x" + bytes(a["commitment"]).hex() for a in published) == sorted(r.commitment for r in _rows(db))
        with sessions() as session:
            report = verify_ledger(session, ledger)
        assert report.ok and report.checked == 2, report.differences
    finally:
        ledger.close()
