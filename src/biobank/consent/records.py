"""Donor consent records: versioned, each change a new record; paper scans; the timeline and its views."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import insert
from sqlalchemy.orm import Session

from biobank import audit
from biobank.config import get_settings
from biobank.consent import repository as repo
from biobank.consent.listeners import notify_consent_changed
from biobank.consent.matcher import ConsentProfile
from biobank.consent.models import (
    ConsentFormVersion,
    ConsentMethod,
    ConsentProfileRow,
    ConsentScan,
    ConsentStatus,
    DonorConsent,
)
from biobank.consent.profiles import build_profile, check_choices, profile_key
from biobank.consent.schemas import ConsentRecordCreate, ConsentRecordRead, ScanRead
from biobank.donors.models import Donor
from biobank.identity.models import UserKind
from biobank.identity.principal import Principal
from biobank.kit.crypto import Vault
from biobank.kit.db import utcnow
from biobank.kit.errors import FieldError, Invalid, NotFound, NotPermitted
from biobank.kit.ids import new_public_ids, new_uuid

SCAN_TYPES = {
    "application/pdf": (b"%PDF",),
    "image/png": (b"\x89PNG\r\n\x1a\n",),
    "image/jpeg": (b"\xff\xd8\xff",),
    "image/tiff": (b"II*\x00", b"MM\x00*"),
}
MAX_SCAN_BYTES = 20 * 1024 * 1024
CLOCK_SKEW = timedelta(minutes=5)


# -- who is asking --------------------------------------------------------------------------------------


def action_name(principal: Principal, name: str) -> str:
    """Audit action of a read: donors reading their own data get `consent.portal.*` (left out of their
    access history, which shows what others did)."""
    return f"consent.portal.{name}" if principal.kind == UserKind.DONOR else f"consent.{name}"


def staff_donor(session: Session, principal: Principal, donor_public_id: str, *, write: bool = False) -> Donor:
    """A donor of one of the principal's biobanks (404 otherwise); with write, 403 for viewers."""
    from biobank.donors import service as donors

    if principal.kind == UserKind.DONOR:
        raise NotFound(f"no donor {donor_public_id!r}", name="DonorNotFound")
    donor = donors.get(session, principal, donor_public_id, audit_read=False)
    if write and not principal.can_write(donor.biobank_id):
        raise NotPermitted("only the biobank's managers and technicians record consents")
    return donor


def own_donor(session: Session, principal: Principal) -> Donor:
    """The donor a portal user is (404 for anyone else)."""
    from biobank.donors import service as donors

    account = repo.account_of_user(session, principal.user_id) if principal.kind == UserKind.DONOR else None
    donor = donors.by_id(session, account.donor_id) if account else None
    if donor is None:
        raise NotFound("this account is not linked to a donor", name="DonorNotFound")
    return donor


# -- profiles ---------------------------------------------------------------------------------------------


def ensure_profile(session: Session, profile: ConsentProfile) -> str:
    """Store a profile once (idempotent under concurrency) and return its key."""
    key = profile_key(profile)
    if session.get(ConsentProfileRow, key) is None:
        values = {"key": key, "permission": profile.permission, "body": profile.canonical(), "created_at": utcnow()}
        dialect = session.get_bind().dialect.name
        if dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert as pg_insert

            session.execute(pg_insert(ConsentProfileRow).values(values).on_conflict_do_nothing())
        elif dialect == "sqlite":
            from sqlalchemy.dialects.sqlite import insert as sqlite_insert

            session.execute(sqlite_insert(ConsentProfileRow).values(values).on_conflict_do_nothing())
        else:  # pragma: no cover - other databases are not supported
            session.execute(insert(ConsentProfileRow).values(values))
    return key


def profile_of(session: Session, record: DonorConsent) -> ConsentProfile:
    """The DUO profile of a record."""
    row = repo.profile_rows(session, [record.profile_key])[record.profile_key]
    return ConsentProfile.from_canonical(row.body)


