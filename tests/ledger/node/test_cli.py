"""`biobank ledger ...` on the embedded chain, and `biobank audit verify` checking the anchors."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from biobank.audit.service import record
from biobank.config import Settings
from biobank.ledger.models import LedgerAnchor


@pytest.fixture
def cli(settings: Settings, db: Session) -> Iterator[Any]:
    from typer.testing import CliRunner

    import biobank.cli

    if not any(group.name == "ledger" for group in biobank.cli.app.registered_groups):
        biobank.cli._register_subcommands()
    yield lambda *args: CliRunner().invoke(biobank.cli.app, list(args))


def test_status_deploys_the_embedded_chain_and_reports(cli: Any, settings: Settings) -> None:
    result = cli("ledger", "status", "--json")
    assert result.exit_code == 0, result.output
    status = json.loads(result.output)
    assert status["chain"]["chain_id"] == settings.ledger_embedded_chain_id
    assert set(status["chain"]["contracts"]) == {
        "InstitutionRegistry", "ResourceRegistry", "AccessAgreements", "RevenueLedger", "AuditAnchors"}
    assert status["backlog"]["pending"] == 0


def test_accounts_differ_per_role(cli: Any) -> None:
    result = cli("ledger", "accounts")
    assert result.exit_code == 0
    addresses = [line.split()[-1] for line in result.output.strip().splitlines()]
    assert len(addresses) == 6 and len(set(addresses)) == 6 and all(a.startswith("0x") for a in addresses)


def test_admit_refuses_a_malformed_address_or_code(cli: Any) -> None:
    result = cli("ledger", "admit", "CN-BJ-H02", "not-an-address")
    assert result.exit_code == 1 and "not an account address" in result.output
    result = cli("ledger", "admit", "X" * 40, "0x" + "12" * 20)
    assert result.exit_code == 1 and "not an institution code" in result.output


def test_admit_then_admit_again(cli: Any) -> None:
    address = "0x" + "12" * 20
    first = cli("ledger", "admit", "CN-BJ-H02", address)
    assert first.exit_code == 0 and "admitted in block" in first.output, first.output
    again = cli("ledger", "admit", "CN-BJ-H02", address)
    assert again.exit_code == 0 and "already a member" in again.output


def test_anchor_verify_and_audit_verify(cli: Any, db: Session, settings: Settings, tmp_path: Any) -> None:
    for n in range(3):
        record(db, None, "test.event", "thing", [f"x{n}"])
    db.commit()
    result = cli("ledger", "anchor")
    assert result.exit_code == 0, result.output
    assert "anchored size" in result.output
    assert cli("ledger", "verify").exit_code == 0
    audit = cli("audit", "verify", "--quiet", "--state", str(tmp_path / "state.json"))
    assert audit.exit_code == 0, audit.output
    assert "1 anchored root(s) on the chain are consistent" in audit.output
    # the local anchor table is edited: ledger verify names it
    anchor = db.scalars(select(LedgerAnchor)).one()
    anchor.root_hash = "cd" * 32
    db.commit()
    result = cli("ledger", "verify")
    assert result.exit_code == 1
    assert "audit anchor at size" in result.output and "root" in result.output


def test_join_without_a_registry_is_refused(cli: Any) -> None:
    result = cli("ledger", "join")
    assert result.exit_code == 1 and "BIOBANK_LEDGER_REGISTRY" in result.output


def test_suspend_and_reinstate_an_institution(cli: Any, settings: Settings) -> None:
    code = settings.institution_code
    refused = cli("ledger", "reinstate", code)
    assert refused.exit_code == 1 and "not suspended" in refused.output
    assert cli("ledger", "suspend", code).exit_code == 0
    again = cli("ledger", "suspend", code)
    assert again.exit_code == 1 and "already suspended" in again.output
    assert cli("ledger", "reinstate", code).exit_code == 0
    unknown = cli("ledger", "suspend", "XX-NONE")
    assert unknown.exit_code == 1 and "unknown institution" in unknown.output


def test_admin_handover_needs_the_successor_to_accept(cli: Any) -> None:
    assert cli("ledger", "propose-admin", "nonsense").exit_code == 1
    nobody = cli("ledger", "accept-admin")
    assert nobody.exit_code == 1 and "no pending admin" in nobody.output
    successor = "0x" + "34" * 20
    result = cli("ledger", "propose-admin", successor)
    assert result.exit_code == 0 and "accept-admin" in result.output
    not_them = cli("ledger", "accept-admin")  # this node's account is not the proposed one
    assert not_them.exit_code == 1 and "not pending admin" in not_them.output
