"""`biobank users create`: node roles, researchers, ethics reviewers, refusals."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from biobank.identity.models import User, UserKind


@pytest.fixture
def cli(db: Session) -> Iterator[Any]:
    from typer.testing import CliRunner

    import biobank.cli

    yield lambda *args, stdin="a long enough password\n": CliRunner().invoke(biobank.cli.app, list(args), input=stdin)


def _user(db: Session, name: str) -> User:
    user = db.scalars(select(User).where(User.username == name)).one()
    db.expunge(user)  # detached: reading it opens no transaction (SQLite would hold its lock)
    db.rollback()
    return user


def test_researcher_and_ethics_reviewer(cli: Any, db: Session) -> None:
    assert cli("users", "create", "rita", "--role", "researcher").exit_code == 0
    rita = _user(db, "rita")
    assert rita.kind == UserKind.RESEARCHER and not rita.is_ethics_reviewer
    result = cli("users", "create", "erik", "--role", "auditor", "--ethics-reviewer")
    assert result.exit_code == 0, result.output
    erik = _user(db, "erik")
    assert erik.is_ethics_reviewer and erik.is_auditor and erik.kind == UserKind.STAFF


def test_unknown_role_and_taken_name_are_refused(cli: Any, db: Session) -> None:
    bad = cli("users", "create", "x1", "--role", "wizard")
    assert bad.exit_code == 2 and "unknown role" in bad.output
    assert cli("users", "create", "dup", "--role", "researcher").exit_code == 0
    again = cli("users", "create", "dup", "--role", "researcher")
    assert again.exit_code == 2 and "taken" in again.output
