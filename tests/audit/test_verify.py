"""`biobank audit verify`: a sound log verifies locally and remotely; keys are pinned; exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from typer.testing import CliRunner

from biobank.audit import verify as verifier
from biobank.audit.checkpoint import NoteSigner
from biobank.audit.checkpoints import make_checkpoint
from biobank.audit.keys import LOG_KEY_FILE, key_dir, log_origin
from biobank.audit.verify import LocalSource, RemoteSource, VerifiedState, default_state_path, verify_log
from biobank.config import Settings
from biobank.kit.db import session_factory
from tests.audit.conftest import head, record_many
from tests.conftest import Persona


def checkpoint_now(engine: Engine, settings: Settings) -> None:
    """Sign a checkpoint of everything committed so far."""
    with session_factory(engine)() as session:
        make_checkpoint(session, settings, force=True)
        session.commit()


def local(engine: Engine, settings: Settings) -> LocalSource:
    return LocalSource(session_factory(engine), settings)


def test_sound_log_verifies_and_the_state_is_kept(engine: Engine, settings: Settings, tmp_path: Path, db) -> None:  # type: ignore[no-untyped-def]
    record_many(engine, 45, per_transaction=4)
    checkpoint_now(engine, settings)
    state = tmp_path / "state.json"
    seen: list[tuple[int, int]] = []
    report = verify_log(local(engine, settings), state_path=state, progress=lambda d, t: seen.append((d, t)))
    assert report.ok, report.problems
    size, _ = head(engine)
    assert (report.size, report.checked, report.first_bad) == (size, size, None)
    assert seen[-1] == (size, size)
    saved = VerifiedState.load(state)
    assert saved is not None and saved.size == size and saved.origin == log_origin(settings)
    # The log grows; the next run checks it extends the saved checkpoint.
    record_many(engine, 10)
    checkpoint_now(engine, settings)
    again = verify_log(local(engine, settings), state_path=state, deep=True)
    assert again.ok, again.problems
    assert VerifiedState.load(state).size == size + 10  # type: ignore[union-attr]


def test_remote_verification_over_http(
    client: TestClient,
    auditor: Persona,
    engine: Engine,
    settings: Settings,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    record_many(engine, 30, per_transaction=3)
    monkeypatch.setattr(verifier, "PAGE", 8)  # several pages
    source = RemoteSource("http://testserver", auditor.token, http=client)
    report = verify_log(source, state_path=tmp_path / "remote.json")
    assert report.ok, report.problems
    assert report.size >= 30
    unauthorised = verify_log(RemoteSource("http://testserver", None, http=client), state_path=tmp_path / "x.json")
    assert not unauthorised.ok and "401" in unauthorised.problems[0]


def test_changed_key_is_refused_loudly(engine: Engine, settings: Settings, tmp_path: Path, db) -> None:  # type: ignore[no-untyped-def]
    checkpoint_now(engine, settings)
    state = tmp_path / "state.json"
    assert verify_log(local(engine, settings), state_path=state).ok
    # Someone replaces the node's key and re-signs.
    path = key_dir(settings) / LOG_KEY_FILE
    path.write_text(NoteSigner.generate(log_origin(settings)).to_skey() + "\n")
    record_many(engine, 2)
    checkpoint_now(engine, settings)
    report = verify_log(local(engine, settings), state_path=state)
    assert not report.ok
    assert "PUBLIC KEY CHANGED" in report.problems[0] and report.warnings
    accepted = verify_log(local(engine, settings), state_path=state, accept_new_key=True)
    assert accepted.ok, accepted.problems


def test_required_witness_cosignature(engine: Engine, settings: Settings, tmp_path: Path, db) -> None:  # type: ignore[no-untyped-def]
    checkpoint_now(engine, settings)
    witness = NoteSigner.generate("witness.example/w1")
    report = verify_log(local(engine, settings), state_path=tmp_path / "s.json", witness_keys=[witness.cosigner_vkey()])
    assert not report.ok
    assert "no valid cosignature from witness witness.example/w1" in report.problems[0]


def test_default_state_path_is_per_origin() -> None:
    path = default_state_path("CN-SH-H01.biobank-commons/audit")
    assert path.name == "audit-verify-CN-SH-H01.biobank-commons-audit.json"
    assert path.parent.name == ".biobank"


def test_cli_exit_codes_local_and_remote(
    client: TestClient,
    auditor: Persona,
    engine: Engine,
    settings: Settings,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from biobank.audit.cli import app

    record_many(engine, 12)
    checkpoint_now(engine, settings)
    runner = CliRunner()
    state = tmp_path / "cli.json"
    result = runner.invoke(app, ["verify", "--state", str(state), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["ok"] is True
    # Remote: the CLI's own HTTP client is pointed at the in-process app.
    monkeypatch.setattr(verifier.httpx, "Client", lambda **kw: client)
    result = runner.invoke(
        app, ["verify", "--url", "http://testserver", "--token", auditor.token, "--state", str(tmp_path / "r.json")]
    )
    assert result.exit_code == 0, result.output
    assert "ok:" in result.output
    result = runner.invoke(app, ["verify", "--url", "http://testserver", "--token", "bbk_wrong", "--state", str(state)])
    assert result.exit_code == 1
