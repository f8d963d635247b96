"""REST: POST /api/v1/imports/specimens (bulk import) and GET /api/v1/exports/specimens (export)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import FileResponse, Response, StreamingResponse
from sqlalchemy.orm import Session
from starlette.background import BackgroundTask
from starlette.datastructures import UploadFile

from biobank.identity.deps import CurrentPrincipal
from biobank.identity.principal import Principal
from biobank.kit.deps import DbSession
from biobank.kit.errors import BiobankError, Invalid
from biobank.specimens import export, importer
from biobank.specimens.export import ExportFormat
from biobank.specimens.importer import ImportReport
from biobank.specimens.importer_io import read_table

router = APIRouter(prefix="/api/v1", tags=["imports"])

MAX_UPLOAD_BYTES = 200 * 1024 * 1024
MULTIPART_OVERHEAD = 64 * 1024


class TooLarge(BiobankError):
    """The upload is larger than the node accepts."""

    status_code = 413
    default_name = "TooLarge"


@dataclass(frozen=True)
class Upload:
    """An uploaded file, read into memory after its size was checked."""

    filename: str
    data: bytes
    fields: dict[str, str]


def _too_large(limit: int) -> TooLarge:
    return TooLarge(
        f"the file is larger than {limit // (1024 * 1024)} MB; split it, or use `biobank import specimens` on the node"
    )


async def read_upload(request: Request) -> Upload:
    """The multipart field `file` (and any plain fields), refused with 413 above the size limit."""
    limit: int = getattr(request.app.state, "max_upload_bytes", MAX_UPLOAD_BYTES)
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit + MULTIPART_OVERHEAD:
        raise _too_large(limit)
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise Invalid.field("file", "send the file as multipart/form-data in a field named 'file'")
    form = await request.form(max_files=1, max_fields=20)
    try:
        upload = form.get("file")
        if not isinstance(upload, UploadFile) or not upload.filename:
            raise Invalid.field("file", "send the file as multipart/form-data in a field named 'file'")
        if upload.size is not None and upload.size > limit:
            raise _too_large(limit)
        data = await upload.read()
        fields = {k: v for k, v in form.multi_items() if isinstance(v, str)}
        return Upload(filename=upload.filename, data=data, fields=fields)
    finally:
        await form.close()


UPLOAD_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {"file": {"type": "string", "format": "binary", "description": "CSV or XLSX"}},
                }
            }
        },
    }
}


@router.post(
    "/imports/specimens",
    response_model=ImportReport,
    openapi_extra=UPLOAD_BODY,
    responses={413: {"description": "the file is too large"}, 422: {"description": "errors: the report"}},
)
def import_specimens(
    upload: Annotated[Upload, Depends(read_upload)],
    session: DbSession,
    principal: CurrentPrincipal,
    biobank: Annotated[str, Query(description="code of the biobank receiving the specimens")],
    dry_run: Annotated[bool, Query(description="validate and report only")] = True,
    timezone: Annotated[str | None, Query(description="IANA zone for times without an offset")] = None,
) -> ImportReport:
    """Validate a CSV/XLSX file of specimens and, unless dry_run, import it all or nothing (422 with the report)."""
    table = read_table(upload.data, upload.filename)
    return importer.run_import(session, principal, biobank, table, dry_run=dry_run, timezone=timezone)


def _stream_csv(
    make_session: Callable[[], Session], principal: Principal, biobank: str | None, collection: str | None
) -> Iterator[bytes]:
    """The export's CSV bytes, read in short transactions (a long one would hold SQLite's write lock)."""
    session = make_session()
    try:
        lines = export.rows(session, principal, biobank=biobank, collection=collection, on_chunk=session.rollback)
        yield from export.csv_chunks(lines)
    finally:
        session.rollback()
        session.close()


@router.get("/exports/specimens", response_class=Response)
def export_specimens(
    request: Request,
    session: DbSession,
    principal: CurrentPrincipal,
    biobank: Annotated[str | None, Query(description="biobank code")] = None,
    collection: Annotated[str | None, Query(description="collection public id")] = None,
    fmt: Annotated[ExportFormat, Query(alias="format", description="csv or xlsx")] = ExportFormat.CSV,
) -> Response:
    """The specimens you may see, in the import template's columns (audited with the row count)."""
    n = export.count(session, principal, biobank=biobank, collection=collection)
    export.record_export(session, principal, n, biobank=biobank, collection=collection, fmt=fmt.value)
    name = f"specimens-{collection or biobank or 'all'}.{fmt.value}".replace(":", "_")
    headers = {"Content-Disposition": f'attachment; filename="{name}"', "X-Row-Count": str(n)}
    if fmt is ExportFormat.XLSX:
        path = export.xlsx_tempfile(export.rows(session, principal, biobank=biobank, collection=collection))
        return FileResponse(
            path, media_type=export.MEDIA_TYPES[fmt], headers=headers, background=BackgroundTask(path.unlink)
        )
    return StreamingResponse(
        _stream_csv(request.app.state.session_factory, principal, biobank, collection),
        media_type=export.MEDIA_TYPES[fmt],
        headers=headers,
    )
