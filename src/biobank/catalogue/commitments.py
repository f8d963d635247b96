"""Put a salted commitment of each listed collection's record on chain (ResourceRegistry), once per change.

The record is the collection's MIABIS description as declared by its biobank (not the moving counts),
so a new version is committed only when the biobank changes what it publishes.
"""

from __future__ import annotations

import hashlib
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from biobank.audit import record as audit_record
from biobank.catalogue.commitment_models import CatalogueCommitment
from biobank.config import Settings, get_settings
from biobank.identity.principal import Principal
from biobank.institutions.models import Biobank, Collection
from biobank.interop import miabis
from biobank.ledger.outbox import enqueue
from biobank.ledger.refs import canonical_bytes, commitment, new_salt, object_ref

KIND = "resource.publish"


def published_record(session: Session, collection: Collection) -> dict[str, Any]:
    """The document committed to: the collection's MIABIS record with its biobank's public id."""
    biobank_public_id = session.scalar(select(Biobank.public_id).where(Biobank.id == collection.biobank_id))
    return miabis.collection(collection, biobank_id=str(biobank_public_id), number_of_donors=None)


def latest(session: Session, collection_id: int) -> CatalogueCommitment | None:
    """The newest committed version of a collection's record."""
    return session.scalars(
        select(CatalogueCommitment).where(CatalogueCommitment.collection_id == collection_id)
        .order_by(CatalogueCommitment.version.desc()).limit(1)
    ).first()


def commit_collection(session: Session, actor: Principal | None, collection: Collection,
                      settings: Settings | None = None) -> CatalogueCommitment | None:
    """Queue a new version of the collection's commitment if its record changed; None if unchanged."""
    settings = settings or get_settings()
    document = published_record(session, collection)
    digest = hashlib.sha256(canonical_bytes(document)).hexdigest()
    previous = latest(session, collection.id)
    if previous is not None and previous.record_sha256 == digest:
        return None
    salt = new_salt()
    row = CatalogueCommitment(
        collection_id=collection.id, version=(previous.version + 1) if previous else 1, record_sha256=digest,
        salt=salt, commitment=commitment(salt, document),
        resource_ref=object_ref(settings, "collection", collection.public_id),
    )
    session.add(row)
    session.flush()
    enqueue(session, KIND, {"resource": row.resource_ref, "commitment": row.commitment},
            dedupe_key=f"{KIND}:{collection.public_id}:{row.version}")
    audit_record(session, actor, "catalogue.commitment.queue", "collection", [collection.public_id],
                 details={"version": row.version})
    return row


def commit_listed(session: Session, actor: Principal | None, settings: Settings | None = None) -> int:
    """Commit every listed collection whose record changed; returns how many versions were queued."""
    from biobank.catalogue.search import listings

    queued = [commit_collection(session, actor, item.collection, settings)
              for item in listings(session, with_summaries=False)]
    return sum(1 for row in queued if row is not None)


def expected_chain_facts(session: Session, settings: Settings) -> list[dict[str, Any]]:
    """For `biobank ledger verify`: every committed version, as it should be on chain."""
    rows = session.execute(
        select(CatalogueCommitment, Collection.public_id)
        .join(Collection, Collection.id == CatalogueCommitment.collection_id)
        .order_by(CatalogueCommitment.id)
    ).all()
    return [
        {"kind": KIND, "payload": {"resource": c.resource_ref, "commitment": c.commitment},
         "label": f"collection {public_id} record v{c.version}"}
        for c, public_id in rows
    ]


def count(session: Session) -> int:
    """How many versions were committed (all collections)."""
    return int(session.scalar(select(func.count()).select_from(CatalogueCommitment)) or 0)
