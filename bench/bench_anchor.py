"""Benchmark: from an access event to its anchor on chain, and catching up after a chain outage.

1. Anchor latency: the node's ledger thread runs as in `biobank serve` (anchoring every N seconds,
   publishing every 0.2 s) on the embedded chain. Access events are recorded at random moments;
   for each, the time from its commit until an anchor covering it is confirmed on chain.
   Goal: p95 ≤ anchoring interval + 2 s.
2. Catch-up: the chain is unreachable for 10 minutes while the node keeps working. The backlog such
   an outage leaves (one chain write per second — a busy hospital's access workflow — plus one
   anchor per minute = 610 writes) is published when the chain returns; the time it takes, against
   bare signed transactions of the same calls sent straight to the chain (the raw limit).
   On the embedded chain and, when anvil is installed, on anvil.

Run: ``python -m bench anchor [--quick]``.
"""

from __future__ import annotations

import random
import statistics
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from bench.bench_audit import ACTOR, scratch
from sqlalchemy import func, select

from biobank.audit import repository as audit_repo
from biobank.audit.service import record
from biobank.config import configure
from biobank.kit.db import session_factory, unit_of_work, utcnow
from biobank.ledger.client import ChainUnavailable, transact
from biobank.ledger.jobs import LedgerRunner, LedgerWorker
from biobank.ledger.models import LedgerAnchor, LedgerOutbox, OutboxStatus
from biobank.ledger.outbox import enqueue
from biobank.ledger.publisher import publish_due
from biobank.ledger.refs import commitment, object_ref
from biobank.ledger.service import open_ledger

OUTAGE_SECONDS = 600
WRITES_PER_SECOND = 1.0
ANCHORS_PER_OUTAGE = OUTAGE_SECONDS // 60


