"""Staff consent pages (/consent): forms and versions, a donor's consent timeline with paper consent upload,
withdrawal, invitation and messages, the re-consent list, and withdrawal follow-through."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, FastAPI, File, Request, UploadFile
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session

from biobank.consent import accounts, forms, records, withdrawal
from biobank.consent.models import ConsentForm, OptionKind, TaskStatus, WithdrawalKind
from biobank.consent.schemas import (
    ConsentRecordCreate,
    FormCreate,
    NotificationCreate,
    OptionRead,
    VersionCreate,
    WithdrawalCreate,
)
from biobank.consent.views import record_views
from biobank.donors.models import Donor
from biobank.identity.principal import Principal
from biobank.institutions import service as institutions
from biobank.kit.deps import DbSession
from biobank.kit.errors import FieldError, Invalid
from biobank.web.forms import FormState, Outcome, local_datetime, parse_form, submit, text
from biobank.web.pages import PagePrincipal, PostedForm, checked, install, page
from biobank.web.render import add_template_dir, redirect

router = APIRouter(prefix="/consent", include_in_schema=False)
add_template_dir(Path(__file__).parent / "templates")


def setup(app: FastAPI) -> None:
    """Anonymous visitors of these pages go to the login form."""
    install(app)


def _forms_context(session: Session, principal: Principal) -> dict[str, Any]:
    rows = forms.list_forms(session, principal)
    return {
        "consent_forms": forms.form_reads(session, rows),
        "manageable": [
            (b.code, f"{b.name} ({b.code})") for b in institutions.list_biobanks(session) if principal.can_manage(b.id)
        ],
    }


@router.get("", response_class=HTMLResponse)
def index(request: Request, session: DbSession, principal: PagePrincipal) -> Response:
    """Consent forms of the user's biobanks, and where consent work is waiting."""
    return page(request, "consent/staff/index.html", principal, section="consent", **_forms_context(session, principal))


@router.get("/donor")
def find_donor(principal: PagePrincipal, donor: str = "") -> Response:
    """Open a donor's consent page by public id."""
    return redirect(f"/consent/donors/{quote(donor.strip(), safe=':')}" if donor.strip() else "/consent")


@router.post("/forms", response_class=HTMLResponse)
def create_form(request: Request, session: DbSession, principal: PagePrincipal, form: PostedForm) -> Response:
    """Create a consent form."""
    checked(principal, form)
    values = {k: text(form, k) for k in ("biobank", "code", "title_en", "title_zh")}
    outcome = submit(session, lambda: forms.create_form(session, principal, parse_form(FormCreate, values)))
    if not outcome.ok:
        return page(
            request,
            "consent/staff/index.html",
            principal,
            section="consent",
            outcome=outcome,
            form=outcome.state("form", values),
            **_forms_context(session, principal),
        )
    created: ConsentForm = outcome.value
    return redirect(f"/consent/forms/{created.public_id}", flash=f"Form {created.code} created.")


def _form_page(
    request: Request,
    session: Session,
    principal: Principal,
    consent_form: ConsentForm,
    *,
    form: FormState | None = None,
    outcome: Outcome | None = None,
) -> Response:
    view = forms.form_reads(session, [consent_form])[0]
    versions = forms.version_reads(
        session, [forms.get_version(session, principal, ref) for ref in reversed(view.versions)]
    )
    latest_options = [o.model_dump(mode="json") for o in versions[0].options] if versions else []
    return page(
        request,
        "consent/staff/form.html",
        principal,
        section="consent",
        outcome=outcome,
        form=form,
        consent_form=view,
        versions=versions,
        can_manage=principal.can_manage(consent_form.biobank_id),
        options_json=json.dumps(latest_options, ensure_ascii=False, indent=1),
    )


@router.get("/forms/{form_id}", response_class=HTMLResponse)
def form_page(form_id: str, request: Request, session: DbSession, principal: PagePrincipal) -> Response:
    """A form's versions with their options and what each means in DUO; publish a new version."""
    return _form_page(request, session, principal, forms.get_form(session, principal, form_id))


@router.post("/forms/{form_id}/versions", response_class=HTMLResponse)
def publish(form_id: str, request: Request, session: DbSession, principal: PagePrincipal, form: PostedForm) -> Response:
    """Publish a new version (options as JSON, as shown under the previous version)."""
    checked(principal, form)
    consent_form = forms.get_form(session, principal, form_id)
    values = {k: text(form, k) for k in ("text_en", "text_zh", "options")}

    def run() -> Any:
        try:
            options = json.loads(values["options"] or "[]")
        except json.JSONDecodeError as exc:
            raise Invalid([FieldError(["options"], f"not valid JSON: {exc.msg} (line {exc.lineno})")]) from None
        data = parse_form(
            VersionCreate, {"text_en": values["text_en"], "text_zh": values["text_zh"], "options": options}
        )
        return forms.add_version(session, principal, consent_form, data)

    outcome = submit(session, run)
    if not outcome.ok:
        return _form_page(
            request, session, principal, consent_form, form=outcome.state("version", values), outcome=outcome
        )
    return redirect(f"/consent/forms/{consent_form.public_id}", flash=f"Version {outcome.value.number} published.")


