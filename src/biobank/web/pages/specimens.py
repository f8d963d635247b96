"""Specimen pages: the filtered list, registration, one specimen with its actions, and label sheets.

Every form on the detail page posts to its own URL, calls one service function, and either
redirects back with a success flash or re-renders the page with that form's errors (nothing kept).
Times are typed in datetime-local inputs and read in the node's time zone (named on the forms).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session

from biobank.identity.principal import Principal
from biobank.institutions import service as institutions
from biobank.kit.deps import DbSession
from biobank.kit.errors import Invalid
from biobank.kit.pagination import PageParams
from biobank.kit.vocab import SampleType
from biobank.specimens import custody, labels_service, lineage, service, sprec
from biobank.specimens.models import TRANSITIONS, Lineage, QuantityUnit, Specimen, Status
from biobank.specimens.schemas import (
    AliquotRequest,
    CheckRequest,
    EventRead,
    MoveRequest,
    QCCreate,
    SpecimenCreate,
    SpecimenRead,
    StatusChange,
)
from biobank.storage import service as storage
from biobank.web.forms import (
    FormState,
    Outcome,
    many,
    node_timezone,
    page_params,
    parse_form,
    present,
    submit,
    times,
)
from biobank.web.pages import PagePrincipal, Pager, PostedForm, checked, install, page
from biobank.web.render import redirect

router = APIRouter(include_in_schema=False)

TIME_FIELDS = ("collected_at", "received_at", "processed_at", "frozen_at")
NEW_STATUSES = (Status.COLLECTED, Status.RECEIVED, Status.PROCESSED, Status.STORED)
COMMON_CONTAINERS = {
    "SST": "Serum separator tube",
    "PED": "EDTA tube",
    "SCI": "Citrate tube",
    "PLI": "Lithium heparin tube",
    "ACD": "ACD tube",
    "PAX": "PAXgene blood RNA tube",
    "SPT": "Sterile plastic tube",
    "XXX": "Unknown",
}
SPECIMEN_COLUMNS = [
    {"label": "", "sort": None, "class": "select-col"},
    {"label": "Specimen", "sort": "public_id"},
    {"label": "Barcode", "sort": "barcode"},
    {"label": "Material", "sort": "sample_type"},
    {"label": "Status", "sort": "status"},
    {"label": "Quantity", "sort": None},
    {"label": "Location", "sort": None},
    {"label": "Collected", "sort": "collected_at"},
]
CHANGE_LABELS = {
    "status": "status",
    "position": "position",
    "quantity": "quantity",
    "quantity_unit": "unit",
    "checked_out_at": "checked out",
    "freeze_thaw_count": "freeze–thaw cycles",
    "collection_id": "collection",
    "biobank_id": "biobank",
    "children": "children",
    "parent": "parent",
    "pool": "pooled into",
    "sources": "sources",
    "test": "QC test",
    "passed": "passed",
}
POSITION_FIELDS = ("box_id", "row", "col")
MAX_COLLECTION_OPTIONS = 500


def setup(app: FastAPI) -> None:
    """Anonymous visitors of these pages go to the login form."""
    install(app)


# -- list -------------------------------------------------------------------------------------------------


def _collections(session: Session, principal: Principal) -> list[Any]:
    """Collections of the user's biobanks, by name (catalogue metadata; one query)."""
    rows, _ = institutions.list_collections(session, PageParams(1, MAX_COLLECTION_OPTIONS, "name"))
    return [c for c in rows if principal.can_read(c.biobank_id)]


def _options(collections: list[Any]) -> list[tuple[str, str]]:
    return [(c.public_id, c.name) for c in collections]


@router.get("/specimens", response_class=HTMLResponse)
def specimen_list(
    request: Request,
    session: DbSession,
    principal: PagePrincipal,
    collection: str = "",
    material: str = "",
    status: str = "",
    barcode: str = "",
    donor: str = "",
) -> Response:
    """Specimens of the user's biobanks: filter by collection, material, status and barcode prefix."""
    params = page_params(request)
    collections = _collections(session, principal)
    rows, total = service.list_page(
        session,
        principal,
        params,
        collection=collection or None,
        sample_type=material or None,
        status=status or None,
        donor=donor or None,
        barcode_prefix=barcode.strip() or None,
    )
    return page(
        request,
        "specimens/list.html",
        principal,
        section="specimens",
        specimens=service.to_read(session, rows),
        pager=Pager(params.page, params.size, total, params.sort or "-id"),
        columns=SPECIMEN_COLUMNS,
        filters={"collection": collection, "material": material, "status": status, "barcode": barcode, "donor": donor},
        collections=_options(collections),
        materials=[t.value for t in SampleType],
        statuses=[s.value for s in Status],
        can_register=any(principal.can_write(c.biobank_id) for c in collections),
    )


