"""Donor use cases: register with a keyed pseudonym, keep identity in the vault, reveal it only to managers."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from biobank import audit
from biobank.config import get_settings
from biobank.donors import repository as repo
from biobank.donors.models import Donor, DonorDiagnosis, DonorVault
from biobank.donors.schemas import DiagnosisIn, DiagnosisRead, DonorCreate, DonorIdentity, DonorRead, DonorUpdate
from biobank.identity.principal import Principal
from biobank.institutions import service as institutions
from biobank.kit.crypto import Vault, derive_key, pseudonym
from biobank.kit.errors import Conflict, NotFound, NotPermitted
from biobank.kit.ids import new_public_ids
from biobank.kit.pagination import PageParams, paginate

DONOR_SORTS = {
    "id": Donor.id,
    "public_id": Donor.public_id,
    "birth_year": Donor.birth_year,
    "created_at": Donor.created_at,
}


def pseudonym_for(patient_id: str) -> str:
    """The donor pseudonym of a hospital patient id: an HMAC keyed per institution."""
    settings = get_settings()
    key = derive_key(settings.secret("pseudonym_key"), f"donor-pseudonym:{settings.institution_code}")
    return pseudonym(key, patient_id)


def vault() -> Vault:
    """The vault cipher for identifying data."""
    return Vault(get_settings().secret("vault_key"))


def register(session: Session, principal: Principal, data: DonorCreate) -> Donor:
    """Register a donor in a biobank; the same patient cannot be registered twice there."""
    biobank = institutions.get_biobank(session, data.biobank)
    if not principal.can_read(biobank.id):
        raise NotFound(f"no biobank {data.biobank!r}", name="BiobankNotFound")
    if not principal.can_write(biobank.id):
        raise NotPermitted("only managers and technicians register donors")
    code = pseudonym_for(data.patient_id)
    existing = repo.by_pseudonym(session, biobank.id, code)
    if existing is not None:
        raise Conflict(f"this patient is already registered as donor {existing.public_id}", name="DonorExists")
    (public_id,) = new_public_ids(session, get_settings().institution_code, "DON")
    donor = Donor(public_id=public_id, biobank_id=biobank.id, pseudonym=code, sex=data.sex, birth_year=data.birth_year)
    session.add(donor)
    session.flush()
    identity = {"name": data.name, "patient_id": data.patient_id, "contact": data.contact}
    session.add(DonorVault(donor_id=donor.id, sealed=vault().seal(identity, bound_to=public_id)))
    _add_diagnoses(session, donor, data.diagnoses)
    session.flush()
    audit.record(session, principal, "donor.create", "donor", [public_id])
    return donor


def _add_diagnoses(session: Session, donor: Donor, diagnoses: list[DiagnosisIn]) -> None:
    seen: set[str] = set()
    for item in diagnoses:
        if item.icd10 in seen:
            continue
        seen.add(item.icd10)
        session.add(
            DonorDiagnosis(
                donor_id=donor.id, icd10=item.icd10, diagnosed_on=item.diagnosed_on, is_primary=item.is_primary
            )
        )


def get(session: Session, principal: Principal, public_id: str, *, audit_read: bool = True) -> Donor:
    """A donor the principal may see, or 404."""
    donor = repo.by_public_id(session, principal, public_id)
    if donor is None:
        raise NotFound(f"no donor {public_id!r}", name="DonorNotFound")
    if audit_read:
        audit.record(session, principal, "donor.read", "donor", [public_id])
    return donor


def list_page(
    session: Session,
    principal: Principal,
    params: PageParams,
    *,
    biobank: str | None = None,
) -> tuple[list[Donor], int]:
    """A page of the donors the principal may see."""
    params = params.validated(DONOR_SORTS)
    stmt = repo.visible(principal)
    if biobank:
        stmt = stmt.where(Donor.biobank_id == institutions.get_biobank(session, biobank).id)
    rows, total = paginate(session, stmt, params, DONOR_SORTS, "-id")
    audit.record(
        session,
        principal,
        "donor.list",
        "donor",
        [],
        details={"biobank": biobank, "page": params.page, "returned": len(rows)},
    )
    return rows, total


def update(session: Session, principal: Principal, donor: Donor, data: DonorUpdate) -> Donor:
    """Correct a donor's sex, birth year or vault fields."""
    if not principal.can_write(donor.biobank_id):
        raise NotPermitted("only managers and technicians edit donors")
    changes = data.model_dump(exclude_unset=True)
    for key in ("sex", "birth_year"):
        if key in changes:
            setattr(donor, key, changes[key])
    if "name" in changes or "contact" in changes:
        record = repo.vault_of(session, donor.id)
        current = vault().open(record.sealed, bound_to=donor.public_id) if record else {}
        current.update({k: changes[k] for k in ("name", "contact") if k in changes and changes[k] is not None})
        if record is None:
            session.add(DonorVault(donor_id=donor.id, sealed=vault().seal(current, bound_to=donor.public_id)))
        else:
            record.sealed = vault().seal(current, bound_to=donor.public_id)
    session.flush()
    audit.record(
        session, principal, "donor.update", "donor", [donor.public_id], details={"fields": ",".join(sorted(changes))}
    )
    return donor


