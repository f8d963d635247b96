"""Access pages (/access): my requests, requests to my biobanks, the ethics queue, a new request, one request
(lines, eligibility per provider, ethics decision, provider tracks, reminders), competing requests."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, File, Request, UploadFile
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session

from biobank.access import competing as competing_service
from biobank.access import providers, review, service, views
from biobank.access.models import AccessRequest, ItemKind
from biobank.access.schemas import AccessRequestCreate, EthicsDecisionIn, ProviderStateChange
from biobank.access.service import Viewer
from biobank.consent.duo import DUO_IDS, LABELS, PurposeCategory
from biobank.kit.deps import DbSession
from biobank.kit.errors import FieldError, Invalid
from biobank.kit.pagination import PageParams
from biobank.kit.plugins import optional_import
from biobank.kit.vocab import DatasetType, SampleType
from biobank.specimens.models import QuantityUnit
from biobank.web.forms import FormState, Outcome, codes, parse_form, submit, text
from biobank.web.pages import PagePrincipal, PostedForm, checked, install, page
from biobank.web.render import add_template_dir, redirect

router = APIRouter(prefix="/access", include_in_schema=False)
add_template_dir(Path(__file__).parent / "templates")

ITEM_ROWS = 5
FLAGS = (
    ("non_profit", "The requester is a not-for-profit organisation"),
    ("commercial", "The use is commercial"),
    ("collaboration", "In collaboration with the provider biobank"),
    ("genetic", "A genetic study"),
    ("data_linkage", "Links the data with other data sets"),
    ("methods_development", "Develops general research methods"),
    ("publication", "Commits to publishing the results"),
    ("return_data", "Commits to returning derived data"),
)
STATE_LABELS = {
    "contacted": "Contacted",
    "checking_availability": "Checking availability",
    "available": "Available",
    "unavailable": "Unavailable",
    "conditions_indicated": "Access conditions indicated",
    "conditions_met": "Access conditions met",
    "made_available": "Made available",
    "revoked": "Revoked",
}


def setup(app: FastAPI) -> None:
    """Anonymous visitors of these pages go to the login form."""
    install(app)


# -- lists ----------------------------------------------------------------------------------------------


@router.get("", response_class=HTMLResponse)
def index(request: Request, session: DbSession, principal: PagePrincipal) -> Response:
    """My requests, requests to my biobanks, the ethics queue (reviewers) and reminders about my biobanks."""
    viewer = Viewer.of(session, principal)
    params = PageParams(page=1, size=50)
    lists: dict[str, Any] = {}
    for role in ("mine", "provider", "ethics"):
        if role == "provider" and not principal.roles and not principal.is_admin:
            continue
        if role == "ethics" and not viewer.reviewer:
            continue
        rows, total = service.list_requests(session, viewer, params, role=role)
        lists[role] = (views.summaries(session, viewer, rows), total)
    notices = views.notice_reads(session, service.inbox(session, principal, limit=20)) if principal.roles else []
    return page(request, "access/index.html", principal, section="access", lists=lists, notices=notices, viewer=viewer)


@router.get("/competing", response_class=HTMLResponse)
def competing(request: Request, session: DbSession, principal: PagePrincipal, biobank: str = "") -> Response:
    """Open requests competing for the same specimens or collections of my biobanks, side by side."""
    viewer = Viewer.of(session, principal)
    groups = competing_service.competing(session, viewer, biobank=biobank or None)
    return page(request, "access/competing.html", principal, section="access", groups=groups)


# -- new request ------------------------------------------------------------------------------------------


def _new_context(session: Session) -> dict[str, Any]:
    from biobank.institutions import service as institutions

    collections = [
        (c.public_id, f"{c.name} ({c.public_id})")
        for c in sorted(institutions.all_collections(session), key=lambda c: c.name)
    ]
    return {
        "categories": [(c.value, f"{c.value} · {DUO_IDS[c.value]} · {LABELS[c.value]}") for c in PurposeCategory],
        "flags": FLAGS,
        "kinds": [(k.value, k.value.capitalize()) for k in ItemKind],
        "collections": collections,
        "sample_types": [t.value for t in SampleType],
        "data_categories": [d.value for d in DatasetType],
        "units": [u.value for u in QuantityUnit],
        "item_rows": ITEM_ROWS,
    }


def _tri(value: str) -> bool | None:
    return {"yes": True, "no": False}.get(value)


def _request_values(form: dict[str, Any]) -> dict[str, Any]:
    """The posted new-request form as the API's body (items up to the last row filled in)."""
    purpose: dict[str, Any] = {"category": text(form, "category"), "diseases": codes(form, "diseases")}
    for name, _label in FLAGS:
        purpose[name] = _tri(text(form, name))
    if text(form, "duration_months"):
        purpose["duration_months"] = text(form, "duration_months")
    rows = []
    for n in range(ITEM_ROWS):
        row = {
            k: text(form, f"items.{n}.{k}")
            for k in (
                "kind",
                "collection",
                "specimen",
                "sample_type",
                "data_category",
                "quantity",
                "amount",
                "amount_unit",
            )
        }
        rows.append({k: v for k, v in row.items() if v != ""})
    while rows and not rows[-1]:
        rows.pop()
    return {
        "project_title": text(form, "project_title"),
        "project_summary": text(form, "project_summary"),
        "purpose": purpose,
        "ethics_reference": text(form, "ethics_reference"),
        "shipment_country": text(form, "shipment_country"),
        "items": rows,
    }