# -- registration -----------------------------------------------------------------------------------------


def _specimen_values(form: Mapping[str, Any]) -> dict[str, Any]:
    values = present(
        form, ("barcode", "collection", "donor", "sample_type", "container", "diagnosis", "quantity", "status", "notes")
    )
    if "quantity" in values:
        values.update(present(form, ("quantity_unit",)))
    if "container" in values:
        values["container"] = values["container"].upper()
    values.update(times(form, TIME_FIELDS))
    placement = present(form, ("box", "position"))
    if placement:
        values["placement"] = placement
    return values


def _new_form(
    request: Request, session: Session, principal: Principal, *, form: FormState | None, outcome: Outcome | None
) -> Response:
    return page(
        request,
        "specimens/new.html",
        principal,
        section="specimens",
        outcome=outcome,
        form=form,
        collections=_options([c for c in _collections(session, principal) if principal.can_write(c.biobank_id)]),
        materials=[t.value for t in SampleType],
        units=[u.value for u in QuantityUnit],
        statuses=[s.value for s in NEW_STATUSES],
        containers=COMMON_CONTAINERS,
        donor=request.query_params.get("donor", ""),
    )


@router.get("/specimens/new", response_class=HTMLResponse)
def new_specimen_form(request: Request, session: DbSession, principal: PagePrincipal) -> Response:
    """The registration form."""
    return _new_form(request, session, principal, form=None, outcome=None)


@router.post("/specimens/new", response_class=HTMLResponse)
def create_specimen(request: Request, session: DbSession, principal: PagePrincipal, form: PostedForm) -> Response:
    """Register a primary specimen; refused forms come back filled in, with the errors."""
    checked(principal, form)
    outcome = submit(
        session, lambda: service.register(session, principal, parse_form(SpecimenCreate, _specimen_values(form)))
    )
    if not outcome.ok:
        return _new_form(request, session, principal, form=outcome.state("specimen", form), outcome=outcome)
    specimen: Specimen = outcome.value
    return redirect(f"/specimens/{specimen.public_id}", flash=f"Specimen {specimen.public_id} registered.")


# -- labels -----------------------------------------------------------------------------------------------


@router.get("/specimens/labels.{fmt}")
def label_sheet(request: Request, fmt: Literal["pdf", "svg"], session: DbSession, principal: PagePrincipal) -> Response:
    """A printable A4 sheet of labels for ?ids=a&ids=b (or ids=a,b); the download is audited."""
    refs = [ref for value in request.query_params.getlist("ids") for ref in value.split(",")]
    sheet = labels_service.label_sheet(session, principal, refs, fmt, tz=node_timezone())
    stamp = datetime.now(node_timezone()).strftime("%Y%m%d-%H%M")
    media = "application/pdf" if fmt == "pdf" else "image/svg+xml"
    return Response(
        sheet,
        media_type=media,
        headers={"Content-Disposition": f'attachment; filename="labels-{stamp}.{fmt}"', "Cache-Control": "no-store"},
    )


# -- one specimen -----------------------------------------------------------------------------------------


def _sprec_elements(code: str | None) -> list[sprec.SprecElement]:
    if not code:
        return []
    try:
        return list(sprec.parse(code).elements)
    except ValueError:
        return []


def _position(boxes: Mapping[int, Any], state: Mapping[str, Any]) -> str | None:
    box = boxes.get(state.get("box_id") or 0)
    if box is None:
        return None
    try:
        label = storage.position_label(box, state.get("row") or 0, state.get("col") or 0)
    except Invalid:
        label = "?"
    return f"{box.path} {label}"


