"""Clinical pages: the import page (mapping upload, dry-run report, import; FHIR Bundles) and the data
quality page of a collection.

A dry run keeps the two uploaded files for an hour under the node's data directory, named by their
SHA-256, so the "Import" button of the report imports exactly the files that were checked.
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from biobank.clinical import service
from biobank.clinical.routes import Multipart
from biobank.clinical.schemas import ImportReport
from biobank.config import get_settings
from biobank.identity.deps import session_principal
from biobank.identity.principal import Principal
from biobank.institutions import service as institutions
from biobank.kit.deps import DbSession
from biobank.kit.errors import BiobankError, Invalid, NotFound
from biobank.web.forms import FormValues, form_data, savepoint, text
from biobank.web.render import add_template_dir, check_csrf, redirect, render

add_template_dir(Path(__file__).parent / "templates")

router = APIRouter(include_in_schema=False)
WebPrincipal = Annotated[Principal | None, Depends(session_principal)]
Posted = Annotated[FormValues, Depends(form_data)]
STAGE_SECONDS = 3600


def _login(request: Request) -> Response:
    return RedirectResponse(f"/login?next={quote(request.url.path)}", status_code=303)


def _stage_dir() -> Path:
    path = get_settings().data_dir / "clinical-staging"
    path.mkdir(parents=True, exist_ok=True)
    now = time.time()
    for old in path.iterdir():
        if now - old.stat().st_mtime > STAGE_SECONDS:
            old.unlink(missing_ok=True)
    return path


def _stage(principal: Principal, name: str, data: bytes, mapping: bytes) -> str:
    token = hashlib.sha256(principal.public_id.encode() + b"\0" + data + b"\0" + mapping).hexdigest()
    folder = _stage_dir()
    (folder / f"{token}.data").write_bytes(data)
    (folder / f"{token}.mapping").write_bytes(mapping)
    (folder / f"{token}.name").write_text(name[:200])
    return token


def _staged(token: str) -> tuple[str, bytes, bytes]:
    if len(token) != 64 or not all(c in "0123456789abcdef" for c in token):
        raise Invalid.field("staged", "unknown upload; run the dry run again")
    folder = _stage_dir()
    try:
        return (
            (folder / f"{token}.name").read_text(),
            (folder / f"{token}.data").read_bytes(),
            (folder / f"{token}.mapping").read_bytes(),
        )
    except FileNotFoundError:
        raise Invalid.field("staged", "the checked files expired; run the dry run again") from None


def _page(
    request: Request,
    session: Session,
    principal: Principal,
    *,
    report: ImportReport | None = None,
    error: Any = None,
    staged: str | None = None,
    biobank: str = "",
    status_code: int = 200,
) -> Response:
    writable = [b for b in institutions.list_biobanks(session) if principal.can_write(b.id)]
    return render(
        request,
        "clinical/import.html",
        principal,
        status_code=status_code,
        section="import",
        biobanks=writable,
        biobank=biobank,
        report=report,
        error=error,
        staged=staged,
        batches=service.batches(session, principal),
    )


@router.get("/clinical/import", response_class=HTMLResponse)
def import_page(request: Request, session: DbSession, principal: WebPrincipal) -> Response:
    """Upload a clinical table and its mapping (or a FHIR Bundle), check it, import it."""
    if principal is None:
        return _login(request)
    return _page(request, session, principal)


@router.post("/clinical/import", response_class=HTMLResponse)
def import_submit(request: Request, session: DbSession, principal: WebPrincipal, upload: Multipart) -> Response:
    """Dry run (keeps the files for the Import button) or import; FHIR Bundles when `kind` is fhir."""
    if principal is None:
        return _login(request)
    files, fields = upload
    check_csrf(principal, fields.get("csrf_token"))
    biobank = fields.get("biobank", "")
    dry_run = fields.get("action") != "import"
    staged: str | None = None
    try:
        with savepoint(session):
            if fields.get("kind") == "fhir":
                if "bundle" not in files:
                    raise Invalid.field("bundle", "choose a FHIR Bundle (JSON) file")
                report = service.import_fhir(
                    session, principal, biobank=biobank, data=files["bundle"][1], filename=files["bundle"][0],
                    dry_run=dry_run,
                )  # fmt: skip
            else:
                if fields.get("staged"):
                    name, data, mapping = _staged(fields["staged"])
                else:
                    if "file" not in files or not files["file"][1]:
                        raise Invalid.field("file", "choose the data file (CSV or XLSX)")
                    if "mapping" not in files or not files["mapping"][1]:
                        raise Invalid.field("mapping", "choose the mapping file (JSON)")
                    name, data = files["file"]
                    mapping = files["mapping"][1]
                report = service.import_table(
                    session, principal, biobank=biobank, filename=name, data=data, mapping=mapping, dry_run=dry_run
                )
                if dry_run and report.error_count == 0:
                    staged = _stage(principal, name, data, mapping)
    except BiobankError as exc:
        return _page(request, session, principal, error=exc, biobank=biobank, status_code=exc.status_code)
    return _page(request, session, principal, report=report, staged=staged, biobank=biobank)


# -- data quality ------------------------------------------------------------------------------------------


@router.get("/clinical/quality/{collection}", response_class=HTMLResponse)
def quality_page(request: Request, collection: str, session: DbSession, principal: WebPrincipal) -> Response:
    """A collection's data quality: the latest report in detail and the history (members of its biobank)."""
    if principal is None:
        return _login(request)
    reports = service.quality_history(session, principal, collection)
    target = institutions.get_collection(session, collection)
    return render(
        request,
        "clinical/quality.html",
        principal,
        section="collections",
        collection=target,
        reports=reports,
        latest=reports[0] if reports else None,
        can_compute=principal.can_write(target.biobank_id),
    )


@router.post("/clinical/quality/{collection}", response_class=HTMLResponse)
def quality_compute(
    request: Request, collection: str, session: DbSession, principal: WebPrincipal, form: Posted
) -> Response:
    """Compute and store a new report."""
    if principal is None:
        return _login(request)
    check_csrf(principal, text(form, "csrf_token"))
    try:
        with savepoint(session):
            service.compute_quality(session, principal, collection)
    except NotFound:
        raise
    except BiobankError as exc:
        return redirect(f"/clinical/quality/{quote(collection, safe=':')}", flash=str(exc.detail), level="error")
    return redirect(f"/clinical/quality/{quote(collection, safe=':')}", flash="Quality report computed.")
