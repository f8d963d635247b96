"""Keys outside the database, checkpoints every N seconds or M entries, safe to run twice."""

from __future__ import annotations

import stat
import threading
import time
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select, text

from biobank.audit import jobs, keys
from biobank.audit import repository as repo
from biobank.audit.checkpoint import NoteVerifier, open_note, parse_checkpoint
from biobank.audit.checkpoints import is_due
from biobank.audit.models import AuditCheckpoint
from biobank.config import Settings
from biobank.kit.db import session_factory, utcnow
from tests.audit.conftest import head, record_many


def checkpoints(engine: Engine) -> list[tuple[int, bytes]]:
    with session_factory(engine)() as session:
        rows = session.execute(select(AuditCheckpoint.size, AuditCheckpoint.root).order_by(AuditCheckpoint.size))
        return [(int(size), bytes(r)) for size, r in rows]


def test_key_files_are_private_kept_and_named_after_the_origin(settings: Settings, engine: Engine, db) -> None:  # type: ignore[no-untyped-def]
    directory = keys.key_dir(settings)
    log_key = directory / keys.LOG_KEY_FILE
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    assert stat.S_IMODE(log_key.stat().st_mode) == 0o600
    assert stat.S_IMODE((directory / keys.WITNESS_KEY_FILE).stat().st_mode) == 0o600
    assert log_key.read_text().startswith("PRIVATE+KEY+CN-SH-H01.biobank-commons/audit+")
    before = log_key.read_bytes()
    keys.initialise(db, settings)  # `biobank db upgrade` again, or a restart
    assert log_key.read_bytes() == before
    assert keys.log_signer(settings).name == keys.log_origin(settings) == "CN-SH-H01.biobank-commons/audit"
    assert keys.witness_signer(settings).name == "CN-SH-H01.biobank-commons/witness"
    db.rollback()
    # The private key is nowhere in the database.
    seed_text = before.decode().strip().rsplit("+", 1)[1]
    for table in ("audit_checkpoints", "audit_entries", "audit_head"):
        with engine.connect() as connection:
            for row in connection.execute(text(f"SELECT * FROM {table}")):  # noqa: S608 (fixed names)
                assert seed_text not in str(row)


def test_a_key_of_another_node_is_refused(settings: Settings, db) -> None:  # type: ignore[no-untyped-def]
    moved = settings.model_copy(update={"institution_code": "CN-XX-H99"})
    keys.key_dir(moved).mkdir(parents=True, exist_ok=True)
    with pytest.raises(keys.AuditKeyError, match="holds the key of"):
        keys.ensure_key_files(moved)  # same data directory, another institution code


def test_due_every_n_seconds_or_m_entries(settings: Settings) -> None:
    now = utcnow()
    latest = AuditCheckpoint(size=10, root=b"\x00" * 32, note="", created_at=now)
    settings.audit_checkpoint_seconds, settings.audit_checkpoint_entries = 60, 100
    assert is_due(None, 0, settings, now)
    assert not is_due(latest, 10, settings, now + timedelta(hours=1))  # nothing new
    assert not is_due(latest, 11, settings, now + timedelta(seconds=59))
    assert is_due(latest, 11, settings, now + timedelta(seconds=60))
    assert is_due(latest, 110, settings, now)
    assert not is_due(latest, 109, settings, now)


def test_make_checkpoint_is_safe_to_run_twice_and_concurrently(engine: Engine, settings: Settings, db) -> None:  # type: ignore[no-untyped-def]
    record_many(engine, 9)
    errors: list[BaseException] = []

    def run() -> None:
        try:
            for _ in range(3):
                jobs.run_once(settings, engine=engine, force=True)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert checkpoints(engine) == [head(engine)]
    record_many(engine, 1)
    jobs.run_once(settings, engine=engine)  # not due yet (1 entry, a fresh checkpoint)
    assert len(checkpoints(engine)) == 1
    jobs.run_once(settings, engine=engine, force=True)
    assert checkpoints(engine)[-1] == head(engine)


def test_checkpoint_get_is_lazy_but_never_far_behind(
    client: TestClient, engine: Engine, settings: Settings, db
) -> None:  # type: ignore[no-untyped-def]
    verifier = NoteVerifier.from_vkey(keys.log_signer(settings).vkey())

    def served_size() -> int:
        text_, _ = open_note(client.get("/api/v1/audit/checkpoint").text, [verifier])
        return parse_checkpoint(text_).size

    first = served_size()
    assert first == head(engine)[0]
    settings.audit_checkpoint_entries = 5
    record_many(engine, 4)
    assert served_size() == first  # neither 5 entries nor 60 s: the signed one is served
    record_many(engine, 1)
    assert served_size() == first + 5  # 5 entries: a new checkpoint when asked for
    record_many(engine, 2)
    with session_factory(engine)() as session:  # the latest checkpoint is old now
        session.execute(text("UPDATE audit_checkpoints SET created_at = :t"), {"t": utcnow() - timedelta(minutes=5)})
        session.commit()
    assert served_size() == first + 7


def test_background_thread_signs_checkpoints(engine: Engine, settings: Settings, db) -> None:  # type: ignore[no-untyped-def]
    settings.audit_checkpoint_seconds = 1
    settings.audit_background = True
    assert jobs.background_enabled(settings)
    worker = jobs.CheckpointWorker(settings)
    worker.start()
    try:
        record_many(engine, 3)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and (not checkpoints(engine) or checkpoints(engine)[-1][0] < head(engine)[0]):
            time.sleep(0.2)
    finally:
        worker.stop()
    assert checkpoints(engine)[-1] == head(engine)


def test_background_thread_is_off_in_tests_unless_asked(settings: Settings) -> None:
    assert not jobs.background_enabled(settings)


def test_checkpoint_cli_prints_the_signed_note(engine: Engine, settings: Settings, db) -> None:  # type: ignore[no-untyped-def]
    from typer.testing import CliRunner

    from biobank.audit.cli import app

    record_many(engine, 2)
    result = CliRunner().invoke(app, ["checkpoint"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"CN-SH-H01.biobank-commons/audit\n{head(engine)[0]}\n")
    key = CliRunner().invoke(app, ["public-key"]).output.strip()
    assert key == keys.log_signer(settings).vkey()
    size, _ = head(engine)
    with session_factory(engine)() as session:
        assert session.execute(select(func.count()).select_from(AuditCheckpoint)).scalar_one() == 1
        assert repo.latest_checkpoint(session).size == size  # type: ignore[union-attr]
