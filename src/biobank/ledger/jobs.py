"""The ledger's background work in `biobank serve`: publish the outbox, anchor the audit log.

One daemon thread per node process. It connects lazily and reconnects after failures, so a node
whose chain is down keeps serving; the backlog grows and is published when the chain returns.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from fastapi import FastAPI
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from biobank.config import Environment, Settings
from biobank.kit.db import get_engine, session_factory, unit_of_work, utcnow
from biobank.ledger.anchoring import anchor_latest
from biobank.ledger.publisher import PublishReport, publish_due
from biobank.ledger.service import Ledger, describe, open_ledger
from biobank.ledger.sync import sync_events

log = logging.getLogger("biobank.ledger")


@dataclass
class WorkerStatus:
    """What the status page shows about the background thread."""

    connected: bool = False
    last_error: str = ""
    last_round_at: datetime | None = None
    last_anchor_at: datetime | None = None
    published: int = 0
    synced: int = 0
    chain: dict[str, Any] = field(default_factory=dict)  # last known chain facts (id, block, contracts)


def background_enabled(settings: Settings) -> bool:
    """The thread runs when the ledger is on, unless switched off; tests switch it on explicitly."""
    if not settings.ledger_enabled:
        return False
    if settings.ledger_background is not None:
        return settings.ledger_background
    return settings.env is not Environment.TEST


class LedgerRunner:
    """One round at a time: connect if needed, publish what is due, anchor when the interval has passed."""

    def __init__(self, settings: Settings, engine: Engine | None = None) -> None:
        self.settings = settings
        self.engine = engine or get_engine(settings.effective_database_url)
        self.sessions: sessionmaker[Session] = session_factory(self.engine)
        self.ledger: Ledger | None = None
        self.status = WorkerStatus()
        self._next_anchor = 0.0

    def connect(self) -> Ledger:
        """The open ledger (opening it on first use)."""
        if self.ledger is None:
            self.ledger = open_ledger(self.settings, self.sessions)
            self.status.connected = True
        return self.ledger

    def disconnect(self) -> None:
        """Drop the connection (after an error; the next round reconnects)."""
        if self.ledger is not None:
            try:
                self.ledger.close()
            finally:
                self.ledger = None
        self.status.connected = False

    def anchor_if_due(self, *, force: bool = False) -> bool:
        """Queue an anchor of the latest checkpoint when the interval has passed; True if one was queued."""
        now = time.monotonic()
        if not force and now < self._next_anchor:
            return False
        self._next_anchor = now + self.settings.ledger_anchor_seconds
        with unit_of_work(self.engine) as session:
            queued = anchor_latest(session, self.settings) is not None
        if queued:
            self.status.last_anchor_at = utcnow()
        return queued

    def run_round(self) -> PublishReport:
        """Anchor if due, then publish; errors are kept for the status page and the connection reset."""
        try:
            self.anchor_if_due()
            ledger = self.connect()
            report = publish_due(self.sessions, ledger)
            self.status.published += report.sent
            if not report.unavailable:
                self.status.synced += sync_events(self.sessions, ledger)
                self.status.chain = describe(ledger)
            self.status.last_error = report.unavailable or ""
            if report.unavailable:
                self.disconnect()
            return report
        except Exception as exc:
            log.warning("ledger round failed", extra={"error": type(exc).__name__})
            self.status.last_error = f"{type(exc).__name__}: {exc}"[:500]
            self.disconnect()
            return PublishReport(unavailable=self.status.last_error)
        finally:
            self.status.last_round_at = utcnow()

    def close(self) -> None:
        """Close the chain connection."""
        self.disconnect()


class LedgerWorker:
    """A daemon thread running rounds every `ledger_publish_seconds`."""

    def __init__(self, runner: LedgerRunner) -> None:
        self.runner = runner
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="ledger", daemon=True)

    def start(self) -> None:
        """Start the thread."""
        self._thread.start()

    def stop(self) -> None:
        """Stop and wait for a round in progress, then close the chain."""
        self._stop.set()
        self._thread.join(timeout=30)
        self.runner.close()

    def _loop(self) -> None:
        interval = self.runner.settings.ledger_publish_seconds
        while not self._stop.is_set():
            report = self.runner.run_round()
            # more is due right away when a round hit its limit; otherwise wait (longer while unreachable)
            wait = 0.0 if report.touched >= 500 else interval * (5 if report.unavailable else 1)
            if self._stop.wait(wait):
                break


def start(app: FastAPI) -> None:
    """App start: a runner for the pages; the background thread unless disabled."""
    settings: Settings = app.state.settings
    if not settings.ledger_enabled:
        return
    runner = LedgerRunner(settings)
    app.state.ledger_runner = runner
    if background_enabled(settings):
        worker = LedgerWorker(runner)
        app.state.ledger_worker = worker
        worker.start()


def stop(app: FastAPI) -> None:
    """App shutdown: stop the ledger thread."""
    worker: LedgerWorker | None = getattr(app.state, "ledger_worker", None)
    if worker is not None:
        worker.stop()
        app.state.ledger_worker = None
    runner: LedgerRunner | None = getattr(app.state, "ledger_runner", None)
    if runner is not None:
        runner.close()
        app.state.ledger_runner = None
