"""REST: /api/v1/consent — the matcher, eligibility, forms and versions, donor records, withdrawal,
destruction tasks and follow-ups, re-consent, invitations, notifications, FHIR export, donor self-service."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Query, Request, UploadFile
from fastapi.responses import JSONResponse, Response

from biobank.consent import accounts, forms, records, service, withdrawal
from biobank.consent.models import TaskStatus
from biobank.consent.schemas import (
    AcceptedVersions,
    AccessEventRead,
    ChoicesChange,
    ConsentRecordCreate,
    ConsentRecordRead,
    DestructionTaskRead,
    EligibilityRead,
    EligibilityRequest,
    FollowUpRead,
    FormCreate,
    FormRead,
    InvitationCreate,
    InvitationCreated,
    InvitationRedeem,
    MatchRead,
    MatchRequest,
    NotificationCreate,
    NotificationRead,
    ReconsentInvite,
    ReconsentInvited,
    ReconsentRow,
    ScanRead,
    TaskComplete,
    VersionCreate,
    VersionRead,
    WithdrawalCreate,
    WithdrawalRead,
)
from biobank.identity.deps import CurrentPrincipal, client_address
from biobank.identity.service import client_hash
from biobank.institutions import service as institutions
from biobank.kit.deps import DbSession
from biobank.kit.errors import Invalid
from biobank.kit.schemas import Page, ReadSchema

router = APIRouter(prefix="/api/v1/consent", tags=["consent"])
FHIR_JSON = "application/fhir+json"


# -- the matcher and eligibility --------------------------------------------------------------------------


@router.post("/match", response_model=MatchRead)
def match(data: MatchRequest, session: DbSession, principal: CurrentPrincipal) -> MatchRead:
    """Decide one consent profile against one purpose: APPROVE, DENY or NEEDS_REVIEW with a reason per rule."""
    return MatchRead.model_validate(service.decide(session, principal, data).as_dict())


@router.post("/eligibility", response_model=EligibilityRead)
def eligibility(data: EligibilityRequest, session: DbSession, principal: CurrentPrincipal) -> EligibilityRead:
    """Counts per decision for specimens, collections or criteria; staff also get their specimens with reasons."""
    return service.eligibility(session, principal, data)


# -- forms ------------------------------------------------------------------------------------------------


@router.get("/forms", response_model=list[FormRead])
def list_forms(session: DbSession, principal: CurrentPrincipal) -> list[FormRead]:
    """Consent forms of the caller's biobanks."""
    return forms.form_reads(session, forms.list_forms(session, principal))


@router.post("/forms", response_model=FormRead, status_code=201)
def create_form(data: FormCreate, session: DbSession, principal: CurrentPrincipal) -> FormRead:
    """Create a consent form (the biobank's managers)."""
    return forms.form_reads(session, [forms.create_form(session, principal, data)])[0]


@router.get("/forms/{form_id}", response_model=FormRead)
def get_form(form_id: str, session: DbSession, principal: CurrentPrincipal) -> FormRead:
    """One consent form with its version ids."""
    return forms.form_reads(session, [forms.get_form(session, principal, form_id)])[0]


@router.post("/forms/{form_id}/versions", response_model=VersionRead, status_code=201)
def add_version(form_id: str, data: VersionCreate, session: DbSession, principal: CurrentPrincipal) -> VersionRead:
    """Publish a new version: text in English and Chinese, options mapped to DUO."""
    form = forms.get_form(session, principal, form_id)
    return forms.version_reads(session, [forms.add_version(session, principal, form, data)])[0]


@router.get("/versions/{version_id}", response_model=VersionRead)
def get_version(version_id: str, session: DbSession, principal: CurrentPrincipal) -> VersionRead:
    """One form version with its options."""
    return forms.version_reads(session, [forms.get_version(session, principal, version_id)])[0]


class AcceptedRead(ReadSchema):
    collection: str
    versions: list[str]


@router.get("/collections/{collection}/accepted-versions", response_model=AcceptedRead)
def get_accepted(collection: str, session: DbSession, principal: CurrentPrincipal) -> AcceptedRead:
    """The form versions a collection accepts (empty: every version)."""
    return AcceptedRead(collection=collection, versions=forms.accepted(session, principal, collection))


@router.put("/collections/{collection}/accepted-versions", response_model=AcceptedRead)
def set_accepted(
    collection: str, data: AcceptedVersions, session: DbSession, principal: CurrentPrincipal
) -> AcceptedRead:
    """Say which form versions a collection accepts (the biobank's managers)."""
    return AcceptedRead(collection=collection, versions=forms.set_accepted(session, principal, collection, data))