@router.get("/new", response_class=HTMLResponse)
def new_form(request: Request, session: DbSession, principal: PagePrincipal) -> Response:
    """The form of a new request."""
    return page(request, "access/new.html", principal, section="access", **_new_context(session))


@router.post("/new", response_class=HTMLResponse)
def create(
    request: Request,
    session: DbSession,
    principal: PagePrincipal,
    form: PostedForm,
    ethics_document: Annotated[UploadFile | None, File()] = None,
) -> Response:
    """Create the draft with its ethics document; submit it at once when asked."""
    checked(principal, form)
    content = (
        ethics_document.file.read(service.MAX_DOCUMENT_BYTES + 1)
        if ethics_document and ethics_document.filename
        else b""
    )
    media_type = (ethics_document.content_type or "") if ethics_document else ""
    filename = (ethics_document.filename or "") if ethics_document else ""
    submit_now = text(form, "submit_now") == "true"

    def run() -> AccessRequest:
        data = parse_form(AccessRequestCreate, _request_values(form))
        created = service.create_request(session, principal, data)
        if content:
            service.attach_document(session, principal, created, content, media_type, filename)
        elif submit_now:
            raise Invalid([FieldError(["ethics_document"], "attach the ethics approval document to submit")])
        if submit_now:
            service.submit(session, principal, created)
        return created

    outcome = submit(session, run)
    if not outcome.ok:
        return page(
            request,
            "access/new.html",
            principal,
            section="access",
            outcome=outcome,
            form=outcome.state("request", dict(form)),
            **_new_context(session),
        )
    created: AccessRequest = outcome.value
    word = "submitted" if submit_now else "saved as a draft"
    return redirect(f"/access/{created.public_id}", flash=f"Request {created.public_id} {word}.")


# -- one request ------------------------------------------------------------------------------------------


def _detail(
    request: Request,
    session: Session,
    viewer: Viewer,
    access_request: AccessRequest,
    *,
    form: FormState | None = None,
    outcome: Outcome | None = None,
) -> Response:
    principal = viewer.principal
    read = views.request_read(session, viewer, access_request)
    chart = {t.biobank: t.eligibility.model_dump() for t in read.provider_tracks if t.eligibility is not None}
    context: dict[str, Any] = {
        "r": read,
        "chart": chart,
        "state_labels": STATE_LABELS,
        "state_options": {
            t.biobank: [(s, STATE_LABELS.get(s, s)) for s in t.allowed_states] for t in read.provider_tracks
        },
        "is_requester": access_request.requester_user_id == principal.user_id,
        "duo_labels": LABELS,
        "viewer": viewer,
    }
    module = optional_import("biobank.access.fulfilment_view")
    context["has_fulfilment"] = module is not None
    if module is not None:
        context.update(module.context(session, principal, access_request))
    return page(request, "access/detail.html", principal, section="access", outcome=outcome, form=form, **context)


