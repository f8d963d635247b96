"""Specimen rules shared by the API service and the bulk importer: one place says what is valid.

Each check returns FieldErrors (field name + message) instead of raising, so the importer can report
every problem of every row while the service raises them together as one Invalid.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta

from biobank.kit.db import utcnow
from biobank.kit.errors import FieldError
from biobank.kit.validation import is_icd10
from biobank.specimens import sprec
from biobank.specimens.models import TRANSITIONS, ConcentrationUnit, QuantityUnit, Status

BARCODE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._\-/]{2,63}$")
# ICD-O-3 topography: C00.0 – C80.9 (the dot is optional on input).
TOPOGRAPHY_RE = re.compile(r"^C(?:[0-7]\d|80)(?:\.?\d)?$")
CLOCK_SKEW = timedelta(minutes=5)
TIME_ORDER = ("collected_at", "received_at", "processed_at", "frozen_at")
VOLUME_UNITS = {QuantityUnit.ML: 1.0, QuantityUnit.UL: 0.001}
MASS_UNITS = {QuantityUnit.G: 1.0, QuantityUnit.MG: 1e-3, QuantityUnit.UG: 1e-6, QuantityUnit.NG: 1e-9}
EPSILON = 1e-9


def check_barcode(barcode: str, field: str = "barcode") -> list[FieldError]:
    """A barcode is 3 to 64 letters, digits or . _ - / (what Code128 label printers accept)."""
    if not BARCODE_RE.match(barcode or ""):
        return [
            FieldError([field], "3 to 64 letters, digits or . _ - /, starting with a letter or digit", value=barcode)
        ]
    return []


def normalise_topography(code: str) -> str:
    """ICD-O-3 topography in dotted form (C341 → C34.1)."""
    code = code.strip().upper()
    return code[:3] + "." + code[3:] if len(code) == 4 and "." not in code else code


def check_codes(*, diagnosis: str | None, anatomical_site: str | None, sprec_code: str | None) -> list[FieldError]:
    """ICD-10 diagnosis, ICD-O-3 topography and SPREC code, each element of SPREC checked."""
    errors: list[FieldError] = []
    if diagnosis and not is_icd10(diagnosis):
        errors.append(FieldError(["diagnosis"], "not an ICD-10 (WHO) code", value=diagnosis))
    if anatomical_site and not TOPOGRAPHY_RE.match(anatomical_site.strip().upper()):
        errors.append(
            FieldError(["anatomical_site"], "not an ICD-O-3 topography code (C00.0–C80.9)", value=anatomical_site)
        )
    if sprec_code:
        for issue in sprec.validate(sprec_code):
            errors.append(FieldError(["sprec_code"], issue.message, value=sprec_code))
    return errors


def check_times(times: dict[str, datetime | None], *, now: datetime | None = None) -> list[FieldError]:
    """Collection, reception, processing and freezing happen in that order and not in the future."""
    now = now or utcnow()
    errors: list[FieldError] = []
    previous: tuple[str, datetime] | None = None
    for name in TIME_ORDER:
        value = times.get(name)
        if value is None:
            continue
        if value.tzinfo is None:
            errors.append(FieldError([name], "give a time zone (e.g. 2026-01-31T09:30:00+08:00)"))
            continue
        if value > now + CLOCK_SKEW:
            errors.append(FieldError([name], "is in the future", value=value.isoformat()))
        if previous is not None and value < previous[1]:
            errors.append(
                FieldError([name], f"is before {previous[0]} ({previous[1].isoformat()})", value=value.isoformat())
            )
        previous = (name, value)
    return errors


def check_quantity(quantity: float | None, unit: str | None, *, field: str = "quantity") -> list[FieldError]:
    """A quantity is not negative and always carries a unit."""
    errors: list[FieldError] = []
    if quantity is not None:
        if quantity != quantity or quantity < 0:  # NaN or negative
            errors.append(FieldError([field], "must be zero or more", value=quantity))
        if not unit:
            errors.append(FieldError([f"{field}_unit"], "a quantity needs its unit"))
    if unit and unit not in {u.value for u in QuantityUnit}:
        errors.append(
            FieldError(
                [f"{field}_unit"], "unknown unit; use one of " + ", ".join(u.value for u in QuantityUnit), value=unit
            )
        )
    return errors


def check_concentration(value: float | None, unit: str | None) -> list[FieldError]:
    """A concentration is positive and carries its unit."""
    errors: list[FieldError] = []
    if value is not None:
        if value != value or value < 0:
            errors.append(FieldError(["concentration"], "must be zero or more", value=value))
        if not unit:
            errors.append(FieldError(["concentration_unit"], "a concentration needs its unit"))
    if unit and unit not in {u.value for u in ConcentrationUnit}:
        errors.append(
            FieldError(
                ["concentration_unit"],
                "unknown unit; use one of " + ", ".join(u.value for u in ConcentrationUnit),
                value=unit,
            )
        )
    return errors


def convert_quantity(value: float, unit: str, target_unit: str) -> float:
    """Convert between volume units or between mass units; ValueError when they do not mix."""
    for table in (VOLUME_UNITS, MASS_UNITS):
        if unit in table and target_unit in table:
            return value * table[QuantityUnit(unit)] / table[QuantityUnit(target_unit)]
    if unit == target_unit:
        return value
    raise ValueError(f"cannot convert {unit} to {target_unit}")


def check_transition(current: Status, target: Status) -> list[FieldError]:
    """Only the lifecycle's allowed transitions."""
    if target == current:
        return [FieldError(["status"], f"the specimen is already {current.value}", value=target.value)]
    if target not in TRANSITIONS[current]:
        allowed = ", ".join(sorted(s.value for s in TRANSITIONS[current])) or "none (final state)"
        return [
            FieldError(
                ["status"], f"cannot go from {current.value} to {target.value}; allowed: {allowed}", value=target.value
            )
        ]
    return []


def derive_sprec(
    *,
    sample_type: str,
    container: str | None,
    collected_at: datetime | None,
    processed_at: datetime | None,
    frozen_at: datetime | None,
) -> str | None:
    """A SPREC code derived from the recorded facts, or None when the type is not a fluid SPREC type.

    The long-term storage element encodes the tube and temperature together; we do not record the
    tube type, so it stays "unknown" (X) rather than being guessed.
    """
    type_code = sprec.MIABIS_TO_SPREC_TYPE.get(sample_type)
    if type_code is None or type_code not in sprec.SPREC_FLUID_TYPES or collected_at is None:
        return None
    try:
        return sprec.derive_fluid(
            type_code, container or "XXX", collected_at=collected_at, centrifuged_at=processed_at, frozen_at=frozen_at
        )
    except sprec.SprecInvalid:
        return None