# -- one donor ----------------------------------------------------------------------------------------------


def _donor_page(
    request: Request,
    session: Session,
    principal: Principal,
    donor: Donor,
    *,
    form: FormState | None = None,
    outcome: Outcome | None = None,
    code: str | None = None,
) -> Response:
    timeline = records.timeline(session, principal, donor)
    views = record_views(session, timeline, "en")
    version = records.signable_version(session, donor)
    options = records.options_of_version(session, version) if version else []
    own_forms = [f for f in forms.list_forms(session, principal) if f.biobank_id == donor.biobank_id]
    all_versions = [v for f in forms.form_reads(session, own_forms) for v in reversed(f.versions)]
    current = records.current(session, donor)
    withdrawals = withdrawal.of_records(session, [r.id for r in timeline])
    return page(
        request,
        "consent/staff/donor.html",
        principal,
        section="consent",
        outcome=outcome,
        form=form,
        donor=donor,
        timeline=views,
        version=version,
        versions=all_versions,
        permissions=[OptionRead.model_validate(o) for o in options if o.kind == OptionKind.PERMISSION],
        questions=[OptionRead.model_validate(o) for o in options if o.kind == OptionKind.CHOICE],
        current=current,
        withdrawals=withdrawals,
        kinds=[k.value for k in WithdrawalKind],
        can_write=principal.can_write(donor.biobank_id),
        code=code,
    )


@router.get("/donors/{donor_id}", response_class=HTMLResponse)
def donor_page(donor_id: str, request: Request, session: DbSession, principal: PagePrincipal) -> Response:
    """A donor's consent timeline; record a paper consent, a withdrawal, an invitation or a message."""
    donor = records.staff_donor(session, principal, donor_id)
    return _donor_page(request, session, principal, donor)


@router.post("/donors/{donor_id}/paper", response_class=HTMLResponse)
def record_paper(
    donor_id: str,
    request: Request,
    session: DbSession,
    principal: PagePrincipal,
    form: PostedForm,
    scan: Annotated[UploadFile | None, File()] = None,
) -> Response:
    """Store the scan and record the paper consent in one step (nothing is kept when either fails)."""
    checked(principal, form)
    donor = records.staff_donor(session, principal, donor_id, write=True)
    version_ref = text(form, "version")
    content = scan.file.read(records.MAX_SCAN_BYTES + 1) if scan is not None and scan.filename else b""
    media_type = (scan.content_type or "") if scan is not None else ""

    def run() -> Any:
        version = records.resolve_version(session, donor, version_ref)
        options = records.options_of_version(session, version)
        permission = text(form, "permission")
        choices: dict[str, bool] = {}
        for o in options:
            if o.kind == OptionKind.PERMISSION:
                choices[o.code] = o.code == permission
            elif o.kind == OptionKind.CHOICE and text(form, f"choice.{o.code}") in ("yes", "no"):
                choices[o.code] = text(form, f"choice.{o.code}") == "yes"
        if not content:
            raise Invalid([FieldError(["scan"], "attach the scanned paper form")])
        stored = records.store_scan(session, principal, donor.biobank_id, content, media_type)
        values = {
            "version": version_ref,
            "choices": choices,
            "given_at": local_datetime(text(form, "given_at")) if text(form, "given_at") else None,
            "valid_until": local_datetime(text(form, "valid_until")) if text(form, "valid_until") else None,
            "method": "paper",
            "scan": stored.public_id,
            "witness": text(form, "witness") or None,
        }
        return records.record_consent(
            session, principal, donor, parse_form(ConsentRecordCreate, values), channel="staff"
        )

    outcome = submit(session, run)
    if not outcome.ok:
        return _donor_page(request, session, principal, donor, form=outcome.state("paper", dict(form)), outcome=outcome)
    return redirect(
        f"/consent/donors/{donor.public_id}", flash=f"Paper consent recorded as version {outcome.value.version}."
    )


@router.post("/donors/{donor_id}/withdraw", response_class=HTMLResponse)
def withdraw(
    donor_id: str, request: Request, session: DbSession, principal: PagePrincipal, form: PostedForm
) -> Response:
    """Record a withdrawal the donor asked for in person or by phone."""
    checked(principal, form)
    donor = records.staff_donor(session, principal, donor_id, write=True)
    values = {"kind": text(form, "kind"), "reason": text(form, "reason")}
    outcome = submit(
        session,
        lambda: withdrawal.withdraw(session, principal, donor, parse_form(WithdrawalCreate, values), channel="staff"),
    )
    if not outcome.ok:
        return _donor_page(request, session, principal, donor, form=outcome.state("withdraw", values), outcome=outcome)
    return redirect(f"/consent/donors/{donor.public_id}", flash="Withdrawal recorded.")


