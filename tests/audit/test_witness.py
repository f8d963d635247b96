"""Witnessing between two in-process nodes: cosignatures, the tlog-witness status codes, and a log
that rewrites or truncates its history being refused, with the refusal visible on both sides."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from biobank.audit import jobs, keys
from biobank.audit import repository as repo
from biobank.audit.checkpoint import (
    NoteSigner,
    NoteVerifier,
    format_add_checkpoint_request,
    format_checkpoint,
    open_note,
    parse_checkpoint,
    sign_note,
)
from biobank.audit.encoding import decode_entry, encode_entry
from biobank.audit.merkle import MemoryNodeStore, append_many, consistency_proof, leaf_hash, root
from biobank.audit.models import AuditWitnessEvent
from biobank.config import Settings
from biobank.kit.db import session_factory
from tests.audit.conftest import Node, execute, head, record_many, stored_leaves
from tests.conftest import Persona

ADD = "/api/v1/audit/witness/add-checkpoint"


@pytest.fixture
def witness(make_node: Callable[..., Node], settings: Settings, db) -> Node:  # type: ignore[no-untyped-def]
    """A second node that witnesses this node's log; this node submits its checkpoints to it."""
    node = make_node("CN-BJ-W01", audit_witness_logs=[keys.log_signer(settings).vkey()])
    settings.audit_witnesses = ["http://witness.test"]  # its key is pinned on first contact
    return node


def submit(settings: Settings, witness: Node) -> None:
    """The job: sign a checkpoint now and send it to the witness (through the in-process transport)."""
    jobs.run_once(settings, http=witness.client, force=True)


def served(client: TestClient) -> tuple[str, list[str]]:
    note = client.get("/api/v1/audit/checkpoint").text
    return note, [line for line in note.splitlines() if line.startswith("\u2014 ")]


def events(engine: Engine, role: str) -> list[AuditWitnessEvent]:
    with session_factory(engine)() as session:
        return repo.recent_events(session, 50, role=role)


def test_witness_cosigns_a_growing_log(client: TestClient, witness: Node, settings: Settings, engine: Engine) -> None:
    record_many(engine, 10)
    submit(settings, witness)
    note, signatures = served(client)
    assert len(signatures) == 2  # the node's signature and the witness's cosignature
    log_key = NoteVerifier.from_vkey(client.get("/api/v1/audit/public-key").text)
    witness_key = NoteVerifier.from_vkey(witness.client.get("/api/v1/audit/witness/public-key").text)
    _, signers = open_note(note, [log_key, witness_key])
    assert signers == [log_key.name, "CN-BJ-W01.biobank-commons/witness"]
    first = parse_checkpoint(note[: note.index("\n\n") + 1]).size
    # The log grows: the next checkpoint is cosigned after a consistency proof from the first.
    record_many(engine, 7, per_transaction=7)
    submit(settings, witness)
    note, signatures = served(client)
    assert len(signatures) == 2
    assert parse_checkpoint(note[: note.index("\n\n") + 1]).size == first + 7
    with session_factory(witness.engine)() as session:
        state = repo.witness_state(session, keys.log_origin(settings))
        assert state is not None and (state.size, bytes(state.root)) == head(engine)
    assert [e.outcome for e in events(engine, "log")] == ["cosigned", "cosigned"]
    # Submitting again changes nothing: the witness already cosigned this size.
    submit(settings, witness)
    assert [e.outcome for e in events(engine, "log")] == ["cosigned", "cosigned"]


def _request(settings: Settings, old: int, proof: list[bytes], signer: NoteSigner | None = None) -> bytes:
    size, tree_root = _head_of(settings)
    body = format_checkpoint(keys.log_origin(settings), size, tree_root)
    note = sign_note(body, [signer or keys.log_signer(settings)])
    return format_add_checkpoint_request(old, proof, note).encode()


def _head_of(settings: Settings) -> tuple[int, bytes]:
    from biobank.kit.db import get_engine

    return head(get_engine(settings.effective_database_url))


def test_witness_protocol_status_codes(witness: Node, settings: Settings, engine: Engine) -> None:
    record_many(engine, 5)
    post = witness.client.post
    ok = post(ADD, content=_request(settings, 0, []))
    assert ok.status_code == 200 and ok.headers["content-type"].startswith("text/plain")
    assert ok.text.startswith("\u2014 CN-BJ-W01.biobank-commons/witness ")
    cosigned, _ = _head_of(settings)
    record_many(engine, 4)
    # 409: the old size is not what the witness cosigned; the body says what it has.
    stale = post(ADD, content=_request(settings, 0, []))
    assert stale.status_code == 409
    assert stale.headers["content-type"].startswith("text/x.tlog.size")
    assert stale.text == f"{cosigned}\n"
    # 422: a proof that does not verify.
    bad = post(ADD, content=_request(settings, cosigned, [b"\x07" * 32]))
    assert bad.status_code == 422
    # 403: signed by a key the witness does not trust, under the same name.
    forged = post(ADD, content=_request(settings, 0, [], signer=NoteSigner.generate(keys.log_origin(settings))))
    assert forged.status_code == 403
    # 404: a log the witness does not follow.
    stranger = NoteSigner.generate("stranger.example/log")
    note = sign_note(format_checkpoint(stranger.name, 1, b"\x01" * 32), [stranger])
    assert post(ADD, content=format_add_checkpoint_request(0, [], note).encode()).status_code == 404
    # 400: not a request at all.
    assert post(ADD, content=b"hello").status_code == 400
    # A correct proof from the cosigned size is accepted.
    with session_factory(engine)() as session:
        proof = consistency_proof(cosigned, _head_of(settings)[0], repo.SqlNodeReader(session))
    assert post(ADD, content=_request(settings, cosigned, proof)).status_code == 200
    refusals = [(e.status, e.outcome) for e in events(witness.engine, "witness") if e.outcome == "refused"]
    assert sorted(refusals) == [(403, "refused"), (409, "refused"), (422, "refused")]


