"""Appending to the log in the database: exact leaves, stored tree, transactions, concurrency."""

from __future__ import annotations

import random
import threading
from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine, func, select, text
from sqlalchemy.orm import Session

from biobank import audit
from biobank.audit import repository as repo
from biobank.audit.checkpoints import make_checkpoint
from biobank.audit.encoding import EntryEncodingError, decode_entry, encode_entry
from biobank.audit.log import entry_fields, leaf_template, with_index
from biobank.audit.merkle import EMPTY_ROOT, inclusion_proof, leaf_hash, root, verify_inclusion
from biobank.audit.models import AuditEntry, AuditNode, AuditResource
from biobank.audit.service import PendingEntry
from biobank.config import Settings
from biobank.kit.db import session_factory
from tests.audit.conftest import actor, head, recomputed_root, record_many, stored_leaves
from tests.conftest import POSTGRES


def test_recorded_entry_is_its_canonical_leaf_with_every_field(db: Session, engine: Engine) -> None:
    size_before, _ = head(engine)
    audit.record(
        db,
        actor("CN-SH-RJ"),
        "specimen.read",
        "specimen",
        ["CN-SH-RJ:SPC-000123", "CN-SH-RJ:SPC-000124"],
        purpose="project:P-2026-004",
        details={"count": 2, "criteria": "ICD-10 C50"},
        client_hash="0123456789abcdef",
    )
    db.commit()
    stored = db.get(AuditEntry, size_before)
    assert stored is not None
    fields = decode_entry(stored.leaf)
    assert fields == {
        "index": size_before,
        "time": fields["time"],
        "actor": "usr-test",
        "institution": "CN-SH-RJ",
        "action": "specimen.read",
        "resource_type": "specimen",
        "resource_ids": ["CN-SH-RJ:SPC-000123", "CN-SH-RJ:SPC-000124"],
        "purpose": "project:P-2026-004",
        "outcome": "success",
        "client_hash": "0123456789abcdef",
        "details": {"count": 2, "criteria": "ICD-10 C50"},
        "v": 1,
    }
    assert fields["time"].endswith("Z") and len(fields["time"]) == 27
    links = db.scalars(select(AuditResource.resource_id).where(AuditResource.entry_idx == size_before)).all()
    assert sorted(links) == ["CN-SH-RJ:SPC-000123", "CN-SH-RJ:SPC-000124"]


def test_tree_nodes_and_head_match_a_recomputation(db: Session, engine: Engine) -> None:
    record_many(engine, 37, per_transaction=5)
    record_many(engine, 6)
    size, tree_root = head(engine)
    assert size == len(stored_leaves(engine)) >= 43
    assert tree_root == recomputed_root(engine)
    leaves = stored_leaves(engine)
    reader = repo.SqlNodeReader(db)
    assert root(size, reader) == tree_root
    for index, leaf in leaves:
        proof = inclusion_proof(index, size, reader)
        assert verify_inclusion(leaf_hash(leaf), index, size, proof, tree_root)
    # A tree of n leaves stores just under 2n perfect-subtree nodes.
    assert db.execute(select(func.count()).select_from(AuditNode)).scalar_one() == 2 * size - size.bit_count()
    db.rollback()


def test_with_index_equals_encoding_at_that_index() -> None:
    rng = random.Random(7)
    for _ in range(300):
        entry = PendingEntry(
            at=datetime(2026, 11, 21, tzinfo=UTC),
            actor=rng.choice(["usr-1", "anonymous"]),
            institution="CN-SH-H01",
            action="specimen.read",
            resource_type="specimen",
            resource_ids=[f"id-{rng.randint(0, 9)}"],
            purpose=rng.choice([None, '"index":0,"institution":', "P-1"]),
            outcome="success",
            client_hash=None,
            details=rng.choice([{}, {"index": 0, "institution": "x"}, {"returned": rng.randint(0, 10**9)}]),
        )
        index = rng.choice([0, 1, 9, 10, 12345, 2**40])
        assert with_index(leaf_template(entry), index) == encode_entry(entry_fields(index, entry))