@router.post("/donors/{donor_id}/invite", response_class=HTMLResponse)
def invite(donor_id: str, request: Request, session: DbSession, principal: PagePrincipal, form: PostedForm) -> Response:
    """Issue a portal invitation code; it is shown on this response only."""
    checked(principal, form)
    donor = records.staff_donor(session, principal, donor_id, write=True)
    outcome = submit(session, lambda: accounts.invite(session, principal, donor))
    if not outcome.ok:
        return _donor_page(request, session, principal, donor, outcome=outcome)
    code, _invitation = outcome.value
    response = _donor_page(request, session, principal, donor, code=code)
    response.headers["Cache-Control"] = "no-store"
    return response


@router.post("/donors/{donor_id}/notify", response_class=HTMLResponse)
def notify(donor_id: str, request: Request, session: DbSession, principal: PagePrincipal, form: PostedForm) -> Response:
    """Send the donor a message in their portal."""
    checked(principal, form)
    donor = records.staff_donor(session, principal, donor_id, write=True)
    values = {"text_en": text(form, "text_en"), "text_zh": text(form, "text_zh")}
    outcome = submit(
        session, lambda: accounts.send_notification(session, principal, donor, parse_form(NotificationCreate, values))
    )
    if not outcome.ok:
        return _donor_page(request, session, principal, donor, form=outcome.state("notify", values), outcome=outcome)
    return redirect(f"/consent/donors/{donor.public_id}", flash="Message sent to the donor's portal.")


# -- re-consent and withdrawal work ----------------------------------------------------------------------------


@router.get("/reconsent", response_class=HTMLResponse)
def reconsent(request: Request, session: DbSession, principal: PagePrincipal) -> Response:
    """Donors whose current consent is on an older version of its form."""
    rows, total = accounts.reconsent_list(session, principal)
    return page(
        request, "consent/staff/reconsent.html", principal, section="consent", rows=rows, total=total, results=None
    )


@router.post("/reconsent", response_class=HTMLResponse)
def send_reconsent(request: Request, session: DbSession, principal: PagePrincipal, form: PostedForm) -> Response:
    """Invite the ticked donors to review the newest version; codes for those without an account are shown once."""
    checked(principal, form)
    raw = form.get("donor", [])
    donors = [raw] if isinstance(raw, str) else list(raw)
    outcome = submit(session, lambda: accounts.send_reconsent(session, principal, [d for d in donors if d]))
    rows, total = accounts.reconsent_list(session, principal)
    response = page(
        request,
        "consent/staff/reconsent.html",
        principal,
        section="consent",
        rows=rows,
        total=total,
        results=outcome.value if outcome.ok else None,
        outcome=outcome,
    )
    response.headers["Cache-Control"] = "no-store"
    return response


@router.get("/withdrawals", response_class=HTMLResponse)
def withdrawals(request: Request, session: DbSession, principal: PagePrincipal) -> Response:
    """Open destruction tasks and follow-ups of distributed specimens."""
    tasks, follow_ups = withdrawal.open_work(session, principal, status=TaskStatus.OPEN)
    return page(
        request, "consent/staff/withdrawals.html", principal, section="consent", tasks=tasks, follow_ups=follow_ups
    )


@router.post("/tasks/{task_id}/complete", response_class=HTMLResponse)
def complete(
    task_id: str, request: Request, session: DbSession, principal: PagePrincipal, form: PostedForm
) -> Response:
    """Destroy the specimen (custody event) and close the task."""
    checked(principal, form)
    outcome = submit(session, lambda: withdrawal.complete_task(session, principal, task_id, text(form, "notes")))
    if not outcome.ok:
        return redirect("/consent/withdrawals", flash=outcome.message or "Not done.", level="error")
    return redirect("/consent/withdrawals", flash="Specimen destroyed and recorded in its chain of custody.")


@router.post("/follow-ups/{item_id}/resolve", response_class=HTMLResponse)
def resolve(item_id: str, request: Request, session: DbSession, principal: PagePrincipal, form: PostedForm) -> Response:
    """Close a follow-up with what the recipient did."""
    checked(principal, form)
    outcome = submit(session, lambda: withdrawal.resolve_follow_up(session, principal, item_id, text(form, "notes")))
    if not outcome.ok:
        message = outcome.message or "; ".join(m for _, m in outcome.summary) or "Not done."
        return redirect("/consent/withdrawals", flash=message, level="error")
    return redirect("/consent/withdrawals", flash="Follow-up closed.")