class Outage:
    """The real client behind a switch: while down, every call fails as an unreachable node does."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.down = False

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self.inner, name)
        if not callable(attribute) or name == "close":
            return attribute

        def call(*args: Any, **kwargs: Any) -> Any:
            if self.down:
                raise ChainUnavailable("connection refused")
            return attribute(*args, **kwargs)

        return call


def _p(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[max(0, round(q * len(ordered)) - 1)]


def anchor_latency(folder: Path, interval: int, events: int) -> dict[str, Any]:
    """Record events at random moments while the ledger thread runs; time each until anchored."""
    with scratch("sqlite", folder) as (engine, base):
        settings = base.model_copy(update={"ledger_anchor_seconds": interval, "ledger_publish_seconds": 0.2})
        configure(settings)
        runner = LedgerRunner(settings, engine)
        runner.connect()  # compile and deploy before the clock starts
        worker = LedgerWorker(runner)
        worker.start()
        sessions = session_factory(engine)
        marks: list[tuple[float, int]] = []
        try:
            for n in range(events):
                time.sleep(random.uniform(0, interval))
                with unit_of_work(engine) as session:
                    record(session, ACTOR, "specimen.read", "specimen", [f"SPC-{n}"], purpose="bench")
                committed = time.time()
                with sessions() as session:
                    size, _ = audit_repo.tree_head(session)
                marks.append((committed, size))
            deadline = time.time() + interval * 3 + 30
            latencies: list[float] = []
            while time.time() < deadline:
                with sessions() as session:
                    anchors = session.execute(
                        select(LedgerAnchor.tree_size, LedgerAnchor.anchored_at)
                        .where(LedgerAnchor.anchored_at.is_not(None)).order_by(LedgerAnchor.tree_size)
                    ).all()
                latencies = []
                for committed, size in marks:
                    covering = next((at for tree_size, at in anchors if tree_size >= size), None)
                    if covering is None:
                        break
                    latencies.append(max(0.0, covering.timestamp() - committed))
                if len(latencies) == len(marks):
                    break
                time.sleep(0.2)
        finally:
            worker.stop()
    if len(latencies) < len(marks):
        return {"error": f"only {len(latencies)} of {len(marks)} events were anchored in time"}
    return {
        "anchoring_interval_s": interval,
        "events": len(marks),
        "p50_s": round(statistics.median(latencies), 2),
        "p95_s": round(_p(latencies, 0.95), 2),
        "max_s": round(max(latencies), 2),
        "goal_p95_s": interval + 2,
        "met": _p(latencies, 0.95) <= interval + 2,
    }


def _queue_outage_backlog(sessions: Any, settings: Any, writes: int, anchors: int) -> None:
    """What a node queues while its chain is away: access-workflow writes and one anchor a minute."""
    with sessions.begin() as session:
        for n in range(writes):
            public_id = f"BENCH:COL-{n:06d}"
            enqueue(session, "resource.publish",
                    {"resource": object_ref(settings, "collection", public_id),
                     "commitment": commitment("00" * 32, {"id": public_id})},
                    dedupe_key=f"resource.publish:{public_id}")
        for n in range(anchors):
            enqueue(session, "audit.anchor", {"size": 1000 * (n + 1), "root": "0x" + f"{n + 1:064x}"},
                    dedupe_key=f"audit.anchor:{1000 * (n + 1)}")


def catch_up(folder: Path, ledger_url: str, writes: int, anchors: int) -> dict[str, Any]:
    """Publish an outage's backlog once the chain returns; compare with bare signed sends."""
    with scratch("sqlite", folder) as (engine, base):
        settings = base.model_copy(update={"ledger_url": ledger_url})
        configure(settings)
        runner = LedgerRunner(settings, engine)
        runner.ledger = open_ledger(settings, runner.sessions, deploy_if_missing=True)  # anvil: deploy first
        ledger = runner.ledger
        outage = Outage(ledger.client)
        ledger.client = outage
        outage.down = True
        sessions = session_factory(engine)
        _queue_outage_backlog(sessions, settings, writes, anchors)
        report = publish_due(sessions, ledger)  # the node notices the outage and backs off
        assert report.unavailable and report.sent == 0
        outage.down = False
        started = time.perf_counter()
        sent = 0
        while True:
            far_future = utcnow() + timedelta(hours=1)  # the backoff would otherwise wait for its retry time
            report = publish_due(sessions, ledger, now=far_future, limit=100_000)
            sent += report.sent
            if report.touched == 0:
                break
        seconds = time.perf_counter() - started
        with sessions() as session:
            left = session.scalar(select(func.count()).select_from(LedgerOutbox)
                                  .where(LedgerOutbox.status != OutboxStatus.SENT))
        # raw limit: the same kind of call, signed and sent directly, no outbox bookkeeping
        account = ledger.account("biobank_operator")
        contract = ledger.contract("ResourceRegistry")
        raw_n = min(200, writes)
        raw_started = time.perf_counter()
        for n in range(raw_n):
            data = contract.encode("publish", bytes.fromhex(object_ref(settings, "raw", str(n))[2:]), b"\x01" * 32)
            transact(ledger.client, account.account, ledger.addresses["ResourceRegistry"], data)
        raw_rate = raw_n / (time.perf_counter() - raw_started)
        runner.close()
    rate = sent / seconds if seconds else 0.0
    return {
        "chain": "embedded" if ledger_url == "embedded" else "anvil",
        "backlog_writes": writes + anchors,
        "published": sent,
        "left_unsent": int(left or 0),
        "catch_up_s": round(seconds, 2),
        "writes_per_s": round(rate, 1),
        "bare_transact_per_s": round(raw_rate, 1),
        "ratio_to_bare": round(rate / raw_rate, 2) if raw_rate else None,
    }


def _anvil_url() -> tuple[str | None, Any]:
    try:
        from tests.ledger.conftest import AnvilNode, anvil_binary
    except Exception:  # the tests package is not importable outside the repository
        return None, None
    binary = anvil_binary()
    if binary is None:
        return None, None
    node = AnvilNode(binary, chain_id=31338)
    return node.url, node


def run(quick: bool = False) -> dict[str, Any]:
    """Anchor latency and outage catch-up, on the embedded chain (and anvil for catch-up)."""
    interval, events = (2, 8) if quick else (5, 30)
    writes = 60 if quick else int(OUTAGE_SECONDS * WRITES_PER_SECOND)
    anchors = 1 if quick else ANCHORS_PER_OUTAGE
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        latency = anchor_latency(folder, interval, events)
        rows = [catch_up(folder, "embedded", writes, anchors)]
        url, node = _anvil_url()
        if url is not None:
            try:
                rows.append(catch_up(folder, url, writes, anchors))
            finally:
                node.stop()
    return {
        "name": "ledger: event → anchor latency, outage catch-up",
        "description": (
            f"Anchor latency with anchoring every {interval} s on the embedded chain; catch-up after a "
            f"{OUTAGE_SECONDS // 60}-minute outage ({writes} access writes + {anchors} anchors queued)."
        ),
        "anchor_latency": latency,
        "catch_up": rows,
    }
