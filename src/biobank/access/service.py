"""Access requests: create a draft, attach the ethics approval, submit, read, list, recompute eligibility.

The ethics review lives in review.py, provider tracks in providers.py, reminders in reminders.py and
competing requests in competing.py. Every write and every read is audited in the caller's transaction.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from biobank import audit
from biobank.access import chain, eligibility
from biobank.access import repository as repo
from biobank.access.models import (
    AccessEthicsDocument,
    AccessRequest,
    AccessRequestItem,
    AccessRequestProvider,
    ItemKind,
    ProviderState,
    RequestStatus,
)
from biobank.access.schemas import AccessRequestCreate, ItemIn
from biobank.config import get_settings
from biobank.identity.models import UserKind
from biobank.identity.principal import Principal
from biobank.kit.db import utcnow
from biobank.kit.errors import Conflict, FieldError, Invalid, NotFound, NotPermitted
from biobank.kit.ids import new_public_ids
from biobank.kit.pagination import PageParams, paginate
from biobank.ledger import refs

MAX_DOCUMENT_BYTES = 20 * 1024 * 1024
DOCUMENT_TYPES = {"application/pdf": b"%PDF", "image/png": b"\x89PNG\r\n\x1a\n", "image/jpeg": b"\xff\xd8\xff"}
ROLES = ("mine", "provider", "ethics")


class RequestNotFound(NotFound):
    default_name = "AccessRequestNotFound"


def is_ethics_reviewer(session: Session, principal: Principal) -> bool:
    """Whether the caller sits on the ethics committee (the users.is_ethics_reviewer flag)."""
    from biobank.identity import service as identity

    if principal.via == "system":
        return False
    try:
        return bool(identity.get_user(session, principal.username).is_ethics_reviewer)
    except NotFound:
        return False


@dataclass
class Viewer:
    """The caller and what they are in the access workflow (computed once per request)."""

    principal: Principal
    reviewer: bool

    @staticmethod
    def of(session: Session, principal: Principal) -> Viewer:
        """The viewer of a principal."""
        return Viewer(principal, is_ethics_reviewer(session, principal))


# -- create ---------------------------------------------------------------------------------------------


@dataclass
class _Line:
    biobank_id: int
    collection_id: int
    specimen_id: int | None
    ref: dict[str, Any]


def _resolve_items(session: Session, items: Sequence[ItemIn]) -> list[_Line]:
    """Each line's biobank, collection and specimen, or 422 naming every bad field."""
    from biobank.institutions import service as institutions
    from biobank.specimens import service as specimens

    errors: list[FieldError] = []
    collections = institutions.collections_by_public_ids(session, sorted({i.collection for i in items if i.collection}))
    wanted = sorted({i.specimen for i in items if i.kind == ItemKind.SPECIMEN and i.specimen})
    found: dict[str, Any] = {}
    if wanted:
        for biobank in institutions.list_biobanks(session):
            for ref, row in specimens.by_refs_in_biobank(session, biobank.id, wanted).items():
                if row.public_id == ref:  # public ids only: barcodes are a biobank's internal labels
                    found[ref] = row
    lines: list[_Line] = []
    seen_specimens: set[str] = set()
    for n, item in enumerate(items):

        def bad(name: str, message: str, value: Any = None, n: int = n) -> None:
            errors.append(FieldError(["items", n, name], message, value=value))

        collection = collections.get(item.collection) if item.collection else None
        if item.collection and collection is None:
            bad("collection", "unknown collection", item.collection)
        if item.kind != ItemKind.SPECIMEN and not item.collection:
            bad("collection", f"a {item.kind} line names its collection")
        if item.kind != ItemKind.SPECIMEN and item.specimen:
            bad("specimen", "only specimen lines name a specimen")
        if item.kind != ItemKind.DATA and item.data_category:
            bad("data_category", "only data lines name a data category")
        if item.kind != ItemKind.COLLECTION and item.sample_type:
            bad("sample_type", "only collection lines name a material type")
        if item.amount is not None and item.amount_unit is None:
            bad("amount_unit", "give the unit of the amount")
        if item.kind == ItemKind.COLLECTION and collection is not None and item.sample_type:  # noqa: SIM102
            if collection.sample_types and item.sample_type.value not in collection.sample_types:
                bad("sample_type", f"the collection holds no {item.sample_type.value}", item.sample_type.value)
        if item.kind == ItemKind.DATA:
            if item.data_category is None:
                bad("data_category", "a data line names its MIABIS data category")
            elif (
                collection is not None
                and collection.dataset_types
                and (item.data_category.value not in collection.dataset_types)
            ):
                bad(
                    "data_category",
                    f"the collection offers no {item.data_category.value} data",
                    item.data_category.value,
                )
        specimen: Any = None
        if item.kind == ItemKind.SPECIMEN:
            if not item.specimen:
                bad("specimen", "a specimen line names the specimen's public id")
            else:
                specimen = found.get(item.specimen)
                if specimen is None:
                    bad("specimen", "unknown specimen", item.specimen)
                elif str(specimen.status) not in specimens.HELD_STATUSES:
                    bad("specimen", f"the specimen is {specimen.status} and cannot be requested", item.specimen)
                elif item.specimen in seen_specimens:
                    bad("specimen", "the specimen is already on another line", item.specimen)
                elif collection is not None and specimen.collection_id != collection.id:
                    bad("collection", "the specimen is not in this collection", item.collection)
                seen_specimens.add(item.specimen)
            if item.quantity != 1:
                bad("quantity", "a specimen line is one specimen", item.quantity)
        if errors:
            continue
        if specimen is not None:
            coll = institutions.collections_by_ids(session, [specimen.collection_id])[specimen.collection_id]
            lines.append(
                _Line(
                    specimen.biobank_id,
                    coll.id,
                    specimen.id,
                    {
                        "kind": "specimen",
                        "specimen": specimen.public_id,
                        "collection": coll.public_id,
                    },
                )
            )
        else:
            assert collection is not None
            line_ref: dict[str, Any] = {"kind": str(item.kind), "collection": collection.public_id}
            if item.sample_type:
                line_ref["sample_type"] = item.sample_type.value
            if item.data_category:
                line_ref["data_category"] = item.data_category.value
            lines.append(_Line(collection.biobank_id, collection.id, None, line_ref))
    if errors:
        raise Invalid(errors)
    return lines