def test_rolled_back_transaction_leaves_no_entry(engine: Engine, db: Session) -> None:
    size_before, root_before = head(engine)
    factory = session_factory(engine)
    with pytest.raises(RuntimeError), factory() as session, session.begin():
        audit.record(session, actor(), "specimen.update", "specimen", ["CN-SH-H01:SPC-000001"])
        raise RuntimeError("the action failed")
    assert head(engine) == (size_before, root_before)
    with factory() as session:
        audit.record(session, actor(), "specimen.update", "specimen", ["CN-SH-H01:SPC-000001"])
        session.rollback()
        session.commit()  # nothing pending any more
    assert head(engine) == (size_before, root_before)
    assert len(stored_leaves(engine)) == size_before


def test_savepoint_rollback_keeps_the_outer_transactions_entries(engine: Engine, db: Session) -> None:
    size_before, _ = head(engine)
    with session_factory(engine)() as session:
        audit.record(session, actor(), "donor.read", "donor", ["CN-SH-H01:DON-000001"])
        nested = session.begin_nested()
        audit.record(session, actor(), "donor.update", "donor", ["CN-SH-H01:DON-000001"])
        nested.rollback()
        with session.begin_nested():
            audit.record(session, actor(), "donor.diagnosis.add", "donor", ["CN-SH-H01:DON-000001"])
        session.commit()
    actions = [decode_entry(leaf)["action"] for i, leaf in stored_leaves(engine) if i >= size_before]
    assert actions == ["donor.read", "donor.diagnosis.add"]


def test_bad_entries_are_refused_when_recorded_not_at_commit(db: Session) -> None:
    with pytest.raises(EntryEncodingError, match=r"details\.ratio: floats"):
        audit.record(db, actor(), "specimen.read", "specimen", [], details={"ratio": 0.5})  # type: ignore[dict-item]
    with pytest.raises(EntryEncodingError, match="action is longer than 64"):
        audit.record(db, actor(), "x" * 65, "specimen", [])
    assert audit.service.pending_entries(db) == []


def _hammer(engine: Engine, threads: int, per_thread: int, errors: list[BaseException]) -> None:
    def work(number: int) -> None:
        try:
            factory = session_factory(engine)
            for i in range(per_thread):
                with factory() as session:
                    for _ in range(1 + (i % 3)):
                        audit.record(session, actor(), "specimen.read", "specimen", [f"T{number}-{i}"])
                    session.commit()
        except BaseException as exc:
            errors.append(exc)

    workers = [threading.Thread(target=work, args=(n,)) for n in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()


def test_concurrent_writers_produce_one_gap_free_sequence(engine: Engine, db: Session) -> None:
    size_before, _ = head(engine)
    errors: list[BaseException] = []
    threads, per_thread = 6, 15
    _hammer(engine, threads, per_thread, errors)
    assert errors == []
    expected = size_before + threads * sum(1 + (i % 3) for i in range(per_thread))
    leaves = stored_leaves(engine)
    assert [i for i, _ in leaves] == list(range(expected))
    assert [decode_entry(leaf)["index"] for _, leaf in leaves] == list(range(expected))
    size, tree_root = head(engine)
    assert size == expected
    assert tree_root == recomputed_root(engine)
    with session_factory(engine)() as session:
        assert root(size, repo.SqlNodeReader(session)) == tree_root
    dialect = "postgresql" if POSTGRES else "sqlite"
    assert engine.dialect.name == dialect


def test_crash_between_append_and_checkpoint_loses_nothing(engine: Engine, db: Session, settings: Settings) -> None:
    with session_factory(engine)() as session:
        make_checkpoint(session, settings, force=True)
        session.commit()
    record_many(engine, 25, per_transaction=4)
    # The process dies here: no checkpoint was made for those entries. A new process starts.
    engine.dispose()
    with session_factory(engine)() as session:
        checkpoint = make_checkpoint(session, settings, force=True)
        session.commit()
    assert checkpoint is not None
    size, tree_root = head(engine)
    assert (
        (checkpoint.size, checkpoint.root) == (size, tree_root) == (len(stored_leaves(engine)), recomputed_root(engine))
    )


def test_empty_log_has_the_empty_root(engine: Engine, db: Session) -> None:
    db.execute(text("DELETE FROM audit_resources"))
    db.execute(text("DELETE FROM audit_entries"))
    db.execute(text("DELETE FROM audit_nodes"))
    db.execute(text("UPDATE audit_head SET size = 0, root = :r"), {"r": EMPTY_ROOT})
    db.commit()
    assert head(engine) == (0, EMPTY_ROOT)
    record_many(engine, 1)
    assert head(engine)[0] == 1
    assert head(engine)[1] == leaf_hash(stored_leaves(engine)[0][1])
