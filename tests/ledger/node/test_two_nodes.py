"""Two nodes on loopback sharing one anvil: admission, roles, and each sees the other's records."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from biobank.config import Environment, Settings
from biobank.kit.db import get_engine, session_factory
from biobank.kit.errors import Conflict
from biobank.ledger import publisher
from biobank.ledger.anchoring import anchor_latest, chain_anchors
from biobank.ledger.keys import ROLE_NAMES, Role
from biobank.ledger.models import LedgerChainEvent
from biobank.ledger.refs import institution_ref
from biobank.ledger.service import Ledger, open_ledger
from biobank.ledger.sync import sync_events
from biobank.node import initialise_node
from tests import conftest as root


def _node(tmp: Path, template: str, code: str, anvil: str, registry: str | None) -> tuple[Settings, sessionmaker]:
    if root.POSTGRES:
        name = f"biobank_node_{code.replace('-', '_').lower()}_{os.getpid()}_{next(root._counter)}"
        root._pg_admin_execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
        url = root._pg_url(name)
    else:
        path = tmp / f"{code}.sqlite3"
        shutil.copyfile(template, path)
        url = f"sqlite:///{path}"
    settings = Settings(
        env=Environment.TEST, data_dir=tmp / code, database_url=url, institution_code=code, institution_name=code,
        ledger_url=anvil, ledger_registry=registry, log_json=False,
        secret_key=f"two-node-secret-{code}-" + "k" * 40, vault_key="v" * 48, pseudonym_key="p" * 48,
    )
    sessions = session_factory(get_engine(url))
    with sessions() as session:
        initialise_node(session, settings)
        session.commit()
    return settings, sessions


@pytest.fixture
def two_nodes(tmp_path: Path, template_database: str, anvil: str) -> Iterator[tuple[Ledger, Settings, sessionmaker]]:
    settings_a, sessions_a = _node(tmp_path, template_database, "CN-SH-H01", anvil, None)
    ledger_a = open_ledger(settings_a, sessions_a, deploy_if_missing=True)
    try:
        registry = ledger_a.addresses["InstitutionRegistry"]
        yield ledger_a, *_node(tmp_path, template_database, "CN-BJ-H02", anvil, registry)
    finally:
        ledger_a.close()


def _anchor(settings: Settings, sessions: sessionmaker[Session], ledger: Ledger) -> None:
    from biobank.audit.service import record

    with sessions.begin() as session:
        record(session, None, "test.event", "thing", ["x"])
    with sessions.begin() as session:
        anchor_latest(session, settings)
    assert publisher.publish_due(sessions, ledger).sent == 1


def test_second_node_is_admitted_then_sees_the_first(two_nodes) -> None:  # type: ignore[no-untyped-def]
    ledger_a, settings_b, sessions_b = two_nodes
    with pytest.raises(Conflict, match="ledger admit CN-BJ-H02"):
        open_ledger(settings_b, sessions_b)
    from biobank.ledger.keys import role_account
    from biobank.ledger.service import admit_institution

    admit_institution(ledger_a, "CN-BJ-H02", role_account(settings_b, Role.INSTITUTION_ADMIN).address)
    ledger_b = open_ledger(settings_b, sessions_b)
    try:
        assert ledger_b.addresses == ledger_a.addresses  # found through the registry
        registry = ledger_b.handle("InstitutionRegistry")
        anchorer_b = ledger_b.account(ROLE_NAMES[Role.ANCHORER]).address
        assert registry.call("has_role", anchorer_b, int(Role.ANCHORER))
        assert bytes(registry.call("institution_of", anchorer_b)).hex() == institution_ref("CN-BJ-H02")[2:]

        _anchor(ledger_a.settings, session_factory(get_engine(ledger_a.settings.effective_database_url)), ledger_a)
        _anchor(settings_b, sessions_b, ledger_b)
        # each node's anchors are filed under its own institution
        assert len(chain_anchors(ledger_a, institution_ref("CN-SH-H01"))) == 1
        assert len(chain_anchors(ledger_a, institution_ref("CN-BJ-H02"))) == 1

        sync_events(sessions_b, ledger_b)
        with sessions_b() as session:
            anchored = session.query(LedgerChainEvent).filter(LedgerChainEvent.event == "Anchored").all()
            added = session.query(LedgerChainEvent).filter(LedgerChainEvent.event == "InstitutionAdded").all()
        assert {e.args["inst"] for e in anchored} == {institution_ref("CN-SH-H01"), institution_ref("CN-BJ-H02")}
        assert {e.args["code"] for e in added} == {"CN-SH-H01", "CN-BJ-H02"}
    finally:
        ledger_b.close()
