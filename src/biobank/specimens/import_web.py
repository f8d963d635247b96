"""The /import page: choose a biobank and a file, read the dry-run report, then import it.

The uploaded file is kept between the two steps in the node's data directory under a random
token (with a note of who uploaded it for which biobank), so the confirmation imports exactly the
content that was checked; it is deleted after the import, and stale ones after a day.
"""

from __future__ import annotations

import json
import re
import secrets
import time
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from biobank.config import get_settings
from biobank.identity.deps import session_principal
from biobank.identity.principal import Principal
from biobank.institutions import service as institutions
from biobank.kit.crypto import sha256_hex
from biobank.kit.deps import DbSession
from biobank.kit.errors import BiobankError, Invalid
from biobank.specimens import importer
from biobank.specimens.import_routes import Upload, read_upload
from biobank.specimens.importer import COLUMNS, ImportInvalid, ImportReport
from biobank.specimens.importer_io import read_table
from biobank.web.render import add_template_dir, check_csrf, redirect, render

add_template_dir(Path(__file__).parent / "templates")

router = APIRouter(include_in_schema=False)

WebPrincipal = Annotated[Principal | None, Depends(session_principal)]
TEMPLATE_CSV = Path(__file__).parent / "templates_data" / "specimen-import-template.csv"
TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]{20,64}$")
KEEP_SECONDS = 24 * 3600
SHOWN_ENTRIES = 500


def _login(request: Request) -> RedirectResponse:
    return RedirectResponse(f"/login?next={request.url.path}", status_code=303)


def _uploads_dir() -> Path:
    folder = get_settings().data_dir / "imports"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _sweep(folder: Path) -> None:
    """Delete uploads nobody confirmed within a day."""
    cutoff = time.time() - KEEP_SECONDS
    for path in folder.glob("*.upload"):
        if path.stat().st_mtime < cutoff:
            path.unlink(missing_ok=True)
            path.with_suffix(".json").unlink(missing_ok=True)


def _writable(session: Session, principal: Principal) -> list[Any]:
    return [b for b in institutions.list_biobanks(session) if principal.can_write(b.id)]


def _form(
    request: Request, session: Session, principal: Principal, *, status_code: int = 200, **context: Any
) -> Response:
    return render(
        request,
        "specimens/import.html",
        principal,
        status_code=status_code,
        section="import",
        biobanks=_writable(session, principal),
        **context,
    )


@router.get("/import", response_class=HTMLResponse)
def import_page(request: Request, session: DbSession, principal: WebPrincipal) -> Response:
    """Choose the biobank and the file."""
    if principal is None:
        return _login(request)
    return _form(request, session, principal)


@router.post("/import", response_class=HTMLResponse)
def check_file(
    request: Request,
    session: DbSession,
    principal: WebPrincipal,
    upload: Annotated[Upload, Depends(read_upload)],
) -> Response:
    """Dry run: validate the file and show the report; keep the file for the confirmation."""
    if principal is None:
        return _login(request)
    check_csrf(principal, upload.fields.get("csrf_token"))
    biobank = upload.fields.get("biobank", "")
    timezone = upload.fields.get("timezone", "").strip() or None
    try:
        table = read_table(upload.data, upload.filename)
        report = importer.validate(session, principal, biobank, table, timezone=timezone)
    except BiobankError as exc:
        message = "; ".join(e["msg"] for e in exc.errors) if isinstance(exc, Invalid) else str(exc.detail)
        return _form(request, session, principal, status_code=exc.status_code, error=message, chosen=biobank)
    token = None
    if not report.errors and report.to_create:
        folder = _uploads_dir()
        _sweep(folder)
        token = secrets.token_urlsafe(24)
        (folder / f"{token}.upload").write_bytes(upload.data)
        note = {
            "owner": principal.public_id,
            "biobank": biobank,
            "filename": upload.filename,
            "sha256": sha256_hex(upload.data),
            "timezone": timezone,
        }
        (folder / f"{token}.json").write_text(json.dumps(note))
    return _report(request, principal, report, token=token)


def _report(
    request: Request, principal: Principal, report: ImportReport, *, token: str | None, status_code: int = 200
) -> Response:
    return render(
        request,
        "specimens/import_report.html",
        principal,
        status_code=status_code,
        section="import",
        report=report,
        entries=report.entries[:SHOWN_ENTRIES],
        token=token,
    )


@router.post("/import/confirm", response_class=HTMLResponse)
def confirm_import(
    request: Request,
    session: DbSession,
    principal: WebPrincipal,
    token: Annotated[str, Form()] = "",
    csrf_token: Annotated[str, Form()] = "",
) -> Response:
    """Import the file that was checked; all or nothing."""
    if principal is None:
        return _login(request)
    check_csrf(principal, csrf_token)
    folder = _uploads_dir()
    data_path, note_path = folder / f"{token}.upload", folder / f"{token}.json"
    if not TOKEN_RE.match(token) or not data_path.exists() or not note_path.exists():
        return redirect("/import", flash="That upload is no longer here: choose the file again.", level="error")
    note = json.loads(note_path.read_text())
    if note.get("owner") != principal.public_id:
        return redirect("/import", flash="That upload is no longer here: choose the file again.", level="error")
    data = data_path.read_bytes()
    try:
        if sha256_hex(data) != note["sha256"]:
            return redirect("/import", flash="The stored upload changed: choose the file again.", level="error")
        table = read_table(data, note["filename"])
        report = importer.run_import(
            session, principal, note["biobank"], table, dry_run=False, timezone=note.get("timezone")
        )
    except ImportInvalid as exc:  # the database changed since the check
        return _report(request, principal, exc.report, token=None, status_code=422)
    finally:
        data_path.unlink(missing_ok=True)
        note_path.unlink(missing_ok=True)
    return redirect(
        "/import",
        flash=(
            f"Imported {report.created:,} specimens into {report.biobank} "
            f"({report.unchanged:,} unchanged, {report.donors_created:,} new donors)."
        ),
    )


@router.get("/import/template.csv")
def template_csv() -> FileResponse:
    """The import template: the header and two example rows."""
    return FileResponse(TEMPLATE_CSV, media_type="text/csv", filename="specimen-import-template.csv")


@router.get("/import/help", response_class=HTMLResponse)
def import_help(request: Request, principal: WebPrincipal) -> Response:
    """What each column of the template means (the same text as docs/import-template.md)."""
    if principal is None:
        return _login(request)
    return render(request, "specimens/import_help.html", principal, section="import", columns=COLUMNS)
