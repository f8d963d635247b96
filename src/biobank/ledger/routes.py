"""Ledger API: status, the outbox, anchors, consortium events (read from the database)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from biobank.audit.service import record
from biobank.identity.deps import CurrentPrincipal
from biobank.kit.deps import DbSession
from biobank.ledger import reading
from biobank.ledger.publisher import retry_failed
from biobank.ledger.web import RowId, worker_state

router = APIRouter(prefix="/api/v1/ledger", tags=["ledger"])


def _row(row: Any) -> dict[str, Any]:
    return {"id": row.id, "kind": row.kind, "status": row.status, "attempts": row.attempts,
            "tx_hash": row.tx_hash, "block_number": row.block_number, "last_error": row.last_error,
            "created_at": row.created_at, "sent_at": row.sent_at, "payload": row.payload}


@router.get("/status")
def status(request: Request, session: DbSession, principal: CurrentPrincipal) -> dict[str, Any]:
    """Backlog counts, the latest anchors and the background runner's state."""
    shown = reading.overview(session, principal, worker_state(request))
    b = shown.backlog
    return {
        "backlog": {"pending": b.pending, "sending": b.sending, "failed": b.failed, "sent": b.sent,
                    "oldest_pending_at": b.oldest_pending_at, "last_error": b.last_error},
        "anchors": [{"size": a.tree_size, "root": a.root_hash, "tx_hash": a.tx_hash, "block_number": a.block_number,
                     "anchored_at": a.anchored_at} for a in shown.anchors],
        "worker": shown.worker,
    }


@router.get("/outbox")
def outbox(
    session: DbSession, principal: CurrentPrincipal,
    status: Annotated[str | None, Query(pattern="^(pending|sending|sent|failed)$")] = None,
    offset: Annotated[int, Query(ge=0, le=2**31)] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> dict[str, Any]:
    """Chain writes, newest first."""
    rows, total = reading.outbox_page(session, principal, status=status, offset=offset, limit=limit)
    return {"items": [_row(r) for r in rows], "total": total, "offset": offset, "limit": limit}


@router.post("/outbox/{row_id}/retry")
def retry(row_id: RowId, session: DbSession, principal: CurrentPrincipal) -> dict[str, Any]:
    """Queue a rejected write again."""
    reading.require_ledger_admin(principal)
    row = retry_failed(session, row_id)
    record(session, principal, "ledger.outbox.retry", "ledger_outbox", [str(row.id)], details={"kind": row.kind})
    return _row(row)


@router.get("/consortium")
def consortium(request: Request, session: DbSession, principal: CurrentPrincipal) -> dict[str, Any]:
    """Agreements, requests and anchors of every institution, as mirrored from the chain."""
    view = reading.consortium(session, principal, worker_state(request)["chain"].get("chain_id"))

    def rows(events: list[Any]) -> list[dict[str, Any]]:
        return [{"block": e.block_number, "tx_hash": e.tx_hash, "event": e.event, "args": e.args} for e in events]

    return {"institutions": view.institutions, "agreements": rows(view.agreements), "anchors": rows(view.anchors),
            "requests": rows(view.requests)}
