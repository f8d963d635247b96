"""Two nodes on loopback sharing one anvil: node B, after `sync_events`, sees node A's agreement and anchor
in its event mirror and on its /ledger/consortium page."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from biobank.config import Environment, Settings, configure
from biobank.identity.principal import system_principal
from biobank.kit.db import get_engine, session_factory
from biobank.ledger.keys import Role, role_account
from biobank.ledger.models import LedgerChainEvent
from biobank.ledger.reading import consortium
from biobank.ledger.refs import institution_ref
from biobank.ledger.service import Ledger, admit_institution, open_ledger
from biobank.ledger.sync import sync_events
from biobank.node import initialise_node
from tests import conftest as root
from tests.conftest import World
from tests.ledger.e2e import chainstate as chain
from tests.ledger.e2e import walk
from tests.ledger.e2e.conftest import unique_secret
from tests.ledger.e2e.test_workflow import _anchor

CODE_B = "CN-BJ-H02"
pytestmark = pytest.mark.parametrize("settings", ["anvil"], indirect=True)


@pytest.fixture
def node_b(tmp_path: Path, template_database: str, anvil: str, ledger: Ledger) -> Iterator[tuple[Settings, Ledger]]:
    """A second node (its own database, data directory and secret), admitted by node A and joined."""
    if root.POSTGRES:
        name = f"biobank_e2e_b_{os.getpid()}_{next(root._counter)}"
        root._pg_admin_execute(f'CREATE DATABASE "{name}" TEMPLATE "{template_database}"')
        url = root._pg_url(name)
    else:
        path = tmp_path / "node-b.sqlite3"
        shutil.copyfile(template_database, path)
        url = f"sqlite:///{path}"
    settings_b = Settings(
        env=Environment.TEST, data_dir=tmp_path / "node-b", database_url=url, institution_code=CODE_B,
        institution_name="Beijing North Hospital", ledger_url=anvil,
        ledger_registry=ledger.addresses["InstitutionRegistry"], log_json=False,
        secret_key=unique_secret("b"), vault_key="v" * 48, pseudonym_key="p" * 48,
    )
    sessions_b = session_factory(get_engine(url))
    with sessions_b.begin() as session:
        initialise_node(session, settings_b)
    admit_institution(ledger, CODE_B, role_account(settings_b, Role.INSTITUTION_ADMIN).address)
    ledger_b = open_ledger(settings_b, sessions_b)
    try:
        yield settings_b, ledger_b
    finally:
        ledger_b.close()
        get_engine(url).dispose()
        if root.POSTGRES:
            root._pg_admin_execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_node_b_sees_node_a_agreement_and_anchor(
    db: Session, world: World, settings: Settings, sessions: sessionmaker[Session], ledger: Ledger,
    node_b: tuple[Settings, Ledger],
) -> None:
    settings_b, ledger_b = node_b
    assert ledger_b.addresses == ledger.addresses  # found through the registry
    who = walk.cast(db, world)
    walked = walk.through_grant(db, world, who)
    _anchor(sessions, settings)
    chain.publish_all(sessions, ledger)
    chain.all_sent(sessions)
    with sessions() as session:
        terms_hash = walked.agreement_row(session).terms_hash

    sessions_b = session_factory(get_engine(settings_b.effective_database_url))
    assert sync_events(sessions_b, ledger_b) > 0
    inst_a = institution_ref(settings.institution_code)
    with sessions_b() as session:
        agreed = session.scalars(select(LedgerChainEvent).where(LedgerChainEvent.event == "AgreementRecorded")).all()
        anchored = session.scalars(select(LedgerChainEvent).where(LedgerChainEvent.event == "Anchored")).all()
        (agreement,) = [e for e in agreed if e.args["request"] == walked.chain_id]
        assert agreement.args["provider"] == inst_a and agreement.args["terms_hash"] == terms_hash
        assert [e.args["inst"] for e in anchored] == [inst_a]

        view = consortium(session, system_principal(CODE_B), ledger_b.client.chain_id)
        assert view.institutions[inst_a] == settings.institution_code and view.institutions[
            institution_ref(CODE_B)] == CODE_B
        assert [e.args["request"] for e in view.agreements] == [walked.chain_id]
        assert [e.args["request"] for e in view.requests] == [walked.chain_id]
        assert [e.args["inst"] for e in view.anchors] == [inst_a]

    # the page an administrator of node B opens
    from biobank.app import create_app
    from tests.factories import make_token, make_user

    with sessions_b.begin() as session:
        token = make_token(session, make_user(session, "admin-b", is_admin=True))
    configure(settings_b)
    try:
        with TestClient(create_app(settings_b), raise_server_exceptions=False) as client:
            page = client.get("/ledger/consortium", headers={"Authorization": f"Bearer {token}"})
            outsider = client.get("/ledger/consortium", follow_redirects=False)
    finally:
        configure(settings)
    assert page.status_code == 200, page.text[:500]
    assert settings.institution_code in page.text and CODE_B in page.text
    assert walked.chain_id[:14] in page.text and terms_hash[:18] in page.text  # the page shortens hashes
    assert "No agreement on chain yet" not in page.text and "No anchor on chain yet" not in page.text
    assert outsider.status_code in (302, 303, 401, 404) and walked.chain_id[:14] not in outsider.text
