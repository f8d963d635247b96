"""Consent use cases in one place: what routes, pages and other packages call.

Other packages use: `eligible_specimen_filter` (THE consent check for catalogue, counts and requests),
`decision_counts`, `match`, `register_open_request_provider` / `register_recipient_provider` (withdrawal
hooks), `notify_donor` and `current_profile`. The use cases themselves live in forms.py, records.py,
withdrawal.py, eligibility.py and accounts.py.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from biobank import audit
from biobank.config import get_settings
from biobank.consent import records as _records
from biobank.consent import repository as repo
from biobank.consent.accounts import notify
from biobank.consent.eligibility import decision_counts, eligibility, eligible_specimen_filter
from biobank.consent.fhir import consent_resource
from biobank.consent.matcher import ConsentProfile, Decision, Purpose, Verdict, match
from biobank.consent.models import ConsentMethod, DonorConsent
from biobank.consent.schemas import ChoicesChange, ConsentRecordCreate, MatchRequest, ScanRead
from biobank.consent.withdrawal import (
    WithdrawnSpecimens,
    register_open_request_provider,
    register_recipient_provider,
    unregister_open_request_provider,
    unregister_recipient_provider,
)
from biobank.donors.models import Donor
from biobank.identity.principal import Principal
from biobank.kit.errors import Invalid

__all__ = [
    "ConsentProfile",
    "Decision",
    "Purpose",
    "Verdict",
    "WithdrawnSpecimens",
    "change_choices",
    "current_profile",
    "decide",
    "decision_counts",
    "eligibility",
    "eligible_specimen_filter",
    "fhir_consent",
    "match",
    "notify_donor",
    "record_paper_consent",
    "register_open_request_provider",
    "register_recipient_provider",
    "unregister_open_request_provider",
    "unregister_recipient_provider",
]


def decide(session: Session, principal: Principal, data: MatchRequest) -> Decision:
    """Decide one consent profile against one purpose (any logged-in user: pre-checks by peers and ethics)."""
    decision = match(data.consent.profile(), data.purpose.purpose())
    audit.record(
        session,
        principal,
        "consent.match",
        "consent_profile",
        [],
        purpose=data.purpose.project_id,
        details={
            "permission": data.consent.permission.value,
            "category": data.purpose.category.value,
            "decision": decision.decision.value,
        },
    )
    return decision


def record_paper_consent(
    session: Session, principal: Principal, donor_public_id: str, data: ConsentRecordCreate
) -> DonorConsent:
    """Staff record a paper consent (with its scan) for a donor of their biobank."""
    donor = _records.staff_donor(session, principal, donor_public_id, write=True)
    return _records.record_consent(session, principal, donor, data, channel="staff")


def change_choices(session: Session, principal: Principal, donor: Donor, data: ChoicesChange) -> DonorConsent:
    """A donor changes their choices in the portal: a new electronic version, e-signed with a typed name."""
    current = _records.current(session, donor)
    version_ref = data.version
    if version_ref is None:
        if current is None:
            raise Invalid.field("version", "choose the consent form version to sign")
        signed = repo.versions_by_ids(session, [current.form_version_id])[current.form_version_id]
        newest = repo.latest_version(session, signed.form_id)
        assert newest is not None
        version_ref = newest.public_id
    record = ConsentRecordCreate(
        version=version_ref,
        choices=data.choices,
        method=ConsentMethod.ELECTRONIC,
        signed_name=data.signed_name,
    )
    return _records.record_consent(session, principal, donor, record, channel="portal")


def fhir_consent(session: Session, principal: Principal, record_public_id: str) -> dict[str, Any]:
    """The FHIR R4 Consent of a record (staff of the donor's biobank, or the donor; audited)."""
    from biobank.donors import service as donors
    from biobank.institutions import service as institutions

    record = _records.get_record(session, principal, record_public_id)
    view = _records.record_reads(session, [record])[0]
    biobank_code = institutions.biobank_codes(session, [record.biobank_id])[record.biobank_id]
    withdrawal = repo.withdrawal_of_record(session, record.id)
    donor_public = donors.public_ids_by_id(session, [record.donor_id])[record.donor_id]
    resource = consent_resource(
        public_id=record.public_id,
        donor_public_id=donor_public,
        form_version_public_id=view.form_version,
        status=record.status,
        method=record.method,
        given_at=record.given_at,
        valid_from=record.valid_from,
        valid_until=record.valid_until,
        profile=ConsentProfile.from_canonical(view.profile),
        organization=f"{get_settings().institution_code}:{biobank_code}",
        has_witness=record.has_witness,
        withdrawn_at=withdrawal.at if withdrawal else None,
        scan=ScanRead.model_validate(view.scan).model_dump() if view.scan else None,
    )
    validate_fhir_consent(resource)
    return resource


def validate_fhir_consent(resource: dict[str, Any]) -> None:
    """Check a Consent against the FHIR R4 model (fhir.resources' R4B equals R4 for Consent); raises on error."""
    from fhir.resources.R4B.consent import Consent

    Consent.model_validate(resource)


def notify_donor(session: Session, donor_id: int, kind: str, text_en: str, text_zh: str = "") -> None:
    """Tell a donor something in their portal (e.g. that their sample was used in a study); callers audit."""
    notify(session, donor_id, kind, text_en, text_zh)


def current_profile(session: Session, donor_id: int) -> ConsentProfile | None:
    """The DUO profile of a donor's current, active consent (None when none or withdrawn)."""
    from biobank.consent.models import ConsentStatus

    record = repo.current_record(session, donor_id)
    if record is None or record.status != ConsentStatus.ACTIVE:
        return None
    return _records.profile_of(session, record)


def donor_of_user(session: Session, user_id: int) -> int | None:
    """The donor row id a portal user is linked to (for the audit package's donor-facing history)."""
    account = repo.account_of_user(session, user_id)
    return account.donor_id if account else None
