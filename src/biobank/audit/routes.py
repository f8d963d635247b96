"""REST: /api/v1/audit — checkpoint, public key, entries, proofs, witness; a donor's access history."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, Path, Query, Request
from fastapi.responses import PlainTextResponse, Response

from biobank.audit import reading, witness
from biobank.audit.access import access_history
from biobank.audit.checkpoint import WitnessConflict, WitnessError
from biobank.audit.schemas import AccessRead, ConsistencyProofRead, EntryRead, InclusionProofRead, LeavesRead
from biobank.config import Settings
from biobank.identity.deps import CurrentPrincipal
from biobank.kit.deps import DbSession
from biobank.kit.pagination import PageParams
from biobank.kit.schemas import Page

router = APIRouter(tags=["audit"])

MAX_INDEX = 2**62  # larger numbers are refused before any query (no 64-bit overflow in SQL)
Index = Annotated[int, Query(ge=0, le=MAX_INDEX)]
TEXT = "text/plain; charset=utf-8"


def setup(app: FastAPI) -> None:
    """Witness refusals are answered as tlog-witness expects: text bodies, 409 with the latest size."""

    async def _witness_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, WitnessError)
        if isinstance(exc, WitnessConflict):
            return Response(exc.response_body(), status_code=409, media_type="text/x.tlog.size")
        return PlainTextResponse(f"{exc.detail}\n", status_code=exc.status_code)

    app.add_exception_handler(WitnessError, _witness_error)


async def _raw_body(request: Request) -> bytes:
    return await request.body()


def _settings(request: Request) -> Settings:
    """The settings of the app serving the request (two nodes may share a process in tests)."""
    settings: Settings = request.app.state.settings
    return settings


NodeSettings = Annotated[Settings, Depends(_settings)]


@router.get("/api/v1/audit/checkpoint", response_class=PlainTextResponse)
def get_checkpoint(session: DbSession, settings: NodeSettings) -> PlainTextResponse:
    """The latest signed checkpoint (C2SP tlog-checkpoint) with witness cosignatures, as text."""
    return PlainTextResponse(reading.checkpoint_note(session, settings), media_type=TEXT)


@router.get("/api/v1/audit/public-key", response_class=PlainTextResponse)
def get_public_key(settings: NodeSettings) -> PlainTextResponse:
    """The checkpoint verifier key in the signed-note verifier key format."""
    return PlainTextResponse(reading.public_key(settings) + "\n", media_type=TEXT)


@router.get("/api/v1/audit/entries/{index}", response_model=EntryRead)
def get_entry(
    index: Annotated[int, Path(ge=0, le=MAX_INDEX)], session: DbSession, principal: CurrentPrincipal
) -> EntryRead:
    """One entry: its fields and `leaf`, base64 of the exact bytes whose leaf hash is in the tree."""
    return reading.get_entry(session, principal, index)


@router.get("/api/v1/audit/entries", response_model=LeavesRead)
def get_leaves(
    session: DbSession, principal: CurrentPrincipal, start: Index = 0, end: Index | None = None
) -> LeavesRead:
    """Leaves [start, end) as base64 (at most 10,000 a request; end is capped at the tree size)."""
    return reading.leaves_range(session, principal, start, end)


@router.get("/api/v1/audit/proofs/inclusion", response_model=InclusionProofRead)
def get_inclusion_proof(
    index: Index, size: Index, session: DbSession, principal: CurrentPrincipal
) -> InclusionProofRead:
    """RFC 9162 inclusion proof of leaf `index` in the tree of `size` leaves."""
    return reading.inclusion(session, principal, index, size)


@router.get("/api/v1/audit/proofs/consistency", response_model=ConsistencyProofRead)
def get_consistency_proof(
    first: Index, second: Index, session: DbSession, principal: CurrentPrincipal
) -> ConsistencyProofRead:
    """RFC 9162 consistency proof from tree size `first` to `second`."""
    return reading.consistency(session, principal, first, second)


@router.post("/api/v1/audit/witness/add-checkpoint", response_class=PlainTextResponse)
def add_checkpoint(
    session: DbSession, settings: NodeSettings, body: Annotated[bytes, Depends(_raw_body)]
) -> PlainTextResponse:
    """C2SP tlog-witness add-checkpoint: cosign a followed log's checkpoint after checking consistency."""
    return PlainTextResponse(witness.add_checkpoint(session, settings, body), media_type=TEXT)


@router.get("/api/v1/audit/witness/public-key", response_class=PlainTextResponse)
def get_witness_key(settings: NodeSettings) -> PlainTextResponse:
    """This node's cosigner verifier key (give it to the logs it witnesses)."""
    return PlainTextResponse(reading.witness_public_key(settings) + "\n", media_type=TEXT)


@router.get("/api/v1/donors/{public_id}/access-history", response_model=Page[AccessRead])
def get_access_history(
    public_id: str,
    session: DbSession,
    principal: CurrentPrincipal,
    page: Annotated[int, Query(ge=1)] = 1,
    size: Annotated[int, Query(ge=1, le=500)] = 50,
) -> Page[AccessRead]:
    """Accesses to a donor's data and specimens: when, which institution, what, why (never who)."""
    items, total = access_history(session, principal, public_id, PageParams(page, size))
    return Page(items=items, total=total, page=page, size=size)
