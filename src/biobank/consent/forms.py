"""Consent forms, their published versions with DUO-mapped options, and the versions collections accept."""

from __future__ import annotations

from sqlalchemy.orm import Session

from biobank import audit
from biobank.config import get_settings
from biobank.consent import repository as repo
from biobank.consent.models import ConsentForm, ConsentFormVersion, ConsentOption
from biobank.consent.schemas import AcceptedVersions, FormCreate, FormRead, OptionRead, VersionCreate, VersionRead
from biobank.identity.principal import Principal
from biobank.institutions import service as institutions
from biobank.kit.db import flush_or_conflict, utcnow
from biobank.kit.errors import FieldError, Invalid, NotFound, NotPermitted
from biobank.kit.ids import new_public_ids

UNIQUE_FORM = {
    "uq_consent_forms_biobank_id": ("FormExists", "the biobank already has a form with that code"),
    "consent_forms.biobank_id, consent_forms.code": ("FormExists", "the biobank already has a form with that code"),
}


def create_form(session: Session, principal: Principal, data: FormCreate) -> ConsentForm:
    """Create a consent form in a biobank (its managers)."""
    biobank = institutions.get_biobank(session, data.biobank)
    if not principal.can_read(biobank.id):
        raise Invalid.field("biobank", "unknown biobank", value=data.biobank)
    if not principal.can_manage(biobank.id):
        raise NotPermitted("only the biobank's managers create consent forms")
    (public_id,) = new_public_ids(session, get_settings().institution_code, "CFM")
    form = ConsentForm(
        public_id=public_id, biobank_id=biobank.id, code=data.code, title_en=data.title_en, title_zh=data.title_zh
    )
    session.add(form)
    flush_or_conflict(session, UNIQUE_FORM)
    audit.record(session, principal, "consent.form.create", "consent_form", [public_id])
    return form


def get_form(session: Session, principal: Principal, public_id: str) -> ConsentForm:
    """A form of one of the principal's biobanks, or 404."""
    form = repo.form_by_public_id(session, public_id)
    if form is None or not principal.can_read(form.biobank_id):
        raise NotFound(f"no consent form {public_id!r}", name="ConsentFormNotFound")
    return form


def list_forms(session: Session, principal: Principal) -> list[ConsentForm]:
    """Forms of the principal's biobanks."""
    return repo.forms_of(session, principal.visible_biobank_ids())


def add_version(session: Session, principal: Principal, form: ConsentForm, data: VersionCreate) -> ConsentFormVersion:
    """Publish a new version of a form; versions are immutable once published."""
    if not principal.can_manage(form.biobank_id):
        raise NotPermitted("only the biobank's managers publish consent form versions")
    latest = repo.latest_version(session, form.id)
    published_at = data.published_at or utcnow()
    if latest is not None and published_at < latest.published_at:
        raise Invalid.field("published_at", f"is before version {latest.number} was published")
    number = (latest.number if latest else 0) + 1
    version = ConsentFormVersion(
        public_id=f"{form.public_id}.v{number}",
        form_id=form.id,
        number=number,
        text_en=data.text_en,
        text_zh=data.text_zh,
        published_at=published_at,
        created_by=principal.public_id,
    )
    session.add(version)
    session.flush()
    for position, option in enumerate(data.options):
        values = option.model_dump(mode="json")
        values["moratorium_until"] = option.moratorium_until
        session.add(ConsentOption(version_id=version.id, position=position, **values))
    session.flush()
    audit.record(
        session,
        principal,
        "consent.version.publish",
        "consent_form",
        [form.public_id, version.public_id],
        details={"number": number, "options": len(data.options)},
    )
    return version


def get_version(session: Session, principal: Principal, public_id: str) -> ConsentFormVersion:
    """A version of a form of the principal's biobanks, or 404."""
    version = repo.version_by_public_id(session, public_id)
    if version is None:
        raise NotFound(f"no consent form version {public_id!r}", name="ConsentVersionNotFound")
    form = repo.forms_by_ids(session, [version.form_id])[version.form_id]
    if not principal.can_read(form.biobank_id):
        raise NotFound(f"no consent form version {public_id!r}", name="ConsentVersionNotFound")
    return version


def form_reads(session: Session, forms: list[ConsentForm]) -> list[FormRead]:
    """API views of forms (fixed number of queries)."""
    codes = institutions.biobank_codes(session, sorted({f.biobank_id for f in forms}))
    versions = repo.versions_of(session, [f.id for f in forms])
    out = []
    for f in forms:
        ids = [v.public_id for v in versions[f.id]]
        out.append(
            FormRead(
                public_id=f.public_id,
                biobank=codes[f.biobank_id],
                code=f.code,
                title_en=f.title_en,
                title_zh=f.title_zh,
                versions=ids,
                latest_version=ids[-1] if ids else None,
            )
        )
    return out


def version_reads(session: Session, versions: list[ConsentFormVersion]) -> list[VersionRead]:
    """API views of versions with their options."""
    forms = repo.forms_by_ids(session, sorted({v.form_id for v in versions}))
    options = repo.options_of(session, [v.id for v in versions])
    return [
        VersionRead(
            public_id=v.public_id,
            form=forms[v.form_id].public_id,
            number=v.number,
            text_en=v.text_en,
            text_zh=v.text_zh,
            published_at=v.published_at,
            options=[OptionRead.model_validate(o) for o in options[v.id]],
        )
        for v in versions
    ]


def set_accepted(
    session: Session, principal: Principal, collection_public_id: str, data: AcceptedVersions
) -> list[str]:
    """Say which form versions a collection accepts (its biobank's managers); empty accepts every version."""
    collection = institutions.get_collection(session, collection_public_id)
    if not principal.can_read(collection.biobank_id):
        raise NotFound(f"no collection {collection_public_id!r}", name="CollectionNotFound")
    if not principal.can_manage(collection.biobank_id):
        raise NotPermitted("only the biobank's managers change what its collections accept")
    found = repo.versions_by_public_ids(session, data.versions)
    forms = repo.forms_by_ids(session, sorted({v.form_id for v in found.values()}))
    errors = []
    for i, ref in enumerate(data.versions):
        version = found.get(ref)
        if version is None or forms[version.form_id].biobank_id != collection.biobank_id:
            errors.append(FieldError(["versions", i], "unknown form version of this biobank", value=ref))
    if errors:
        raise Invalid(errors)
    ids = list(dict.fromkeys(found[ref].id for ref in data.versions))
    repo.set_accepted_versions(session, collection.id, ids)
    session.flush()
    audit.record(
        session,
        principal,
        "consent.collection.accept",
        "collection",
        [collection.public_id],
        details={"versions": ",".join(data.versions)},
    )
    return list(dict.fromkeys(data.versions))


def accepted(session: Session, principal: Principal, collection_public_id: str) -> list[str]:
    """The version public ids a collection accepts (empty: all)."""
    collection = institutions.get_collection(session, collection_public_id)
    ids = repo.accepted_versions(session, [collection.id]).get(collection.id, set())
    return sorted(v.public_id for v in repo.versions_by_ids(session, sorted(ids)).values())
