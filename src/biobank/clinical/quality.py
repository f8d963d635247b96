"""The data quality report of a collection's clinical data, computed and stored with its date.

Over the donors with held specimens in the collection it measures:

- completeness: the share of (donor, field) pairs of the minimum clinical dataset that are filled;
- code validity: the share of stored codes that are valid (ICD-10 in the WHO list, ICD-O-3 topography
  and morphology, TNM, stage, treatment and outcome vocabularies);
- consistency: the share of checks that pass (diagnosis on or before the first collection, age at
  collection and at diagnosis between 0 and 120, treatment start before end, follow-up and death not
  before diagnosis, no date in the future);
- coded share: coded values against free-text ones.

Reports are kept (one row each), so the valuation package reads the latest or the history.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sqlalchemy.orm import Session

from biobank.clinical import codes
from biobank.clinical import repository as repo
from biobank.clinical.models import ClinicalDiagnosis, TreatmentKind, VitalStatus
from biobank.kit.vocab import Sex

MAX_AGE = 120


@dataclass
class DonorFacts:
    """What is known of one donor for the report."""

    sex: str
    birth_year: int | None
    first_collection: date | None
    diagnoses: list[ClinicalDiagnosis] = field(default_factory=list)
    registry_codes: list[str] = field(default_factory=list)  # donors package diagnoses (ICD-10)
    observations: list[Any] = field(default_factory=list)
    treatments: list[Any] = field(default_factory=list)
    outcomes: list[Any] = field(default_factory=list)


FieldCheck = Callable[[DonorFacts], bool]

FIELD_CHECKS: dict[str, FieldCheck] = {
    "sex": lambda d: d.sex not in (Sex.UNKNOWN.value, ""),
    "birth_year": lambda d: d.birth_year is not None,
    "diagnosis.icd10": lambda d: any(x.icd10 for x in d.diagnoses) or bool(d.registry_codes),
    "diagnosis.text": lambda d: any(x.icd10 or x.text for x in d.diagnoses),
    "diagnosis.date": lambda d: any(x.diagnosed_on for x in d.diagnoses),
    "diagnosis.topography": lambda d: any(x.topography for x in d.diagnoses),
    "diagnosis.morphology": lambda d: any(x.morphology for x in d.diagnoses),
    "diagnosis.tnm": lambda d: any(x.tnm_t and x.tnm_n and x.tnm_m for x in d.diagnoses),
    "diagnosis.stage": lambda d: any(x.stage or (x.tnm_t and x.tnm_n and x.tnm_m) for x in d.diagnoses),
    "treatment": lambda d: bool(d.treatments),
    "outcome.vital_status": lambda d: any(o.vital_status not in (None, VitalStatus.UNKNOWN.value) for o in d.outcomes),
    "outcome.disease_status": lambda d: any(o.disease_status for o in d.outcomes),
    "outcome.date": lambda d: any(o.followed_up_on for o in d.outcomes),
}


def known_fields() -> list[str]:
    """Fields a minimum dataset may name (plus observation:<code>)."""
    return [*FIELD_CHECKS, "observation:<code>"]


def field_check(name: str) -> FieldCheck:
    """The check of one minimum-dataset field, or ValueError."""
    if name in FIELD_CHECKS:
        return FIELD_CHECKS[name]
    if name.startswith("observation:") and len(name) > len("observation:"):
        code = name.split(":", 1)[1]
        return lambda d: any(o.code == code for o in d.observations)
    raise ValueError(f"unknown field {name!r}; use one of: " + ", ".join(known_fields()))


def _share(good: int, total: int) -> float | None:
    return round(good / total, 4) if total else None


def gather(
    session: Session, donors: dict[int, Any], first_collection: dict[int, Any], registry: dict[int, list[Any]]
) -> list[DonorFacts]:
    """DonorFacts for each donor id (demographics from the donors package, records from ours)."""
    records = repo.records_of(session, sorted(donors))
    facts: dict[int, DonorFacts] = {}
    for donor_id, donor in donors.items():
        collected = first_collection.get(donor_id)
        facts[donor_id] = DonorFacts(
            sex=str(donor.sex),
            birth_year=donor.birth_year,
            first_collection=collected.date() if collected is not None else None,
            registry_codes=[d.icd10 for d in registry.get(donor_id, [])],
        )
    for kind, rows in records.items():
        for row in rows:
            getattr(facts[row.donor_id], kind).append(row)
    return list(facts.values())


def measure(facts: list[DonorFacts], minimum_dataset: list[str], *, today: date) -> dict[str, Any]:
    """The four measures and their details."""
    checks = {name: field_check(name) for name in minimum_dataset}
    by_field = {name: sum(1 for d in facts if check(d)) for name, check in checks.items()}
    filled = sum(by_field.values())
    possible = len(facts) * len(checks)
    validity: dict[str, list[int]] = {}

    def code(system: str, ok: bool) -> None:
        entry = validity.setdefault(system, [0, 0])
        entry[0] += int(ok)
        entry[1] += 1

    consistency: dict[str, list[int]] = {}

    def check(name: str, ok: bool) -> None:
        entry = consistency.setdefault(name, [0, 0])
        entry[0] += int(not ok)
        entry[1] += 1

    coded = free = 0
    treatment_kinds = {k.value for k in TreatmentKind}
    for d in facts:
        for registry_code in d.registry_codes:
            code("ICD-10", codes.is_valid_icd10(registry_code))
        dx_dates = [x.diagnosed_on for x in d.diagnoses if x.diagnosed_on]
        for x in d.diagnoses:
            if x.icd10:
                code("ICD-10", codes.is_valid_icd10(x.icd10))
                coded += 1
            elif x.text:
                free += 1
            if x.topography:
                code("ICD-O-3 topography", codes.is_valid_topography(x.topography))
            if x.morphology:
                code("ICD-O-3 morphology", codes.is_valid_morphology(x.morphology))
            if x.tnm_t or x.tnm_n or x.tnm_m:
                code("TNM", codes.is_valid_tnm(x.tnm_t, x.tnm_n, x.tnm_m))
            if x.stage:
                code("stage", bool(codes.STAGE.match(x.stage)))
            if x.diagnosed_on:
                check("date not in the future", x.diagnosed_on <= today)
                if d.first_collection:
                    check("diagnosis on or before collection", x.diagnosed_on <= d.first_collection)
                if d.birth_year is not None:
                    check("plausible age at diagnosis", 0 <= x.diagnosed_on.year - d.birth_year <= MAX_AGE)
        if d.first_collection and d.birth_year is not None:
            check("plausible age at collection", 0 <= d.first_collection.year - d.birth_year <= MAX_AGE)
        if d.birth_year is not None:
            check("birth year not in the future", d.birth_year <= today.year)
        for t in d.treatments:
            if t.kind:
                code("treatment", t.kind in treatment_kinds)
                is_free = t.kind == TreatmentKind.OTHER.value and bool(t.text)
                coded += int(not is_free)
                free += int(is_free)
            elif t.text:
                free += 1
            if t.started_on and t.ended_on:
                check("treatment starts before it ends", t.started_on <= t.ended_on)
            if t.started_on:
                check("date not in the future", t.started_on <= today)
        for o in d.outcomes:
            if o.vital_status or o.disease_status:
                code("outcome", (o.vital_status or "alive") in {v.value for v in VitalStatus})
                coded += 1
            elif o.text:
                free += 1
            first_dx = min(dx_dates) if dx_dates else None
            if o.followed_up_on:
                check("date not in the future", o.followed_up_on <= today)
                if first_dx:
                    check("follow-up not before diagnosis", o.followed_up_on >= first_dx)
            if o.died_on:
                if first_dx:
                    check("death not before diagnosis", o.died_on >= first_dx)
                check("vital status agrees with the death date", o.vital_status != VitalStatus.ALIVE.value)
        for obs in d.observations:
            coded += 1
            if obs.observed_on:
                check("date not in the future", obs.observed_on <= today)
    failed = sum(v[0] for v in consistency.values())
    checked = sum(v[1] for v in consistency.values())
    valid = sum(v[0] for v in validity.values())
    total_codes = sum(v[1] for v in validity.values())
    return {
        "completeness": _share(filled, possible),
        "code_validity": _share(valid, total_codes),
        "consistency": _share(checked - failed, checked),
        "coded_share": _share(coded, coded + free),
        "details": {
            "completeness_by_field": {name: _share(n, len(facts)) for name, n in by_field.items()},
            "validity": {k: {"valid": v[0], "total": v[1]} for k, v in sorted(validity.items())},
            "consistency": {k: {"failed": v[0], "checked": v[1]} for k, v in sorted(consistency.items())},
            "coded": {"coded": coded, "free_text": free},
        },
    }
