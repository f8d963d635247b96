"""Background work of the audit log: sign checkpoints when due and submit them to witness peers;
run a verification started from the auditor UI. Each run uses its own short transactions."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from fastapi import FastAPI
from sqlalchemy import Engine, event
from sqlalchemy.orm import Session, sessionmaker

from biobank.audit import keys, witness
from biobank.audit import repository as repo
from biobank.audit.checkpoints import LogInconsistent, make_checkpoint
from biobank.audit.models import AuditVerifyRun
from biobank.audit.reading import require_auditor
from biobank.audit.service import record
from biobank.config import Environment, Settings
from biobank.identity.principal import Principal
from biobank.kit.db import finish_failed, get_engine, session_factory, unit_of_work, utcnow

log = logging.getLogger("biobank.audit")

MAX_POLL_SECONDS = 5.0


def run_once(
    settings: Settings, *, engine: Engine | None = None, http: httpx.Client | None = None, force: bool = False
) -> None:
    """Sign a checkpoint if one is due (or forced), then submit the latest to the witness peers."""
    engine = engine or get_engine(settings.effective_database_url)
    try:
        with unit_of_work(engine) as session:
            make_checkpoint(session, settings, force=force)
    except LogInconsistent:
        return  # recorded as an event; nothing is signed or sent until an operator looks
    if settings.audit_witnesses:
        client = http or httpx.Client()
        try:
            witness.submit(session_factory(engine), settings, client)
        finally:
            if http is None:
                client.close()


def background_enabled(settings: Settings) -> bool:
    """The thread runs unless switched off; tests switch it on explicitly."""
    if settings.audit_background is not None:
        return settings.audit_background
    return settings.env is not Environment.TEST


class CheckpointWorker:
    """A daemon thread that checks every few seconds whether a checkpoint is due."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.interval = min(MAX_POLL_SECONDS, float(settings.audit_checkpoint_seconds))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="audit-checkpoints", daemon=True)

    def start(self) -> None:
        """Start polling."""
        self._thread.start()

    def stop(self) -> None:
        """Stop polling and wait for a run in progress."""
        self._stop.set()
        self._thread.join(timeout=30)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                run_once(self.settings)
            except Exception:
                log.exception("audit checkpoint job failed")


def start(app: FastAPI) -> None:
    """App start: make sure the keys exist, then start the checkpoint thread (unless disabled)."""
    settings: Settings = app.state.settings
    keys.ensure_key_files(settings)
    if background_enabled(settings):
        worker = CheckpointWorker(settings)
        app.state.audit_worker = worker
        worker.start()


def stop(app: FastAPI) -> None:
    """App shutdown: stop the checkpoint thread."""
    worker: CheckpointWorker | None = getattr(app.state, "audit_worker", None)
    if worker is not None:
        worker.stop()
        app.state.audit_worker = None


# -- verification started from the UI ------------------------------------------------------------------------


def ui_state_path(settings: Settings) -> Path:
    """The state file of verifications run by the node itself (pinned key, last verified checkpoint)."""
    return settings.data_dir / "audit-verify" / "state.json"


def start_verification(
    session: Session, principal: Principal, factory: sessionmaker[Session], settings: Settings
) -> AuditVerifyRun:
    """Create a run row; once this transaction commits, the verification starts in a thread."""
    require_auditor(principal)
    run = AuditVerifyRun(started_by=principal.public_id, started_at=utcnow(), updated_at=utcnow(), status="running")
    session.add(run)
    session.flush()
    record(session, principal, "audit.verify.start", "audit_log", [], details={"run": run.id})
    run_id = run.id
    event.listen(session, "after_commit", lambda _s: verify_in_background(factory, settings, run_id), once=True)
    return run


def run_verification(factory: sessionmaker[Session], settings: Settings, run_id: int) -> None:
    """Verify the local log, storing progress on the run row after every page."""
    from biobank.audit.verify import LocalSource, verify_log

    def progress(done: int, total: int) -> None:
        with factory.begin() as session:
            run = repo.verify_run(session, run_id)
            if run is not None:
                run.done, run.size, run.updated_at = done, total, utcnow()

    try:
        with _transaction(factory) as session:
            make_checkpoint(session, settings, force=True)  # cover everything committed before the click
        report = verify_log(LocalSource(factory, settings), state_path=ui_state_path(settings), progress=progress)
        status = "passed" if report.ok else "failed"
        message = "; ".join(report.problems[:10]) or f"{report.size:,} entries verified against the signed checkpoint"
        first_bad, size = report.first_bad, report.size
    except Exception as exc:
        log.exception("audit verification failed")
        status, message, first_bad, size = "error", f"{type(exc).__name__}: {exc}", None, 0
    with factory.begin() as session:
        run = repo.verify_run(session, run_id)
        if run is not None:
            run.status, run.message, run.first_bad = status, message[:4000], first_bad
            run.size = size or run.size
            run.done = run.size if status == "passed" else run.done
            run.finished_at = run.updated_at = utcnow()


@contextmanager
def _transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One transaction of a job: commit, or roll back (keeping what an error asks to keep)."""
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException as exc:
        finish_failed(session, exc)
        raise
    finally:
        session.close()


def verify_in_background(factory: sessionmaker[Session], settings: Settings, run_id: int) -> threading.Thread:
    """Run a verification in a daemon thread."""
    thread = threading.Thread(
        target=run_verification, args=(factory, settings, run_id), name=f"audit-verify-{run_id}", daemon=True
    )
    thread.start()
    return thread