def _show(key: str, value: Any, refs: Mapping[str, Mapping[Any, str]]) -> str:
    if value is None or value == "":
        return "—"
    if key in refs:
        return refs[key].get(value, "?")
    if key == "checked_out_at":
        return datetime.fromisoformat(value).astimezone(node_timezone()).strftime("%Y-%m-%d %H:%M")
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def _timeline(session: Session, events: list[EventRead]) -> list[dict[str, Any]]:
    """Events with readable changes: internal ids become box paths, position labels, collection ids."""
    box_ids: set[int] = set()
    collection_ids: set[int] = set()
    biobank_ids: set[int] = set()
    for event in events:
        for side in (event.before, event.after):
            if side.get("box_id"):
                box_ids.add(side["box_id"])
            if side.get("collection_id"):
                collection_ids.add(side["collection_id"])
            if side.get("biobank_id"):
                biobank_ids.add(side["biobank_id"])
    boxes = storage.boxes_by_ids(session, sorted(box_ids))
    refs: dict[str, Mapping[Any, str]] = {
        "collection_id": {
            i: c.public_id for i, c in institutions.collections_by_ids(session, sorted(collection_ids)).items()
        },
        "biobank_id": institutions.biobank_codes(session, sorted(biobank_ids)),
    }
    state: dict[str, Any] = {}
    out = []
    for event in events:
        before_state = dict(state)
        state.update({k: v for k, v in event.after.items() if k in POSITION_FIELDS})
        changes = []
        if any(k in event.before or k in event.after for k in POSITION_FIELDS):
            was = _position(boxes, before_state) if event.kind != "created" else None
            now = _position(boxes, state)
            if was != now:
                changes.append(("position", was or "—", now or "—"))
        for key in sorted(set(event.before) | set(event.after)):
            if key in POSITION_FIELDS:
                continue
            was_value, now_value = event.before.get(key), event.after.get(key)
            if event.kind == "created" and now_value in (None, "", 0) and key != "status":
                continue
            changes.append(
                (
                    CHANGE_LABELS.get(key, key.replace("_", " ")),
                    _show(key, was_value, refs),
                    _show(key, now_value, refs),
                )
            )
        out.append({"event": event, "changes": changes})
    return out


def _detail(
    request: Request,
    session: Session,
    principal: Principal,
    specimen: Specimen,
    *,
    form: FormState | None = None,
    outcome: Outcome | None = None,
) -> Response:
    view: SpecimenRead = service.to_read(session, [specimen])[0]
    children, sources = service.family(session, specimen)
    current = Status(specimen.status)
    return page(
        request,
        "specimens/detail.html",
        principal,
        section="specimens",
        outcome=outcome,
        form=form,
        s=view,
        collection=institutions.get_collection(session, view.collection),
        sprec_elements=_sprec_elements(view.sprec_code),
        children=children,
        sources=sources,
        qc=service.qc_results(session, specimen),
        timeline=_timeline(session, service.history(session, principal, specimen)),
        next_statuses=[s.value for s in Status if s in TRANSITIONS[current]],
        can_write=principal.can_write(specimen.biobank_id),
        can_aliquot=current in lineage.DRAWABLE and specimen.checked_out_at is None and (specimen.quantity or 0) > 0,
        materials=[t.value for t in SampleType],
        units=[u.value for u in QuantityUnit],
        now_local=datetime.now(node_timezone()).strftime("%Y-%m-%dT%H:%M"),
        me=principal.public_id,
    )


@router.get("/specimens/{ref}", response_class=HTMLResponse)
def specimen_detail(request: Request, ref: str, session: DbSession, principal: PagePrincipal) -> Response:
    """One specimen (by public id or barcode): facts, SPREC, location, lineage, QC, actions, history."""
    return _detail(request, session, principal, service.get(session, principal, ref))


def _act(
    request: Request,
    session: Session,
    principal: Principal,
    ref: str,
    form: Mapping[str, Any],
    name: str,
    action: Callable[[Specimen], Any],
    success: str | Callable[[Any], str],
) -> Response:
    """Run one form of the detail page: redirect back with a flash, or re-render with its errors."""
    checked(principal, form)
    specimen = service.get(session, principal, ref, audit_read=False)
    outcome = submit(session, lambda: action(specimen))
    if not outcome.ok:
        return _detail(request, session, principal, specimen, form=outcome.state(name, form), outcome=outcome)
    message = success if isinstance(success, str) else success(outcome.value)
    return redirect(f"/specimens/{specimen.public_id}", flash=message)