# -- scans ------------------------------------------------------------------------------------------------


def scans_dir() -> Path:
    """Where scanned paper consents are kept (content-addressed by SHA-256)."""
    return get_settings().data_dir / "consent-scans"


def _scan_path(sha256: str) -> Path:
    return scans_dir() / sha256[:2] / sha256


def store_scan(session: Session, principal: Principal, biobank_id: int, content: bytes, media_type: str) -> ConsentScan:
    """Keep a scanned paper consent (PDF, PNG, JPEG or TIFF up to 20 MB); its SHA-256 proves it unchanged."""
    if not principal.can_write(biobank_id):
        raise NotPermitted("only the biobank's managers and technicians upload consent scans")
    media_type = media_type.split(";")[0].strip().lower()
    if media_type not in SCAN_TYPES:
        raise Invalid.field("scan", "a scan is a PDF, PNG, JPEG or TIFF file", value=media_type)
    if not content:
        raise Invalid.field("scan", "the file is empty")
    if len(content) > MAX_SCAN_BYTES:
        raise Invalid.field("scan", f"the file is larger than {MAX_SCAN_BYTES // (1024 * 1024)} MB")
    if not content.startswith(SCAN_TYPES[media_type]):
        raise Invalid.field("scan", f"the file's content is not {media_type}")
    digest = hashlib.sha256(content).hexdigest()
    path = _scan_path(digest)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_bytes(content)
        os.replace(tmp, path)  # an aborted transaction leaves at most an unreferenced, content-named file
    scan = ConsentScan(
        public_id=new_uuid(),
        biobank_id=biobank_id,
        sha256=digest,
        media_type=media_type,
        size_bytes=len(content),
        uploaded_by=principal.public_id,
    )
    session.add(scan)
    session.flush()
    audit.record(
        session,
        principal,
        "consent.scan.upload",
        "consent_scan",
        [scan.public_id],
        details={"sha256": digest, "bytes": len(content)},
    )
    return scan


def read_scan(session: Session, principal: Principal, record: DonorConsent) -> tuple[bytes, str]:
    """The scan of a paper record, checked against its SHA-256 (staff of the biobank; audited)."""
    if not principal.can_read(record.biobank_id) or record.scan_id is None:
        raise NotFound("this record has no scan", name="ScanNotFound")
    scan = repo.scans_by_ids(session, [record.scan_id])[record.scan_id]
    content = _scan_path(scan.sha256).read_bytes()
    if hashlib.sha256(content).hexdigest() != scan.sha256:
        raise Invalid.field("scan", "the stored scan does not match its recorded SHA-256")
    audit.record(session, principal, "consent.scan.read", "consent", [record.public_id])
    return content, scan.media_type


# -- recording --------------------------------------------------------------------------------------------


def _vault() -> Vault:
    return Vault(get_settings().secret("vault_key"))


def resolve_version(session: Session, donor: Donor, ref: str) -> ConsentFormVersion:
    """A form version of the donor's biobank, or 422 naming `version`."""
    version = repo.version_by_public_id(session, ref)
    if version is not None:
        form = repo.forms_by_ids(session, [version.form_id])[version.form_id]
        if form.biobank_id == donor.biobank_id:
            return version
    raise Invalid.field("version", "unknown consent form version of the donor's biobank", value=ref)


@dataclass(frozen=True)
class Attestation:
    """How the consent was given: typed name (e-signature) and/or witness; sealed at rest."""

    signed_name: str | None = None
    witness: str | None = None