def _rebuild(engine: Engine, leaves: list[bytes]) -> None:
    """What an insider does to hide an edit: store re-encoded entries, every node, a new head."""
    store = MemoryNodeStore()
    store.put(append_many(0, [leaf_hash(x) for x in leaves], store))
    execute(engine, "DELETE FROM audit_resources")
    execute(engine, "DELETE FROM audit_entries")
    execute(engine, "DELETE FROM audit_nodes")
    execute(engine, "DELETE FROM audit_cosignatures")
    execute(engine, "DELETE FROM audit_checkpoints")
    for index, leaf in enumerate(leaves):
        fields = decode_entry(leaf)
        execute(
            engine,
            "INSERT INTO audit_entries (idx, at, actor, institution, action, resource_type, resource_ids, purpose,"
            " outcome, leaf) VALUES (:i, :at, :actor, :inst, :action, :rt, :rids, :purpose, :outcome, :leaf)",
            i=index,
            at=fields["time"].replace("T", " ").rstrip("Z"),
            actor=fields["actor"],
            inst=fields["institution"],
            action=fields["action"],
            rt=fields["resource_type"],
            rids="[]",
            purpose=fields["purpose"],
            outcome=fields["outcome"],
            leaf=leaf,
        )
    for (level, idx), digest in store.nodes.items():
        execute(engine, "INSERT INTO audit_nodes (level, idx, hash) VALUES (:l, :i, :h)", l=level, i=idx, h=digest)
    execute(engine, "UPDATE audit_head SET size = :s, root = :r", s=len(leaves), r=root(len(leaves), store))


@pytest.mark.parametrize("forget_witness", [False, True])
def test_rewritten_history_is_refused_and_the_refusal_is_visible(
    client: TestClient, witness: Node, settings: Settings, engine: Engine, auditor: Persona, forget_witness: bool
) -> None:
    submit(settings, witness)
    cosigned, _ = head(engine)
    # The insider edits entry 4 and rebuilds everything so that the node's own state is consistent.
    leaves = [leaf for _, leaf in stored_leaves(engine)]
    leaves[4] = encode_entry({**decode_entry(leaves[4]), "action": "donor.read", "purpose": "forged"})
    _rebuild(engine, leaves)
    if forget_witness:
        execute(engine, "UPDATE audit_witness_peers SET cosigned_size = 0")  # pretend it never cosigned
    record_many(engine, 3)
    submit(settings, witness)
    _, signatures = served(client)
    assert len(signatures) == 1  # no cosignature on the rewritten log
    refusal = events(engine, "log")[0]
    assert (refusal.outcome, refusal.status) == ("refused", 422)
    assert "history differs" in refusal.message
    seen_by_witness = events(witness.engine, "witness")[0]
    assert (seen_by_witness.outcome, seen_by_witness.status) == ("refused", 422)
    with session_factory(witness.engine)() as session:
        state = repo.witness_state(session, keys.log_origin(settings))
        assert state is not None and state.size == cosigned  # the witness kept the true history
    page = auditor.get("/audit/witnesses")
    assert page.status_code == 200
    assert "refused" in page.text and "history differs" in page.text


def test_truncated_log_is_refused(client: TestClient, witness: Node, settings: Settings, engine: Engine) -> None:
    record_many(engine, 8)
    submit(settings, witness)
    size, _ = head(engine)
    leaves = [leaf for _, leaf in stored_leaves(engine)][: size - 6]
    _rebuild(engine, leaves)
    submit(settings, witness)
    refusal = events(engine, "log")[0]
    assert refusal.outcome == "refused" and refusal.size == size - 6
    assert "truncated" in refusal.message or "larger than" in refusal.message
    execute(engine, "UPDATE audit_witness_peers SET cosigned_size = 0")
    record_many(engine, 1)
    submit(settings, witness)
    refusal = events(engine, "log")[0]
    assert (refusal.outcome, refusal.status) == ("refused", 409)
    assert f"cosigned size {size}" in refusal.message


def test_configured_witness_key_is_required(
    client: TestClient, make_node: Callable[..., Node], settings: Settings, engine: Engine, db
) -> None:  # type: ignore[no-untyped-def]
    node = make_node("CN-BJ-W02", audit_witness_logs=[keys.log_signer(settings).vkey()])
    someone_else = NoteSigner.generate("CN-BJ-W02.biobank-commons/witness")
    settings.audit_witnesses = [f"http://witness.test {someone_else.cosigner_vkey()}"]
    jobs.run_once(settings, http=node.client, force=True)
    _, signatures = served(client)
    assert len(signatures) == 1
    assert events(engine, "log")[0].outcome == "error"