@router.post("/specimens/{ref}/qc", response_class=HTMLResponse)
def add_qc(request: Request, ref: str, session: DbSession, principal: PagePrincipal, form: PostedForm) -> Response:
    """Record a QC result."""
    values = present(form, ("test", "method", "value", "value_text", "unit", "passed", "notes")) | times(
        form, ("tested_at",)
    )
    return _act(
        request,
        session,
        principal,
        ref,
        form,
        "qc",
        lambda s: service.add_qc(session, principal, s, parse_form(QCCreate, values)),
        "QC result recorded.",
    )


@router.post("/specimens/{ref}/status", response_class=HTMLResponse)
def change_status(
    request: Request, ref: str, session: DbSession, principal: PagePrincipal, form: PostedForm
) -> Response:
    """Move the specimen along its lifecycle."""
    values = present(form, ("status", "reason"))
    return _act(
        request,
        session,
        principal,
        ref,
        form,
        "status",
        lambda s: service.change_status(session, principal, s, parse_form(StatusChange, values)),
        f"Status changed to {values.get('status', '')}.",
    )


@router.post("/specimens/{ref}/move", response_class=HTMLResponse)
def move(request: Request, ref: str, session: DbSession, principal: PagePrincipal, form: PostedForm) -> Response:
    """Move to another position (or, with no box, out of storage)."""
    values = present(form, ("box", "position", "reason"))
    return _act(
        request,
        session,
        principal,
        ref,
        form,
        "move",
        lambda s: custody.move(session, principal, s, parse_form(MoveRequest, values)),
        "Specimen moved.",
    )


@router.post("/specimens/{ref}/check-out", response_class=HTMLResponse)
def check_out(request: Request, ref: str, session: DbSession, principal: PagePrincipal, form: PostedForm) -> Response:
    """Take the specimen out of its box for a while (its position stays reserved)."""
    values = present(form, ("reason",))
    return _act(
        request,
        session,
        principal,
        ref,
        form,
        "checkout",
        lambda s: custody.check_out(session, principal, s, parse_form(CheckRequest, values)),
        "Specimen checked out.",
    )


@router.post("/specimens/{ref}/check-in", response_class=HTMLResponse)
def check_in(request: Request, ref: str, session: DbSession, principal: PagePrincipal, form: PostedForm) -> Response:
    """Put a checked-out specimen back in its position."""
    values = present(form, ("reason", "thawed"))
    return _act(
        request,
        session,
        principal,
        ref,
        form,
        "checkin",
        lambda s: custody.check_in(session, principal, s, parse_form(CheckRequest, values)),
        "Specimen checked in.",
    )


def _aliquot_values(form: Mapping[str, Any]) -> dict[str, Any]:
    values = present(form, ("count", "quantity", "quantity_unit", "lineage", "box", "start", "reason"))
    if values.get("lineage") == Lineage.DERIVATIVE.value:
        values.update(present(form, ("sample_type",)))
    barcodes = [b for b in many(form, "barcodes") for b in b.replace(",", " ").split()]
    if barcodes:
        values["barcodes"] = barcodes
    return values


def _made(children: list[Specimen]) -> str:
    kind = str(children[0].lineage) if children else "aliquot"
    ids = ", ".join(c.public_id for c in children[:3]) + (" …" if len(children) > 3 else "")
    return f"{len(children)} {kind}{'' if len(children) == 1 else 's'} made: {ids}."


@router.post("/specimens/{ref}/aliquots", response_class=HTMLResponse)
def make_aliquots(
    request: Request, ref: str, session: DbSession, principal: PagePrincipal, form: PostedForm
) -> Response:
    """Split into N aliquots (or derivatives) of a volume each, placed in a box from a start position."""
    values = _aliquot_values(form)
    return _act(
        request,
        session,
        principal,
        ref,
        form,
        "aliquot",
        lambda s: lineage.aliquot(session, principal, s, parse_form(AliquotRequest, values)),
        _made,
    )