def record_consent(
    session: Session,
    principal: Principal,
    donor: Donor,
    data: ConsentRecordCreate,
    *,
    channel: str,
) -> DonorConsent:
    """Add a new version of a donor's consent; the previous one is kept, marked superseded."""
    now = utcnow()
    errors: list[FieldError] = []
    if channel == "staff" and data.method is not ConsentMethod.PAPER:
        errors.append(FieldError(["method"], "staff record paper consents; donors give electronic ones in the portal"))
    if channel == "portal" and data.method is not ConsentMethod.ELECTRONIC:
        errors.append(FieldError(["method"], "consents given in the portal are electronic"))
    if data.method is ConsentMethod.ELECTRONIC and not (data.signed_name or "").strip():
        errors.append(FieldError(["signed_name"], "type your full name to sign"))
    scan = None
    if data.method is ConsentMethod.PAPER:
        if not data.scan:
            errors.append(FieldError(["scan"], "attach the scanned paper form"))
        else:
            scan = repo.scan_by_public_id(session, data.scan)
            if scan is None or scan.biobank_id != donor.biobank_id:
                errors.append(FieldError(["scan"], "unknown scan", value=data.scan))
    version = resolve_version(session, donor, data.version)
    given_at = data.given_at or now
    if given_at < version.published_at:
        errors.append(
            FieldError(
                ["given_at"],
                f"is before form version {version.number} existed (published {version.published_at:%Y-%m-%d})",
            )
        )
    if given_at > now + CLOCK_SKEW:
        errors.append(FieldError(["given_at"], "is in the future"))
    valid_from = data.valid_from or given_at
    if data.valid_until is not None and data.valid_until <= valid_from:
        errors.append(FieldError(["valid_until"], "must be after the start of validity"))
    options = repo.options_of(session, [version.id])[version.id]
    try:
        check_choices(options, data.choices, f"v{version.number}")
    except Invalid as exc:
        errors += exc.errors
    if errors:
        raise Invalid(errors)
    profile = build_profile(options, data.choices, home_country=get_settings().institution_country)
    key = ensure_profile(session, profile)
    previous = repo.current_record(session, donor.id)
    (public_id,) = new_public_ids(session, get_settings().institution_code, "CNS")
    attestation = {k: v.strip() for k, v in (("signed_name", data.signed_name), ("witness", data.witness)) if v}
    repo.retire_current(session, donor.id)
    session.flush()
    record = DonorConsent(
        public_id=public_id,
        donor_id=donor.id,
        biobank_id=donor.biobank_id,
        form_version_id=version.id,
        version=repo.next_version(session, donor.id),
        supersedes_id=previous.id if previous else None,
        choices=dict(data.choices),
        profile_key=key,
        method=data.method,
        attestation_sealed=_vault().seal(attestation, bound_to=public_id) if attestation else None,
        signed_at=now if data.method is ConsentMethod.ELECTRONIC else None,
        has_witness=bool(data.witness),
        scan_id=scan.id if scan else None,
        given_at=given_at,
        valid_from=valid_from,
        valid_until=data.valid_until,
        status=ConsentStatus.ACTIVE,
        is_current=True,
        channel=channel,
        recorded_by=principal.public_id,
    )
    session.add(record)
    session.flush()
    notify_consent_changed(session, [donor.id])
    audit.record(
        session,
        principal,
        "consent.record.create",
        "consent",
        [donor.public_id, public_id],
        details={
            "version": record.version,
            "form_version": version.public_id,
            "method": data.method.value,
            "channel": channel,
            "permission": profile.permission,
            "profile": key,
        },
    )
    return record


def attestation_of(record: DonorConsent) -> Attestation:
    """The sealed typed name and witness of a record (staff views only; callers audit)."""
    if record.attestation_sealed is None:
        return Attestation()
    data = _vault().open(record.attestation_sealed, bound_to=record.public_id)
    return Attestation(signed_name=data.get("signed_name"), witness=data.get("witness"))


# -- reading ----------------------------------------------------------------------------------------------


