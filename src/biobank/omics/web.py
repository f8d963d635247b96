"""Omics pages: datasets of the user's biobanks with coverage per collection, a registration form, and a
dataset's page with its files, specimens, QC metrics and the VCF check."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from sqlalchemy.orm import Session

from biobank.clinical.routes import Multipart
from biobank.identity.deps import session_principal
from biobank.identity.principal import Principal
from biobank.institutions import service as institutions
from biobank.kit.deps import DbSession
from biobank.kit.errors import BiobankError, FieldError, Invalid
from biobank.omics import service
from biobank.omics.models import OmicsKind
from biobank.omics.schemas import DatasetCreate
from biobank.web.forms import FormValues, form_data, invalid_from_validation, savepoint, text
from biobank.web.render import add_template_dir, check_csrf, redirect, render

add_template_dir(Path(__file__).parent / "templates")

router = APIRouter(include_in_schema=False)
WebPrincipal = Annotated[Principal | None, Depends(session_principal)]
Posted = Annotated[FormValues, Depends(form_data)]


def _login(request: Request) -> Response:
    return RedirectResponse(f"/login?next={quote(request.url.path)}", status_code=303)


def _list_page(
    request: Request, session: Session, principal: Principal, *, errors: list[Any] | None = None,
    values: dict[str, Any] | None = None, status_code: int = 200,
) -> Response:  # fmt: skip
    return render(
        request,
        "omics/list.html",
        principal,
        status_code=status_code,
        section="omics",
        datasets=service.list_visible(session, principal),
        coverage=service.coverage(session, principal),
        biobanks=[b for b in institutions.list_biobanks(session) if principal.can_write(b.id)],
        kinds=[k.value for k in OmicsKind],
        errors=errors or [],
        values=values or {},
    )


@router.get("/omics", response_class=HTMLResponse)
def omics_page(request: Request, session: DbSession, principal: WebPrincipal) -> Response:
    """Datasets and coverage of the user's biobanks."""
    if principal is None:
        return _login(request)
    return _list_page(request, session, principal)


def _files(textarea: str) -> tuple[list[dict[str, Any]], list[FieldError]]:
    """One file per line: URI, checksum, size in bytes (optional), format (optional); spaces or commas."""
    out, errors = [], []
    for n, line in enumerate(raw.strip() for raw in textarea.splitlines()):
        if not line:
            continue
        parts = [p for p in line.replace(",", " ").split() if p]
        if len(parts) < 2:
            errors.append(FieldError(["files", n], "give at least the URI and the checksum", value=line[:100]))
            continue
        item: dict[str, Any] = {"uri": parts[0], "checksum": parts[1]}
        if len(parts) > 2:
            item["size_bytes"] = parts[2]
        if len(parts) > 3:
            item["format"] = parts[3]
        out.append(item)
    return out, errors


@router.post("/omics", response_class=HTMLResponse)
def register(request: Request, session: DbSession, principal: WebPrincipal, form: Posted) -> Response:
    """Register a dataset from the form."""
    if principal is None:
        return _login(request)
    check_csrf(principal, text(form, "csrf_token"))
    files, errors = _files(text(form, "files"))
    specimens = []
    for line in text(form, "specimens").splitlines():
        ref, _, sample = line.strip().partition(",")
        if ref.strip():
            specimens.append({"specimen": ref.strip(), "sample_name": sample.strip()})
    qc: dict[str, Any] = {}
    if text(form, "qc_metrics"):
        try:
            qc = json.loads(text(form, "qc_metrics"))
        except ValueError:
            errors.append(FieldError(["qc_metrics"], 'give QC metrics as a JSON object, e.g. {"mean_coverage": 30}'))
    values = {
        "biobank": text(form, "biobank"),
        "kind": text(form, "kind"),
        "title": text(form, "title"),
        "platform": text(form, "platform"),
        "reference_genome": text(form, "reference_genome"),
        "description": text(form, "description"),
        "qc_metrics": qc,
        "files": files,
        "specimens": specimens,
    }
    try:
        if errors:
            raise Invalid(errors)
        with savepoint(session):
            data = DatasetCreate.model_validate(values)
            dataset = service.create(session, principal, data)
    except ValidationError as exc:
        return _list_page(
            request, session, principal, errors=invalid_from_validation(exc).errors, values=dict(form), status_code=422
        )
    except BiobankError as exc:
        detail = exc.errors if isinstance(exc, Invalid) else [FieldError([], str(exc.detail))]
        return _list_page(request, session, principal, errors=detail, values=dict(form), status_code=exc.status_code)
    return redirect(f"/omics/{quote(dataset.public_id, safe=':')}", flash="Dataset registered.")


def _detail(
    request: Request, session: Session, principal: Principal, public_id: str, *, report: Any = None,
    errors: list[Any] | None = None, status_code: int = 200,
) -> Response:  # fmt: skip
    dataset = service.get(session, principal, public_id)
    return render(
        request,
        "omics/detail.html",
        principal,
        status_code=status_code,
        section="omics",
        d=service.to_read(session, dataset),
        can_edit=principal.can_write(dataset.biobank_id),
        report=report,
        errors=errors or [],
    )


@router.get("/omics/{public_id}", response_class=HTMLResponse)
def dataset_page(request: Request, public_id: str, session: DbSession, principal: WebPrincipal) -> Response:
    """A dataset: platform, QC, files, specimens; the VCF check form."""
    if principal is None:
        return _login(request)
    return _detail(request, session, principal, public_id)


@router.post("/omics/{public_id}/vcf", response_class=HTMLResponse)
def vcf_check(
    request: Request, public_id: str, session: DbSession, principal: WebPrincipal, upload: Multipart
) -> Response:
    """Check a VCF header and map its samples to specimens."""
    if principal is None:
        return _login(request)
    files, fields = upload
    check_csrf(principal, fields.get("csrf_token"))
    dataset = service.get(session, principal, public_id)
    try:
        if "file" not in files or not files["file"][1]:
            raise Invalid.field("file", "choose a VCF file (or its header)")
        sample_map = {}
        for line in fields.get("sample_map", "").splitlines():
            name, _, ref = line.partition("=")
            if name.strip() and ref.strip():
                sample_map[name.strip()] = ref.strip()
        with savepoint(session):
            report = service.attach_vcf(
                session, principal, dataset, content=files["file"][1], filename=files["file"][0],
                uri=fields.get("uri") or None, sample_map=sample_map,
            )  # fmt: skip
    except BiobankError as exc:
        detail = exc.errors if isinstance(exc, Invalid) else [FieldError([], str(exc.detail))]
        return _detail(request, session, principal, public_id, errors=detail, status_code=exc.status_code)
    return _detail(request, session, principal, public_id, report=report)