@router.get("/{public_id}", response_class=HTMLResponse)
def detail(public_id: str, request: Request, session: DbSession, principal: PagePrincipal) -> Response:
    """One request with everything its viewer may see and do."""
    viewer = Viewer.of(session, principal)
    return _detail(request, session, viewer, service.get_request(session, viewer, public_id))


@router.get("/{public_id}/ethics-document")
def document(public_id: str, session: DbSession, principal: PagePrincipal) -> Response:
    """The ethics approval document."""
    viewer = Viewer.of(session, principal)
    access_request = service.get_request(session, viewer, public_id, audit_read=False)
    content, media_type, _name = service.read_document(session, principal, access_request)
    return Response(content, media_type=media_type, headers={"Cache-Control": "no-store"})


def _post(
    public_id: str,
    request: Request,
    session: Session,
    principal: Any,
    form: dict[str, Any],
    name: str,
    call: Any,
    done: str,
) -> Response:
    checked(principal, form)
    viewer = Viewer.of(session, principal)
    access_request = service.get_request(session, viewer, public_id, audit_read=False)
    outcome = submit(session, lambda: call(viewer, access_request))
    if not outcome.ok:
        return _detail(request, session, viewer, access_request, form=outcome.state(name, form), outcome=outcome)
    return redirect(f"/access/{public_id}", flash=done)


@router.post("/{public_id}/document", response_class=HTMLResponse)
def upload(
    public_id: str,
    request: Request,
    session: DbSession,
    principal: PagePrincipal,
    form: PostedForm,
    ethics_document: Annotated[UploadFile | None, File()] = None,
) -> Response:
    """Attach or replace the ethics approval document of a draft."""
    content = ethics_document.file.read(service.MAX_DOCUMENT_BYTES + 1) if ethics_document else b""
    media_type = (ethics_document.content_type or "") if ethics_document else ""
    filename = (ethics_document.filename or "") if ethics_document else ""
    return _post(
        public_id,
        request,
        session,
        principal,
        form,
        "document",
        lambda v, r: service.attach_document(session, v.principal, r, content, media_type, filename),
        "Ethics document attached.",
    )


@router.post("/{public_id}/submit", response_class=HTMLResponse)
def submit_request(
    public_id: str, request: Request, session: DbSession, principal: PagePrincipal, form: PostedForm
) -> Response:
    """Submit a draft to the ethics committee."""
    return _post(
        public_id,
        request,
        session,
        principal,
        form,
        "submit",
        lambda v, r: service.submit(session, v.principal, r),
        "Request submitted; eligibility computed.",
    )


@router.post("/{public_id}/ethics", response_class=HTMLResponse)
def ethics(
    public_id: str, request: Request, session: DbSession, principal: PagePrincipal, form: PostedForm
) -> Response:
    """Record the ethics committee's decision."""
    values = {"approved": text(form, "approved"), "comments": text(form, "comments")}
    return _post(
        public_id,
        request,
        session,
        principal,
        form,
        "ethics",
        lambda v, r: review.decide(session, v, r, parse_form(EthicsDecisionIn, values)),
        "Ethics decision recorded.",
    )


@router.post("/{public_id}/providers/{biobank}/state", response_class=HTMLResponse)
def provider_state(
    public_id: str, biobank: str, request: Request, session: DbSession, principal: PagePrincipal, form: PostedForm
) -> Response:
    """A provider biobank's manager moves its track."""
    values = {"state": text(form, "state"), "note": text(form, "note")}

    def run(viewer: Viewer, access_request: AccessRequest) -> Any:
        track = providers.get_track(session, access_request, biobank)
        return providers.change_state(session, viewer, access_request, track, parse_form(ProviderStateChange, values))

    label = STATE_LABELS.get(values["state"], values["state"])
    return _post(public_id, request, session, principal, form, f"provider-{biobank}", run, f"{biobank}: {label}.")


@router.post("/{public_id}/eligibility", response_class=HTMLResponse)
def eligibility(
    public_id: str, request: Request, session: DbSession, principal: PagePrincipal, form: PostedForm
) -> Response:
    """Run consent eligibility again."""
    return _post(
        public_id,
        request,
        session,
        principal,
        form,
        "eligibility",
        lambda v, r: service.recompute_eligibility(session, v.principal, r),
        "Eligibility recomputed.",
    )