def get_record(session: Session, principal: Principal, public_id: str) -> DonorConsent:
    """A record of one of the principal's biobanks, or the donor's own; 404 otherwise."""
    record = repo.record_by_public_id(session, public_id)
    if record is None:
        raise NotFound(f"no consent record {public_id!r}", name="ConsentNotFound")
    if principal.kind == UserKind.DONOR:
        if own_donor(session, principal).id != record.donor_id:
            raise NotFound(f"no consent record {public_id!r}", name="ConsentNotFound")
    elif not principal.can_read(record.biobank_id):
        raise NotFound(f"no consent record {public_id!r}", name="ConsentNotFound")
    audit.record(session, principal, action_name(principal, "record.read"), "consent", [record.public_id])
    return record


def timeline(session: Session, principal: Principal, donor: Donor) -> list[DonorConsent]:
    """Every version of a donor's consent, newest first (audited: consent data is personal data)."""
    records = repo.records_of(session, donor.id)
    audit.record(
        session,
        principal,
        action_name(principal, "timeline.read"),
        "consent",
        [donor.public_id],
        details={"records": len(records)},
    )
    return records


def current(session: Session, donor: Donor) -> DonorConsent | None:
    """The donor's current record (any status), or None."""
    return repo.current_record(session, donor.id)


def record_reads(session: Session, records: list[DonorConsent]) -> list[ConsentRecordRead]:
    """API views of records (a fixed number of queries)."""
    from biobank.consent.withdrawal import withdrawal_reads
    from biobank.donors import service as donors

    if not records:
        return []
    donor_ids = donors.public_ids_by_id(session, sorted({r.donor_id for r in records}))
    versions = repo.versions_by_ids(session, sorted({r.form_version_id for r in records}))
    forms = repo.forms_by_ids(session, sorted({v.form_id for v in versions.values()}))
    profiles = repo.profile_rows(session, sorted({r.profile_key for r in records}))
    scans = repo.scans_by_ids(session, sorted({r.scan_id for r in records if r.scan_id}))
    previous = repo.records_by_ids(session, sorted({r.supersedes_id for r in records if r.supersedes_id}))
    withdrawals = repo.withdrawals_by_consent(session, [r.id for r in records])
    withdrawal_views = {
        w.consent_id: v
        for w, v in zip(withdrawals.values(), withdrawal_reads(session, list(withdrawals.values())), strict=True)
    }
    out = []
    for r in records:
        version = versions[r.form_version_id]
        scan = scans.get(r.scan_id) if r.scan_id else None
        values: dict[str, Any] = {
            "public_id": r.public_id,
            "donor": donor_ids[r.donor_id],
            "version": r.version,
            "form": forms[version.form_id].public_id,
            "form_version": version.public_id,
            "form_version_number": version.number,
            "choices": r.choices,
            "profile": profiles[r.profile_key].body,
            "profile_key": r.profile_key,
            "method": r.method,
            "signed_at": r.signed_at,
            "has_witness": r.has_witness,
            "scan": ScanRead.model_validate(scan) if scan else None,
            "given_at": r.given_at,
            "valid_from": r.valid_from,
            "valid_until": r.valid_until,
            "status": r.status,
            "is_current": r.is_current,
            "channel": r.channel,
            "recorded_at": r.recorded_at,
            "supersedes": previous[r.supersedes_id].public_id if r.supersedes_id else None,
            "withdrawal": withdrawal_views.get(r.id),
        }
        out.append(ConsentRecordRead(**values))
    return out


def signable_version(session: Session, donor: Donor) -> ConsentFormVersion | None:
    """The version a donor signs in the portal: the newest of their current form, else of their biobank's first."""
    record = repo.current_record(session, donor.id)
    if record is not None:
        signed = repo.versions_by_ids(session, [record.form_version_id])[record.form_version_id]
        return repo.latest_version(session, signed.form_id)
    for form in repo.forms_of(session, [donor.biobank_id]):
        latest = repo.latest_version(session, form.id)
        if latest is not None:
            return latest
    return None


def options_of_version(session: Session, version: ConsentFormVersion) -> list[Any]:
    """The options of a version, in order."""
    return repo.options_of(session, [version.id])[version.id]