def create_request(session: Session, principal: Principal, data: AccessRequestCreate) -> AccessRequest:
    """A researcher (or staff member) drafts a request; submit it once the ethics approval is attached."""
    if principal.kind not in (UserKind.RESEARCHER, UserKind.STAFF) or principal.via == "system":
        raise NotPermitted("only researchers and staff make access requests")
    if "write" not in principal.scopes:
        raise NotPermitted("this token is read-only")
    lines = _resolve_items(session, data.items)
    settings = get_settings()
    (public_id,) = new_public_ids(session, settings.institution_code, "REQ")
    request = AccessRequest(
        public_id=public_id,
        chain_id=chain.request_ref(public_id),
        requester_user_id=principal.user_id,
        requester_institution=principal.institution_code,
        project_title=data.project_title,
        project_summary=data.project_summary,
        purpose=data.purpose.model_dump(mode="json"),
        shipment_country=data.shipment_country,
        ethics_reference=data.ethics_reference,
        status=RequestStatus.DRAFT,
        salt=refs.new_salt(),
    )
    session.add(request)
    session.flush()
    for position, (item, line) in enumerate(zip(data.items, lines, strict=True)):
        session.add(
            AccessRequestItem(
                request_id=request.id,
                position=position,
                kind=item.kind,
                biobank_id=line.biobank_id,
                collection_id=line.collection_id,
                specimen_id=line.specimen_id,
                sample_type=item.sample_type.value if item.sample_type else None,
                data_category=item.data_category.value if item.data_category else None,
                quantity=item.quantity,
                amount=item.amount,
                amount_unit=item.amount_unit.value if item.amount_unit else "",
                notes=item.notes,
            )
        )
    for biobank_id in sorted({line.biobank_id for line in lines}):
        session.add(AccessRequestProvider(request_id=request.id, biobank_id=biobank_id, state=ProviderState.CONTACTED))
    session.flush()
    audit.record(
        session,
        principal,
        "access.request.create",
        "access_request",
        [public_id],
        purpose=public_id,
        details={"category": str(data.purpose.category), "items": len(lines), "country": data.shipment_country},
    )
    return request