# -- records ----------------------------------------------------------------------------------------------


@router.post("/scans", response_model=ScanRead, status_code=201)
def upload_scan(
    session: DbSession,
    principal: CurrentPrincipal,
    biobank: Annotated[str, Form()],
    scan: Annotated[UploadFile, File()],
) -> ScanRead:
    """Upload a scanned paper consent form (PDF, PNG, JPEG or TIFF); record it with POST .../records."""
    bb = institutions.get_biobank(session, biobank)
    if not principal.can_read(bb.id):
        raise Invalid.field("biobank", "unknown biobank", value=biobank)
    content = scan.file.read(records.MAX_SCAN_BYTES + 1)
    stored = records.store_scan(session, principal, bb.id, content, scan.content_type or "")
    return ScanRead.model_validate(stored)


@router.get("/donors/{donor}/records", response_model=list[ConsentRecordRead])
def timeline(donor: str, session: DbSession, principal: CurrentPrincipal) -> list[ConsentRecordRead]:
    """Every version of a donor's consent, newest first."""
    row = records.staff_donor(session, principal, donor)
    return records.record_reads(session, records.timeline(session, principal, row))


@router.post("/donors/{donor}/records", response_model=ConsentRecordRead, status_code=201)
def record_paper(
    donor: str, data: ConsentRecordCreate, session: DbSession, principal: CurrentPrincipal
) -> ConsentRecordRead:
    """Record a paper consent (with the id of its uploaded scan); the previous version is kept."""
    return records.record_reads(session, [service.record_paper_consent(session, principal, donor, data)])[0]


@router.get("/records/{record}", response_model=ConsentRecordRead)
def get_record(record: str, session: DbSession, principal: CurrentPrincipal) -> ConsentRecordRead:
    """One consent record."""
    return records.record_reads(session, [records.get_record(session, principal, record)])[0]


@router.get("/records/{record}/fhir")
def record_fhir(record: str, session: DbSession, principal: CurrentPrincipal) -> Response:
    """The record as a FHIR R4 Consent resource."""
    return JSONResponse(service.fhir_consent(session, principal, record), media_type=FHIR_JSON)


@router.get("/records/{record}/scan")
def record_scan(record: str, session: DbSession, principal: CurrentPrincipal) -> Response:
    """The scanned paper form of a record (checked against its SHA-256)."""
    row = records.get_record(session, principal, record)
    content, media_type = records.read_scan(session, principal, row)
    return Response(content, media_type=media_type, headers={"Cache-Control": "no-store"})


# -- withdrawal -------------------------------------------------------------------------------------------


@router.post("/donors/{donor}/withdrawal", response_model=WithdrawalRead, status_code=201)
def withdraw(donor: str, data: WithdrawalCreate, session: DbSession, principal: CurrentPrincipal) -> WithdrawalRead:
    """Record a donor's withdrawal (told to staff): excluded at once; destruction tasks and follow-ups created."""
    row = records.staff_donor(session, principal, donor, write=True)
    done = withdrawal.withdraw(session, principal, row, data, channel="staff")
    return withdrawal.withdrawal_reads(session, [done])[0]


@router.get("/withdrawals/{public_id}", response_model=WithdrawalRead)
def get_withdrawal(public_id: str, session: DbSession, principal: CurrentPrincipal) -> WithdrawalRead:
    """One withdrawal with its destruction tasks and follow-ups."""
    return withdrawal.withdrawal_reads(session, [withdrawal.get_withdrawal(session, principal, public_id)])[0]


class OpenWork(ReadSchema):
    destruction_tasks: list[DestructionTaskRead]
    follow_ups: list[FollowUpRead]


@router.get("/withdrawal-work", response_model=OpenWork)
def open_work(session: DbSession, principal: CurrentPrincipal, status: TaskStatus | None = TaskStatus.OPEN) -> OpenWork:
    """Destruction tasks and distributed follow-ups of the caller's biobanks (default: open ones)."""
    tasks, follow_ups = withdrawal.open_work(session, principal, status=status)
    return OpenWork(destruction_tasks=tasks, follow_ups=follow_ups)


@router.post("/destruction-tasks/{public_id}/complete", response_model=DestructionTaskRead)
def complete_task(
    public_id: str, data: TaskComplete, session: DbSession, principal: CurrentPrincipal
) -> DestructionTaskRead:
    """Destroy the specimen (a custody event) and close the task."""
    return withdrawal.task_reads(session, [withdrawal.complete_task(session, principal, public_id, data.notes)])[0]