def add_diagnosis(session: Session, principal: Principal, donor: Donor, data: DiagnosisIn) -> DonorDiagnosis:
    """Record a diagnosis of a donor (ICD-10)."""
    if not principal.can_write(donor.biobank_id):
        raise NotPermitted("only managers and technicians edit donors")
    existing = repo.diagnoses_of(session, [donor.id])[donor.id]
    if any(d.icd10 == data.icd10 for d in existing):
        raise Conflict(f"the donor already has diagnosis {data.icd10}", name="DiagnosisExists")
    diagnosis = DonorDiagnosis(
        donor_id=donor.id, icd10=data.icd10, diagnosed_on=data.diagnosed_on, is_primary=data.is_primary
    )
    session.add(diagnosis)
    session.flush()
    audit.record(session, principal, "donor.diagnosis.add", "donor", [donor.public_id], details={"icd10": data.icd10})
    return diagnosis


def reveal_identity(session: Session, principal: Principal, donor: Donor, *, reason: str) -> DonorIdentity:
    """Decrypt a donor's identifying data: managers only, with a reason, always audited."""
    if not principal.can_manage(donor.biobank_id):
        raise NotPermitted("only the biobank's managers may see identifying data")
    if not reason.strip():
        from biobank.kit.errors import Invalid

        raise Invalid.field("reason", "say why the identity is needed")
    record = repo.vault_of(session, donor.id)
    data = vault().open(record.sealed, bound_to=donor.public_id) if record else {}
    audit.record(
        session, principal, "donor.identity.read", "donor", [donor.public_id], details={"reason": reason[:200]}
    )
    return DonorIdentity(
        public_id=donor.public_id,
        name=data.get("name", ""),
        patient_id=data.get("patient_id", ""),
        contact=data.get("contact", ""),
    )


def find_by_patient_id(session: Session, principal: Principal, biobank_code: str, patient_id: str) -> Donor:
    """Look a donor up by the hospital patient id (through its pseudonym; nothing is decrypted)."""
    biobank = institutions.get_biobank(session, biobank_code)
    if not principal.can_read(biobank.id):
        raise NotFound("no such donor", name="DonorNotFound")
    donor = repo.by_pseudonym(session, biobank.id, pseudonym_for(patient_id))
    if donor is None:
        raise NotFound("no such donor", name="DonorNotFound")
    audit.record(session, principal, "donor.lookup", "donor", [donor.public_id])
    return donor


def diagnoses(session: Session, donor_ids: list[int]) -> dict[int, list[DonorDiagnosis]]:
    """Diagnoses per donor id."""
    return repo.diagnoses_of(session, donor_ids)


def count_visible(session: Session, principal: Principal) -> int:
    """How many donors the principal can see."""
    return session.execute(select(func.count()).select_from(repo.visible(principal).subquery())).scalar_one()


