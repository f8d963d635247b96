"""Tampering with the stored log is detected, and the first bad entry is named.

An insider with database access edits, deletes, swaps or truncates entries. `biobank audit verify`
(local, remote and the CLI) fails and names the index. Runs on SQLite and, with
BIOBANK_TEST_POSTGRES=1, on PostgreSQL.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from typer.testing import CliRunner

from biobank.audit import verify as verifier
from biobank.audit.encoding import decode_entry, encode_entry
from biobank.audit.merkle import MemoryNodeStore, append_many, leaf_hash, root
from biobank.audit.verify import LocalSource, RemoteSource, verify_log
from biobank.config import Settings
from biobank.kit.db import session_factory, unit_of_work
from tests.audit.conftest import execute, head, record_many, stored_leaves
from tests.audit.test_verify import checkpoint_now
from tests.conftest import Persona

N = 40


@pytest.fixture
def verified(engine: Engine, settings: Settings, tmp_path: Path, db) -> Path:  # type: ignore[no-untyped-def]
    """A log of N+ entries, signed and verified once (the verifier's state file is returned)."""
    record_many(engine, N, per_transaction=3)
    checkpoint_now(engine, settings)
    state = tmp_path / "state.json"
    report = verify_log(LocalSource(session_factory(engine), settings), state_path=state)
    assert report.ok, report.problems
    return state


def rewrite(leaf: bytes, **changes: object) -> bytes:
    """The canonical bytes of an entry with some fields changed."""
    return encode_entry({**decode_entry(leaf), **changes})


def local_report(engine: Engine, settings: Settings, state: Path) -> verifier.Report:
    return verify_log(LocalSource(session_factory(engine), settings), state_path=state)


def test_edited_entry_is_named(
    engine: Engine, settings: Settings, verified: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(verifier, "PAGE", 8)
    leaves = dict(stored_leaves(engine))
    execute(
        engine,
        "UPDATE audit_entries SET leaf = :leaf WHERE idx = 21",
        leaf=rewrite(leaves[21], action="specimen.list", outcome="denied"),
    )
    report = local_report(engine, settings, verified)
    assert not report.ok
    assert report.first_bad == 21
    assert "recomputed root" in report.problems[0] and "is 21" in report.problems[0]


def test_deleted_entry_is_named(engine: Engine, settings: Settings, verified: Path) -> None:
    execute(engine, "DELETE FROM audit_resources WHERE entry_idx = 17")
    execute(engine, "DELETE FROM audit_entries WHERE idx = 17")
    report = local_report(engine, settings, verified)
    assert not report.ok and report.first_bad == 17
    assert "entry 17 is missing" in report.problems[0]


def test_swapped_entries_are_named(engine: Engine, settings: Settings, verified: Path) -> None:
    leaves = dict(stored_leaves(engine))
    execute(engine, "UPDATE audit_entries SET leaf = :leaf WHERE idx = 9", leaf=leaves[30])
    execute(engine, "UPDATE audit_entries SET leaf = :leaf WHERE idx = 30", leaf=leaves[9])
    report = local_report(engine, settings, verified)
    assert not report.ok and report.first_bad == 9
    assert "entry 9 says it is entry 30" in report.problems


def test_swapped_and_reindexed_entries_are_named(engine: Engine, settings: Settings, verified: Path) -> None:
    """Reordering with the index fields rewritten to match: only the tree can tell."""
    leaves = dict(stored_leaves(engine))
    execute(engine, "UPDATE audit_entries SET leaf = :leaf WHERE idx = 12", leaf=rewrite(leaves[13], index=12))
    execute(engine, "UPDATE audit_entries SET leaf = :leaf WHERE idx = 13", leaf=rewrite(leaves[12], index=13))
    report = local_report(engine, settings, verified)
    assert not report.ok and report.first_bad == 12


def test_truncated_log_is_named(engine: Engine, settings: Settings, verified: Path) -> None:
    size, _ = head(engine)
    keep = size - 5
    execute(engine, "DELETE FROM audit_resources WHERE entry_idx >= :keep", keep=keep)
    execute(engine, "DELETE FROM audit_entries WHERE idx >= :keep", keep=keep)
    with session_factory(engine)() as session:
        from biobank.audit.repository import SqlNodeReader

        truncated_root = root(keep, SqlNodeReader(session))
    execute(engine, "UPDATE audit_head SET size = :keep, root = :root", keep=keep, root=truncated_root)
    report = local_report(engine, settings, verified)
    assert not report.ok and report.first_bad == keep
    assert f"the log ends at entry {keep}" in report.problems[0]
    # The insider also removes the checkpoint and signs the shorter log: the verifier remembers.
    execute(engine, "DELETE FROM audit_checkpoints")
    checkpoint_now(engine, settings)
    report = local_report(engine, settings, verified)
    assert not report.ok and report.first_bad == keep
    assert "the log shrank" in report.problems[0]


def test_rewritten_history_with_a_rebuilt_tree_is_detected(engine: Engine, settings: Settings, verified: Path) -> None:
    """The insider edits an entry, rebuilds every node and the head, and signs a new checkpoint."""
    leaves = [leaf for _, leaf in stored_leaves(engine)]
    leaves[3] = rewrite(leaves[3], purpose="project:forged")
    store = MemoryNodeStore()
    store.put(append_many(0, [leaf_hash(x) for x in leaves], store))
    execute(engine, "UPDATE audit_entries SET leaf = :leaf WHERE idx = 3", leaf=leaves[3])
    execute(engine, "DELETE FROM audit_nodes")
    for (level, idx), digest in store.nodes.items():
        execute(engine, "INSERT INTO audit_nodes (level, idx, hash) VALUES (:l, :i, :h)", l=level, i=idx, h=digest)
    execute(engine, "UPDATE audit_head SET root = :root", root=root(len(leaves), store))
    execute(engine, "DELETE FROM audit_checkpoints")
    record_many(engine, 3)
    checkpoint_now(engine, settings)
    report = local_report(engine, settings, verified)
    assert not report.ok
    assert any("differ from the checkpoint of size" in p for p in report.problems)
    assert any("is not consistent with" in p for p in report.problems)


def test_node_refuses_to_sign_a_damaged_tree(
    client: TestClient, engine: Engine, settings: Settings, verified: Path
) -> None:
    from biobank.audit.checkpoints import LogInconsistent, make_checkpoint

    signed, _ = head(engine)

    execute(engine, "UPDATE audit_nodes SET hash = :h WHERE level = 5 AND idx = 0", h=b"\x00" * 32)
    record_many(engine, 1)
    with pytest.raises(LogInconsistent, match="does not extend the last checkpoint"), unit_of_work(engine) as session:
        make_checkpoint(session, settings, force=True)
    # The refusal is recorded for the auditor.
    with session_factory(engine)() as session:
        from biobank.audit.repository import recent_events

        event = recent_events(session, 1)[0]
        assert (event.role, event.outcome) == ("self", "refused")
    # Readers keep getting the last checkpoint signed before the damage.
    settings.audit_checkpoint_entries = 1
    response = client.get("/api/v1/audit/checkpoint")
    assert response.status_code == 200
    assert response.text.split("\n")[1] == str(signed)


def test_remote_and_cli_name_the_bad_entry(
    client: TestClient,
    auditor: Persona,
    engine: Engine,
    settings: Settings,
    verified: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    leaves = dict(stored_leaves(engine))
    execute(engine, "UPDATE audit_entries SET leaf = :leaf WHERE idx = 33", leaf=rewrite(leaves[33], actor="usr-x"))
    remote = verify_log(RemoteSource("http://testserver", auditor.token, http=client), state_path=tmp_path / "r.json")
    assert not remote.ok and remote.first_bad == 33
    from biobank.audit.cli import app

    result = CliRunner().invoke(app, ["verify", "--state", str(verified), "--quiet"])
    assert result.exit_code == 1
    assert "first bad entry: 33" in result.output