@router.post("/follow-ups/{public_id}/resolve", response_model=FollowUpRead)
def resolve_follow_up(
    public_id: str, data: TaskComplete, session: DbSession, principal: CurrentPrincipal
) -> FollowUpRead:
    """Close the follow-up of a distributed specimen, saying what the recipient did."""
    return withdrawal.follow_up_reads(
        session, [withdrawal.resolve_follow_up(session, principal, public_id, data.notes)]
    )[0]


# -- re-consent, invitations, notifications --------------------------------------------------------------


@router.get("/reconsent", response_model=Page[ReconsentRow])
def reconsent(
    session: DbSession,
    principal: CurrentPrincipal,
    page: Annotated[int, Query(ge=1)] = 1,
    size: Annotated[int, Query(ge=1, le=500)] = 100,
) -> Page[ReconsentRow]:
    """Donors whose current consent is on an older version of its form."""
    rows, total = accounts.reconsent_list(session, principal, limit=size, offset=(page - 1) * size)
    return Page(items=rows, total=total, page=page, size=size)


@router.post("/reconsent/invitations", response_model=list[ReconsentInvited])
def reconsent_invite(data: ReconsentInvite, session: DbSession, principal: CurrentPrincipal) -> list[ReconsentInvited]:
    """Invite donors to review the newest version (portal notice, or a code for donors without an account)."""
    return accounts.send_reconsent(session, principal, data.donors, days=data.days)


@router.post("/donors/{donor}/invitations", response_model=InvitationCreated, status_code=201)
def invite(donor: str, data: InvitationCreate, session: DbSession, principal: CurrentPrincipal) -> InvitationCreated:
    """Issue a portal invitation code for a donor (shown once)."""
    row = records.staff_donor(session, principal, donor, write=True)
    code, invitation = accounts.invite(session, principal, row, days=data.days)
    return InvitationCreated(public_id=invitation.public_id, code=code, expires_at=invitation.expires_at)


@router.post("/invitations/redeem", status_code=201)
def redeem(data: InvitationRedeem, request: Request, session: DbSession) -> dict[str, Any]:
    """Create a donor's portal account from an invitation code (no login needed; the code is the credential)."""
    user, _donor = accounts.redeem(session, data, client=client_hash(client_address(request)))
    return {"username": user.username, "kind": str(user.kind)}


@router.post("/donors/{donor}/notifications", response_model=NotificationRead, status_code=201)
def notify(donor: str, data: NotificationCreate, session: DbSession, principal: CurrentPrincipal) -> NotificationRead:
    """Send a donor a message in their portal."""
    row = records.staff_donor(session, principal, donor, write=True)
    return NotificationRead.model_validate(accounts.send_notification(session, principal, row, data))


# -- the donor's own consent ------------------------------------------------------------------------------


@router.get("/me", response_model=list[ConsentRecordRead])
def my_consent(session: DbSession, principal: CurrentPrincipal) -> list[ConsentRecordRead]:
    """The caller's own consent timeline (donor accounts)."""
    donor = records.own_donor(session, principal)
    return records.record_reads(session, records.timeline(session, principal, donor))


@router.post("/me/records", response_model=ConsentRecordRead, status_code=201)
def change_my_choices(data: ChoicesChange, session: DbSession, principal: CurrentPrincipal) -> ConsentRecordRead:
    """Change choices: a new electronic version signed with the typed name."""
    donor = records.own_donor(session, principal)
    return records.record_reads(session, [service.change_choices(session, principal, donor, data)])[0]


@router.post("/me/withdrawal", response_model=WithdrawalRead, status_code=201)
def withdraw_me(data: WithdrawalCreate, session: DbSession, principal: CurrentPrincipal) -> WithdrawalRead:
    """Withdraw the caller's consent."""
    donor = records.own_donor(session, principal)
    done = withdrawal.withdraw(session, principal, donor, data, channel="portal")
    return withdrawal.withdrawal_reads(session, [done])[0]


@router.get("/me/access-history", response_model=list[AccessEventRead])
def my_access_history(session: DbSession, principal: CurrentPrincipal, lang: str = "en") -> list[AccessEventRead]:
    """Which institutions did what with the caller's samples and data (never which person)."""
    donor = records.own_donor(session, principal)
    return accounts.access_history(session, principal, donor, lang=lang)
