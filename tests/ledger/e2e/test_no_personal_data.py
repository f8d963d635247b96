"""No personal data on chain: the demo consortium, whose access requests include the whole walk (a revocation
is covered by test_workflow), published to the embedded chain; every transaction's calldata and every event
log is searched for donor pseudonyms, names and patient ids from the vault, usernames and user ids (and more
identifiers), in every byte form they could take."""

from __future__ import annotations

from typing import Any

from eth_account import Account
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from biobank.access.models import AccessRequest
from biobank.demo.generator import DemoConfig, generate
from biobank.donors.models import Donor, DonorVault
from biobank.donors.service import vault
from biobank.identity.models import User
from biobank.kit.db import session_factory
from biobank.ledger.anchoring import anchor_latest
from biobank.ledger.client import sign_zero_fee
from biobank.ledger.codec import Contract
from biobank.ledger.service import Ledger
from biobank.ledger.verify import verify_ledger
from biobank.specimens.models import Specimen
from tests.ledger.e2e import chainstate as chain
from tests.ledger.e2e.scan import Scanner, calldata_of, chain_blobs, forms_of

SMALL = DemoConfig(donors=30, specimens=200, seed=7)


def personal_values(session: Session) -> dict[str, list[str]]:
    """Everything that identifies a person or names a local object, by kind (the vault decrypted)."""
    box = vault()
    names: list[str] = []
    patient_ids: list[str] = []
    contacts: list[str] = []
    for donor, sealed in session.execute(select(Donor, DonorVault.sealed).join(DonorVault,
                                                                               DonorVault.donor_id == Donor.id)):
        opened = box.open(sealed, bound_to=donor.public_id)
        names.append(str(opened.get("name") or ""))
        patient_ids.append(str(opened.get("patient_id") or ""))
        contacts.append(str(opened.get("contact") or ""))
    users = session.scalars(select(User)).all()
    requests = session.scalars(select(AccessRequest)).all()
    return {
        "donor pseudonym": list(session.scalars(select(Donor.pseudonym))),
        "donor public id": list(session.scalars(select(Donor.public_id))),
        "donor name": names,
        "patient id": patient_ids,
        "donor contact": contacts,
        "username": [u.username for u in users],
        "user public id": [u.public_id for u in users],
        "user display name": [u.display_name for u in users],
        "specimen public id": list(session.scalars(select(Specimen.public_id))),
        "specimen barcode": [b for b in session.scalars(select(Specimen.barcode)) if b],
        "request public id": [r.public_id for r in requests],
        "project title": [r.project_title for r in requests],
    }


def test_the_scanner_finds_a_planted_value_in_every_form() -> None:
    pseudonym = "9f3a6c0de1b2c3d4e5f60718293a4b5c"
    scanner = Scanner([pseudonym, "HUH00000042", "onc-manager", "ab"])  # "ab": too short to look for
    abi = [{"type": "function", "name": "note", "stateMutability": "nonpayable", "outputs": [],
            "inputs": [{"name": "text", "type": "string"}, {"name": "ref", "type": "bytes32"}]}]
    contract = Contract(abi, "0x" + "11" * 20)
    account = Account.create()
    for text, ref, form in [
        (f"donor {pseudonym}", b"\0" * 32, "utf-8"),
        ("nothing", bytes.fromhex(pseudonym) + b"\0" * 16, "hex bytes"),
        ("x" + b"HUH00000042".hex().upper(), b"\0" * 32, "hex text"),
        ("nothing", forms_of("onc-manager")["keccak"], "keccak"),
    ]:
        signed = sign_zero_fee(account, 1, contract.address, contract.encode("note", text, ref), 0, 100_000)
        found = scanner.scan(calldata_of(signed.raw), "planted")
        assert form in {f.form for f in found}, (form, found)
    clean = sign_zero_fee(account, 1, contract.address, contract.encode("note", "nothing", b"\1" * 32), 0, 100_000)
    assert scanner.scan(calldata_of(clean.raw), "clean") == []
    assert not any(secret == "ab" for secret, _, _ in scanner.needles)


def test_nothing_personal_goes_on_chain(
    db: Session, engine: Engine, settings: Any, sessions: sessionmaker[Session], ledger: Ledger
) -> None:
    summary = generate(session_factory(engine), SMALL, lambda _: None)
    statuses = {r.status for r in summary.access_requests}
    assert {"draft", "submitted", "ethics_approved", "agreed", "closed"} <= statuses
    db.rollback()
    with sessions.begin() as session:
        anchor_latest(session, settings)
    chain.publish_all(sessions, ledger)
    rows = chain.all_sent(sessions)
    kinds = {r.kind for r in rows}
    assert {"request.submit", "request.ethics", "request.provider", "request.agreement", "revenue.fee",
            "request.dispatch", "request.receive", "request.grant", "request.results", "request.close",
            "audit.anchor"} <= kinds, kinds

    with sessions() as session:
        values = personal_values(session)
        assert verify_ledger(session, ledger).ok
    assert all(values[k] for k in ("donor pseudonym", "patient id", "username", "user public id")), values
    scanner = Scanner(v for kind in values.values() for v in kind)
    blobs = chain_blobs(ledger.client, [(r.tx_hash, r.raw_tx) for r in rows])  # type: ignore[misc]
    assert len(blobs) > 2 * len(rows)
    findings = [f for where, blob in blobs for f in scanner.scan(blob, where)]
    assert findings == []
    assert len(scanner.needles) > 4 * 200 and scanner.scanned == len(blobs)
    # a positive control on the same chain data: the institution code is public and is on chain (registry)
    control = Scanner([settings.institution_code])
    assert any(control.scan(blob, where) for where, blob in blobs)
    # the chain does hold what it should: e.g. each request's keyed reference
    refs = {r.payload["request"] for r in rows if "request" in r.payload}
    assert any(bytes.fromhex(ref[2:]) in blob for ref in refs for _, blob in blobs)