def attach_document(
    session: Session, principal: Principal, request: AccessRequest, content: bytes, media_type: str, filename: str = ""
) -> AccessEthicsDocument:
    """Attach (or replace) the ethics approval document of a draft: PDF, PNG or JPEG, kept with its SHA-256."""
    _require_requester(principal, request)
    if request.status != RequestStatus.DRAFT:
        raise Conflict(
            f"the request is {request.status}; the ethics document can only change while it is a draft",
            name="RequestNotDraft",
        )
    media_type = media_type.split(";")[0].strip().lower()
    if media_type not in DOCUMENT_TYPES:
        raise Invalid.field("ethics_document", "the ethics approval is a PDF, PNG or JPEG file", value=media_type)
    if not content:
        raise Invalid.field("ethics_document", "the file is empty")
    if len(content) > MAX_DOCUMENT_BYTES:
        raise Invalid.field("ethics_document", f"the file is larger than {MAX_DOCUMENT_BYTES // (1024 * 1024)} MB")
    if not content.startswith(DOCUMENT_TYPES[media_type]):
        raise Invalid.field("ethics_document", f"the file's content is not {media_type}")
    digest = hashlib.sha256(content).hexdigest()
    document = repo.document_of(session, request.id)
    if document is None:
        document = AccessEthicsDocument(request_id=request.id)
        session.add(document)
    document.filename = (filename or "").replace("/", "_").replace("\\", "_")[-200:]
    document.media_type = media_type
    document.size_bytes = len(content)
    document.sha256 = digest
    document.content = content
    document.uploaded_by = principal.public_id
    document.uploaded_at = utcnow()
    session.flush()
    audit.record(
        session,
        principal,
        "access.request.ethics_document",
        "access_request",
        [request.public_id],
        purpose=request.public_id,
        details={"sha256": digest, "bytes": len(content)},
    )
    return document


def read_document(session: Session, principal: Principal, request: AccessRequest) -> tuple[bytes, str, str]:
    """The ethics approval document (anyone who may see the request; audited)."""
    document = repo.document_of(session, request.id)
    if document is None:
        raise NotFound("the request has no ethics document", name="EthicsDocumentNotFound")
    if hashlib.sha256(document.content).hexdigest() != document.sha256:
        raise Conflict("the stored ethics document does not match its SHA-256", name="DocumentCorrupt")
    audit.record(
        session,
        principal,
        "access.request.ethics_document.read",
        "access_request",
        [request.public_id],
        purpose=request.public_id,
        details={"sha256": document.sha256},
    )
    return document.content, document.media_type, document.filename


def _require_requester(principal: Principal, request: AccessRequest) -> None:
    if request.requester_user_id != principal.user_id:
        raise NotPermitted("only the requester changes or submits a request", name="NotRequester")
    if "write" not in principal.scopes:
        raise NotPermitted("this token is read-only")


# -- submit ----------------------------------------------------------------------------------------------


def submit(session: Session, principal: Principal, request: AccessRequest) -> AccessRequest:
    """Submit a draft: eligibility per provider, the commitment and `request.submit` for the chain."""
    _require_requester(principal, request)
    if request.status != RequestStatus.DRAFT:
        raise Conflict(f"the request is {request.status}; only a draft can be submitted", name="RequestNotDraft")
    document = repo.document_meta(session, request.id)
    errors = []
    if document is None:
        errors.append(FieldError(["ethics_document"], "attach the ethics approval document before submitting"))
    if not request.ethics_reference:
        errors.append(FieldError(["ethics_reference"], "give the ethics approval's reference before submitting"))
    if errors:
        raise Invalid(errors)
    items = repo.items_of(session, [request.id])[request.id]
    providers = repo.providers_of(session, [request.id])[request.id]
    request.status = RequestStatus.SUBMITTED
    request.submitted_at = utcnow()
    counts = eligibility.refresh(session, request, items, providers, has_document=True)
    institutions = repo.institution_codes_of_biobanks(session, [p.biobank_id for p in providers])
    item_refs = _item_refs(session, items)
    provider_ids = _biobank_public_ids(session, [p.biobank_id for p in providers])
    document_body = chain.request_document(request, items, item_refs, list(provider_ids.values()), document.sha256)
    request.commitment = refs.commitment(request.salt, document_body)
    session.flush()
    chain.enqueue_submit(session, request, sorted(set(institutions.values())))
    audit.record(
        session,
        principal,
        "access.request.submit",
        "access_request",
        [request.public_id],
        purpose=request.public_id,
        details={
            "providers": len(providers),
            "approve": sum(c["approve"] for c in counts.values()),
            "deny": sum(c["deny"] for c in counts.values()),
            "review": sum(c["review"] for c in counts.values()),
        },
    )
    return request