def by_public_ids(session: Session, public_ids: list[str]) -> dict[str, Donor]:
    """Donors by public id, unscoped (callers check the biobank)."""
    return repo.by_public_ids(session, public_ids)


def public_ids_by_id(session: Session, donor_ids: list[int]) -> dict[int, str]:
    """Donor public ids by row id (for read schemas of other packages)."""
    if not donor_ids:
        return {}
    rows = session.execute(select(Donor.id, Donor.public_id).where(Donor.id.in_(donor_ids)))
    return {donor_id: public_id for donor_id, public_id in rows}


def to_read(session: Session, donors: list[Donor]) -> list[DonorRead]:
    """Views of donors with their biobank code and diagnoses (a fixed number of queries)."""
    codes = institutions.biobank_codes(session, sorted({d.biobank_id for d in donors}))
    by_donor = repo.diagnoses_of(session, [d.id for d in donors])
    return [
        DonorRead(
            public_id=d.public_id,
            biobank=codes[d.biobank_id],
            sex=d.sex,
            birth_year=d.birth_year,
            diagnoses=[DiagnosisRead.model_validate(x) for x in by_donor[d.id]],
            created_at=d.created_at,
        )
        for d in donors
    ]


def by_id(session: Session, donor_id: int) -> Donor | None:
    """A donor by row id, unscoped (the consent portal resolves a donor's own account with it)."""
    return session.get(Donor, donor_id)


# -- for the catalogue, clinical and interop packages ----------------------------------------------------


def demographics() -> Any:
    """Donors as a subquery of (donor_id, biobank_id, sex, birth_year) for aggregate joins of other packages."""
    return select(
        Donor.id.label("donor_id"),
        Donor.biobank_id.label("biobank_id"),
        Donor.sex.label("sex"),
        Donor.birth_year.label("birth_year"),
    ).subquery("donor_demographics")


def by_pseudonyms(session: Session, biobank_id: int, pseudonyms: list[str]) -> dict[str, Donor]:
    """Donors of a biobank by pseudonym, in batches (bulk imports resolve hospital patient ids with it)."""
    out: dict[str, Donor] = {}
    for i in range(0, len(pseudonyms), 900):
        out.update(repo.by_pseudonyms(session, biobank_id, pseudonyms[i : i + 900]))
    return out


def by_ids(session: Session, donor_ids: list[int]) -> dict[int, Donor]:
    """Donors by row id, unscoped (callers check the biobank)."""
    out: dict[int, Donor] = {}
    for i in range(0, len(donor_ids), 900):
        part = donor_ids[i : i + 900]
        out.update({d.id: d for d in session.scalars(select(Donor).where(Donor.id.in_(part)))})
    return out


def visible_batch(
    session: Session, principal: Principal, *, biobank_id: int | None = None, after_id: int = 0, limit: int = 500
) -> list[Donor]:
    """Donors the principal may see, in id order after `after_id` (keyset paging for exports)."""
    stmt = repo.visible(principal).where(Donor.id > after_id)
    if biobank_id is not None:
        stmt = stmt.where(Donor.biobank_id == biobank_id)
    return list(session.scalars(stmt.order_by(Donor.id).limit(limit)))


def pseudonyms_for(patient_ids: list[str]) -> dict[str, str]:
    """The pseudonyms of many hospital patient ids at once (the same as pseudonym_for, key derived once)."""
    settings = get_settings()
    key = derive_key(settings.secret("pseudonym_key"), f"donor-pseudonym:{settings.institution_code}")
    return {patient_id: pseudonym(key, patient_id) for patient_id in patient_ids}


def ids_by_pseudonyms(session: Session, biobank_id: int, pseudonyms: list[str]) -> dict[str, int]:
    """Donor row ids of a biobank by pseudonym, without loading the donors (bulk imports)."""
    out: dict[str, int] = {}
    for i in range(0, len(pseudonyms), 900):
        part = pseudonyms[i : i + 900]
        stmt = select(Donor.pseudonym, Donor.id).where(Donor.biobank_id == biobank_id, Donor.pseudonym.in_(part))
        out.update({p: donor_id for p, donor_id in session.execute(stmt)})
    return out
