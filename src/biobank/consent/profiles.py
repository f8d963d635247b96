"""From a donor's choices on a form version to a DUO profile, and the profile's canonical key."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from datetime import date

from biobank.consent.matcher import ConsentProfile, ExtraChoice
from biobank.consent.models import AppliesWhen, ConsentOption, OptionKind
from biobank.kit.errors import FieldError, Invalid

RESTRICTS_COMMERCIAL = frozenset({"NPU", "NCU", "NPUNCU"})


def profile_key(profile: ConsentProfile) -> str:
    """A stable 32-hex key of a profile: equal profiles, equal keys, on every node."""
    canonical = json.dumps(profile.canonical(), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:32]


def check_choices(options: Sequence[ConsentOption], choices: Mapping[str, bool], version_label: str) -> None:
    """Every choice is an option of the version; exactly one permission; every question answered."""
    errors: list[FieldError] = []
    by_code = {o.code: o for o in options}
    for code in choices:
        if code not in by_code:
            errors.append(FieldError(["choices", code], f"not an option of form version {version_label}", value=code))
        elif by_code[code].kind == OptionKind.CONDITION and choices[code] is False:
            errors.append(FieldError(["choices", code], "this condition is part of the form and cannot be declined"))
    permissions = [o for o in options if o.kind == OptionKind.PERMISSION]
    chosen = [o for o in permissions if choices.get(o.code)]
    if len(chosen) != 1:
        codes = ", ".join(o.code for o in permissions)
        errors.append(FieldError(["choices"], f"choose exactly one of the permission options: {codes}"))
    for option in options:
        if option.kind == OptionKind.CHOICE and option.code not in choices:
            errors.append(FieldError(["choices", option.code], "answer yes or no"))
    if errors:
        raise Invalid(errors)


def build_profile(
    options: Sequence[ConsentOption], choices: Mapping[str, bool], *, home_country: str
) -> ConsentProfile:
    """The DUO profile that a (checked) set of choices on a version's options amounts to."""
    permission = ""
    diseases: set[str] = set()
    modifiers: set[str] = set()
    country_sets: list[set[str]] = []
    months: list[int] = []
    moratoria: list[date] = []
    declined: set[str] = set()

    def apply(option: ConsentOption) -> None:
        modifiers.update(option.duo_modifiers or [])
        if option.countries:
            country_sets.append({c.upper() for c in option.countries})
        if option.months is not None:
            months.append(option.months)
        if option.moratorium_until is not None:
            moratoria.append(option.moratorium_until)

    for option in options:
        if option.kind == OptionKind.PERMISSION:
            if choices.get(option.code):
                permission = option.duo_permission or ""
                diseases.update(option.diseases or [])
                apply(option)
        elif option.kind == OptionKind.CONDITION:
            apply(option)
        else:
            answer = bool(choices.get(option.code, option.default))
            if answer == (option.applies_when == AppliesWhen.ACCEPTED):
                apply(option)
            if not answer and option.extra_choice:
                declined.add(option.extra_choice)
    # Declined extra choices that DUO can express become DUO modifiers even if the form did not map them.
    if ExtraChoice.COMMERCIAL in declined and not modifiers & RESTRICTS_COMMERCIAL:
        modifiers.add("NPUNCU")
    if ExtraChoice.CROSS_BORDER in declined:
        modifiers.add("GS")
        country_sets.append({home_country.upper()})
    # Several country lists (a GS option and a declined cross-border question) all apply: their
    # intersection. An empty intersection leaves GS without countries, which the matcher sends to review.
    countries: set[str] = set.intersection(*country_sets) if country_sets else set()
    return ConsentProfile.of(
        permission,
        diseases=diseases,
        modifiers=modifiers,
        countries=countries if "GS" in modifiers else (),
        months=min(months) if "TS" in modifiers and months else None,
        moratorium_until=max(moratoria) if "MOR" in modifiers and moratoria else None,
        declined=declined,
    )
