"""Storage pages: the unit tree, a unit with its contents, a box as a grid, and the free-slot search."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError
from sqlalchemy.orm import Session

from biobank.identity.deps import session_principal
from biobank.identity.principal import Principal
from biobank.institutions import service as institutions
from biobank.kit.deps import DbSession
from biobank.kit.errors import BiobankError, Invalid, NotFound
from biobank.kit.pagination import PageParams
from biobank.kit.vocab import StorageTemperature
from biobank.storage import service
from biobank.storage.models import ALLOWED_CHILDREN, LabelScheme, UnitKind
from biobank.storage.positions import MAX_FREE_SLOTS
from biobank.storage.schemas import UnitCreate, UnitDetail, UnitUpdate
from biobank.web.render import add_template_dir, check_csrf, redirect, render

add_template_dir(Path(__file__).parent / "templates")

router = APIRouter(include_in_schema=False)

PagePrincipal = Annotated[Principal | None, Depends(session_principal)]
FormText = Annotated[str, Form()]

# A form's field errors: field name → message; "_form" for what belongs to no single field.
FieldErrors = dict[str, str]


def _login(request: Request) -> RedirectResponse:
    return RedirectResponse(f"/login?next={quote(request.url.path)}", status_code=303)


def _field_errors(exc: ValidationError | BiobankError) -> FieldErrors:
    """Errors keyed by the form field they belong to."""
    if isinstance(exc, ValidationError):
        return {str(e["loc"][0]) if e["loc"] else "_form": e["msg"].removeprefix("Value error, ") for e in exc.errors()}
    if isinstance(exc, Invalid):
        return {str(e["loc"][0]) if e["loc"] else "_form": e["msg"] for e in exc.errors}
    if exc.name == "UnitNameTaken":
        return {"name": str(exc.detail)}
    if exc.name == "StorageUnitNotFound":
        return {"parent": str(exc.detail)}
    return {"_form": str(exc.detail)}


def _form_context(session: Session, principal: Principal) -> dict[str, Any]:
    """Choices of the add-unit form."""
    writable = [b for b in institutions.list_biobanks(session) if principal.can_write(b.id)]
    return {
        "writable_biobanks": writable,
        "kinds": list(UnitKind),
        "temperatures": list(StorageTemperature),
        "schemes": list(LabelScheme),
    }


def _parent_choices(tree: list[service.TreeNode], writable_codes: set[str]) -> list[dict[str, str]]:
    out: list[dict[str, str]] = []

    def walk(nodes: list[service.TreeNode]) -> None:
        for node in nodes:
            if node.unit.biobank in writable_codes:
                out.append({"public_id": node.unit.public_id, "path": node.unit.path, "biobank": node.unit.biobank})
            walk(node.children)

    walk(tree)
    return out


def _index(
    request: Request,
    session: Session,
    principal: Principal,
    *,
    status_code: int = 200,
    errors: FieldErrors | None = None,
    values: dict[str, str] | None = None,
) -> Response:
    tree = service.storage_tree(session, principal)
    context = _form_context(session, principal)
    parents = _parent_choices(tree, {b.code for b in context["writable_biobanks"]})
    return render(
        request,
        "storage/index.html",
        principal,
        section="storage",
        status_code=status_code,
        tree=tree,
        parents=parents,
        errors=errors or {},
        values=values or {},
        **context,
    )


def _unit_page(
    request: Request,
    session: Session,
    principal: Principal,
    detail: UnitDetail,
    *,
    status_code: int = 200,
    errors: FieldErrors | None = None,
    values: dict[str, str] | None = None,
    edit_errors: FieldErrors | None = None,
) -> Response:
    codes = {b.code for b in institutions.list_biobanks(session) if principal.can_write(b.id)}
    return render(
        request,
        "storage/unit.html",
        principal,
        section="storage",
        status_code=status_code,
        unit=detail,
        child_kinds=sorted(ALLOWED_CHILDREN[detail.kind], key=list(UnitKind).index),
        can_write=detail.biobank in codes,
        errors=errors or {},
        values=values or {},
        edit_errors=edit_errors or {},
        **_form_context(session, principal),
    )


@router.get("/storage")
def storage_index(request: Request, session: DbSession, principal: PagePrincipal) -> Response:
    """The storage tree with occupancy, and a form to add a unit."""
    if principal is None:
        return _login(request)
    return _index(request, session, principal)


@router.post("/storage/units")
def create_unit(
    request: Request,
    session: DbSession,
    principal: PagePrincipal,
    csrf_token: FormText = "",
    biobank: FormText = "",
    parent: FormText = "",
    kind: FormText = "",
    name: FormText = "",
    temperature: FormText = "",
    rows: FormText = "",
    cols: FormText = "",
    label_scheme: FormText = "",
) -> Response:
    """Add a unit from the form; errors re-render the form under its fields."""
    if principal is None:
        return _login(request)
    check_csrf(principal, csrf_token)
    values = {
        "biobank": biobank,
        "parent": parent,
        "kind": kind,
        "name": name,
        "temperature": temperature,
        "rows": rows,
        "cols": cols,
        "label_scheme": label_scheme,
    }
    try:
        data = UnitCreate.model_validate({k: v for k, v in values.items() if v.strip()})
        unit = service.create_unit(session, principal, data)
    except (ValidationError, BiobankError) as exc:
        if isinstance(exc, BiobankError) and exc.status_code == 403:
            raise
        errors = _field_errors(exc)
        if parent:
            try:
                detail = service.unit_detail(session, principal, parent)
            except NotFound:
                pass
            else:
                return _unit_page(request, session, principal, detail, status_code=422, errors=errors, values=values)
        return _index(request, session, principal, status_code=422, errors=errors, values=values)
    target = (
        f"/storage/boxes/{quote(unit.public_id)}"
        if unit.kind == UnitKind.BOX
        else f"/storage/units/{quote(unit.public_id)}"
    )
    return redirect(target, flash=f"Added {unit.kind} {unit.path}.")


@router.get("/storage/units/{public_id}")
def unit_page(public_id: str, request: Request, session: DbSession, principal: PagePrincipal) -> Response:
    """A unit with what it holds, and forms to add to it, rename or move it, or delete it."""
    if principal is None:
        return _login(request)
    return _unit_page(request, session, principal, service.unit_detail(session, principal, public_id))


@router.get("/storage/units/{public_id}/boxes")
def unit_boxes(public_id: str, request: Request, session: DbSession, principal: PagePrincipal) -> Response:
    """The boxes directly in a unit (an htmx fragment of the tree)."""
    if principal is None:
        return _login(request)
    rows, _ = service.list_units(session, principal, PageParams(1, 500, "path"), parent=public_id, kind=UnitKind.BOX)
    return render(request, "storage/_boxes.html", principal, boxes=service.unit_reads(session, rows))


@router.post("/storage/units/{public_id}/edit")
def edit_unit(
    public_id: str,
    request: Request,
    session: DbSession,
    principal: PagePrincipal,
    csrf_token: FormText = "",
    name: FormText = "",
    parent: FormText = "",
) -> Response:
    """Rename a unit or move it to another parent."""
    if principal is None:
        return _login(request)
    check_csrf(principal, csrf_token)
    unit = service.get_unit(session, principal, public_id)
    fields: dict[str, str] = {}
    if name.strip() and name.strip() != unit.name:
        fields["name"] = name
    if parent.strip():
        fields["parent"] = parent
    try:
        unit = service.update_unit(session, principal, unit, UnitUpdate.model_validate(fields))
    except (ValidationError, BiobankError) as exc:
        if isinstance(exc, BiobankError) and exc.status_code == 403:
            raise
        detail = service.unit_detail(session, principal, public_id)
        return _unit_page(
            request,
            session,
            principal,
            detail,
            status_code=422,
            edit_errors=_field_errors(exc),
            values={"edit_name": name, "edit_parent": parent},
        )
    return redirect(f"/storage/units/{quote(unit.public_id)}", flash=f"Saved: {unit.path}.")


@router.post("/storage/units/{public_id}/delete")
def delete_unit(
    public_id: str, request: Request, session: DbSession, principal: PagePrincipal, csrf_token: FormText = ""
) -> Response:
    """Delete an empty unit."""
    if principal is None:
        return _login(request)
    check_csrf(principal, csrf_token)
    unit = service.get_unit(session, principal, public_id)
    path = unit.path
    try:
        service.delete_unit(session, principal, unit)
    except BiobankError as exc:
        if exc.status_code != 409:
            raise
        return redirect(f"/storage/units/{quote(public_id)}", flash=str(exc.detail), level="error")
    return redirect("/storage", flash=f"Deleted {path}.")


@router.get("/storage/boxes/{public_id}")
def box_page(public_id: str, request: Request, session: DbSession, principal: PagePrincipal) -> Response:
    """A box as a grid: each position with its specimen, or free."""
    if principal is None:
        return _login(request)
    view = service.box_view(session, principal, public_id)
    return render(request, "storage/box.html", principal, section="storage", view=view)


@router.get("/storage/free-slots")
def free_slots_page(
    request: Request,
    session: DbSession,
    principal: PagePrincipal,
    biobank: str = "",
    temperature: str = "",
    count: str = "",
    within: str = "",
) -> Response:
    """Search free positions by biobank, temperature and place."""
    if principal is None:
        return _login(request)
    values = {"biobank": biobank, "temperature": temperature, "count": count, "within": within}
    searched = any(v.strip() for v in values.values())
    slots = []
    errors: FieldErrors = {}
    if searched:
        try:
            number = int(count) if count.strip() else 1
        except ValueError:
            errors["count"] = "give a whole number"
        else:
            try:
                slots = service.free_slots(
                    session,
                    principal,
                    biobank_code=biobank or None,
                    temperature=temperature or None,
                    count=number,
                    within=within or None,
                )
            except BiobankError as exc:
                errors = _field_errors(exc)
                if exc.name == "BiobankNotFound":
                    errors = {"biobank": str(exc.detail)}
                elif exc.name == "StorageUnitNotFound":
                    errors = {"within": str(exc.detail)}
    readable = [b for b in institutions.list_biobanks(session) if principal.can_read(b.id)]
    return render(
        request,
        "storage/free_slots.html",
        principal,
        section="storage",
        status_code=422 if errors else 200,
        values=values,
        errors=errors,
        slots=slots,
        searched=searched and not errors,
        biobanks=readable,
        temperatures=list(StorageTemperature),
        max_count=MAX_FREE_SLOTS,
        capacity=service.capacity_report(session, principal),
    )