def _biobank_public_ids(session: Session, biobank_ids: Sequence[int]) -> dict[int, str]:
    from biobank.institutions import service as institutions

    return {i: b.public_id for i, b in institutions.biobanks_by_ids(session, list(biobank_ids)).items()}


def _item_refs(session: Session, items: Sequence[AccessRequestItem]) -> list[dict[str, Any]]:
    from biobank.institutions import service as institutions
    from biobank.specimens import service as specimens

    collections = institutions.collections_by_ids(session, sorted({i.collection_id for i in items}))
    specimen_ids = specimens.public_ids_of(session, sorted({i.specimen_id for i in items if i.specimen_id}))
    out = []
    for i in items:
        ref: dict[str, Any] = {"kind": str(i.kind), "collection": collections[i.collection_id].public_id}
        if i.specimen_id:
            ref["specimen"] = specimen_ids[i.specimen_id]
        if i.sample_type:
            ref["sample_type"] = i.sample_type
        if i.data_category:
            ref["data_category"] = i.data_category
        out.append(ref)
    return out


def recompute_eligibility(session: Session, principal: Principal, request: AccessRequest) -> AccessRequest:
    """Run eligibility again now (consents change); anyone who sees a submitted request may ask."""
    if request.status == RequestStatus.DRAFT:
        raise Conflict("the request is draft; eligibility runs when it is submitted", name="RequestNotSubmitted")
    items = repo.items_of(session, [request.id])[request.id]
    providers = repo.providers_of(session, [request.id])[request.id]
    has_document = repo.document_meta(session, request.id) is not None
    counts = eligibility.refresh(session, request, items, providers, has_document=has_document)
    audit.record(
        session,
        principal,
        "access.request.eligibility",
        "access_request",
        [request.public_id],
        purpose=request.public_id,
        details={
            "approve": sum(c["approve"] for c in counts.values()),
            "deny": sum(c["deny"] for c in counts.values()),
            "review": sum(c["review"] for c in counts.values()),
        },
    )
    return request


# -- reads ------------------------------------------------------------------------------------------------


def get_request(session: Session, viewer: Viewer, public_id: str, *, audit_read: bool = True) -> AccessRequest:
    """A request the caller may see (404 otherwise); the read is audited."""
    stmt = repo.visible(viewer.principal, reviewer=viewer.reviewer)
    request = repo.by_public_id(session, stmt, public_id)
    if request is None:
        raise RequestNotFound(f"no access request {public_id!r}")
    if audit_read:
        audit.record(
            session,
            viewer.principal,
            "access.request.read",
            "access_request",
            [request.public_id],
            purpose=request.public_id,
        )
    return request


def list_requests(
    session: Session,
    viewer: Viewer,
    params: PageParams,
    *,
    status: RequestStatus | None = None,
    role: str | None = None,
    biobank: str | None = None,
) -> tuple[list[AccessRequest], int]:
    """A page of the requests the caller may see, filtered; the listed ids are audited."""
    from biobank.institutions import service as institutions

    params = params.validated(repo.SORTS)
    if role is not None and role not in ROLES:
        raise Invalid.field("role", "one of " + ", ".join(ROLES), value=role)
    biobank_id = None
    if biobank:
        try:
            biobank_id = institutions.get_biobank(session, biobank).id
        except NotFound:
            raise Invalid.field("biobank", "unknown biobank", value=biobank) from None
    stmt = repo.filtered(
        repo.visible(viewer.principal, reviewer=viewer.reviewer),
        viewer.principal,
        status=status.value if status else None,
        role=role,
        biobank_id=biobank_id,
        reviewer=viewer.reviewer,
    )
    rows, total = paginate(session, stmt, params, repo.SORTS, "-created_at")
    if rows:
        audit.record(
            session,
            viewer.principal,
            "access.request.list",
            "access_request",
            [r.public_id for r in rows],
            details={"role": role or "", "status": status.value if status else ""},
        )
    return rows, total


def inbox(session: Session, principal: Principal, limit: int = 50) -> list[Any]:
    """The newest reminders and escalations about the caller's biobanks' tracks (every biobank for admins)."""
    return repo.notices_for(session, principal.visible_biobank_ids(), limit=limit)
