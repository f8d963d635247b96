"""The matcher: one consent profile against one research purpose → APPROVE / DENY / NEEDS_REVIEW.

Pure and fast (no database, no pydantic): eligibility decides once per distinct consent profile and
the catalogue calls it for every count, so inputs are frozen dataclasses and ICD-10 ancestor sets are
cached. The rules are those of STANDARDS.md (GA4GH DUO), each producing exactly one reason:

- every rule must approve; a rule that cannot decide from what the purpose states hands the case to a
  reviewer (NEEDS_REVIEW); any rule that denies makes the decision DENY; with no approving permission
  rule the answer is DENY (deny by default);
- obligations that are future commitments (PUB, RTN, MOR, TS) approve with a *condition* the access
  agreement must carry, unless the purpose already states it complies (or states it will not: deny);
- obligations that are facts about the request (IRB, COL, GS, GSO, PS, NPU, NCU, NPUNCU) are checked
  against what the purpose states: stated and satisfied → approve, stated and not → deny, not stated
  → review. US, IS and RS always go to review (their parameters are not machine-readable here).

docs/consent.md has the full table.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from enum import StrEnum
from functools import lru_cache
from typing import NamedTuple

from biobank.consent.duo import DUO_IDS, Modifier, Permission, PurposeCategory
from biobank.kit.validation import icd10_ancestors, is_icd10


class Verdict(StrEnum):
    """The decision on one consent profile for one purpose."""

    APPROVE = "APPROVE"
    DENY = "DENY"
    NEEDS_REVIEW = "NEEDS_REVIEW"


class RuleOutcome(StrEnum):
    """What one rule said."""

    APPROVE = "approve"
    CONDITION = "condition"
    REVIEW = "review"
    DENY = "deny"


class ExtraChoice(StrEnum):
    """Questions a consent form asks besides the DUO permission (each answered yes or no)."""

    STORAGE = "storage"
    GENETIC = "genetic"
    COMMERCIAL = "commercial"
    CROSS_BORDER = "cross_border"
    DATA_LINKAGE = "data_linkage"
    RECONTACT = "recontact"
    INCIDENTAL_FINDINGS = "incidental_findings"


# Declined extra choices the matcher checks itself (commercial use and cross-border sharing are turned
# into NPUNCU and GS when the profile is built; recontact and incidental findings do not restrict use).
MATCHED_DECLINES = frozenset({ExtraChoice.STORAGE, ExtraChoice.GENETIC, ExtraChoice.DATA_LINKAGE})

MODIFIER_ORDER: tuple[str, ...] = tuple(m.value for m in Modifier)
_MODIFIER_RANK = {m: i for i, m in enumerate(MODIFIER_ORDER)}


@dataclass(frozen=True, slots=True)
class ConsentProfile:
    """What a donor's consent allows, in DUO terms; equal profiles decide equally (hashable)."""

    permission: str
    diseases: frozenset[str] = frozenset()
    modifiers: tuple[str, ...] = ()  # canonical order (MODIFIER_ORDER), no duplicates
    countries: frozenset[str] = frozenset()
    months: int | None = None
    moratorium_until: date | None = None
    projects: frozenset[str] = frozenset()
    declined: frozenset[str] = frozenset()

    @staticmethod
    def of(
        permission: str,
        *,
        diseases: Iterable[str] = (),
        modifiers: Iterable[str] = (),
        countries: Iterable[str] = (),
        months: int | None = None,
        moratorium_until: date | None = None,
        projects: Iterable[str] = (),
        declined: Iterable[str] = (),
    ) -> ConsentProfile:
        """Build a profile with its collections normalised (sets, modifiers in canonical order)."""
        mods = sorted({str(m) for m in modifiers}, key=lambda m: _MODIFIER_RANK.get(m, 999))
        return ConsentProfile(
            permission=str(permission),
            diseases=frozenset(str(d) for d in diseases),
            modifiers=tuple(mods),
            countries=frozenset(str(c).upper() for c in countries),
            months=months,
            moratorium_until=moratorium_until,
            projects=frozenset(str(p) for p in projects),
            declined=frozenset(str(d) for d in declined if d in MATCHED_DECLINES),
        )

    def canonical(self) -> dict[str, object]:
        """A JSON-ready, order-independent form (what profile keys hash)."""
        return {
            "permission": self.permission,
            "diseases": sorted(self.diseases),
            "modifiers": list(self.modifiers),
            "countries": sorted(self.countries),
            "months": self.months,
            "moratorium_until": self.moratorium_until.isoformat() if self.moratorium_until else None,
            "projects": sorted(self.projects),
            "declined": sorted(self.declined),
        }

    @staticmethod
    def from_canonical(data: dict[str, object]) -> ConsentProfile:
        """The profile of a canonical() dict."""
        mor = data.get("moratorium_until")
        months = data.get("months")

        def strings(key: str) -> list[str]:
            value = data.get(key)
            return [str(v) for v in value] if isinstance(value, list | tuple) else []

        return ConsentProfile.of(
            str(data["permission"]),
            diseases=strings("diseases"),
            modifiers=strings("modifiers"),
            countries=strings("countries"),
            months=int(months) if isinstance(months, int | str) else None,
            moratorium_until=date.fromisoformat(mor) if isinstance(mor, str) else None,
            projects=strings("projects"),
            declined=strings("declined"),
        )


@dataclass(frozen=True, slots=True)
class Purpose:
    """A research purpose as the requester states it; None means "not stated"."""

    category: str
    diseases: frozenset[str] = frozenset()
    commercial: bool | None = None
    non_profit: bool | None = None
    country: str | None = None
    ethics_approval: bool | None = None
    collaboration: bool | None = None
    methods_development: bool | None = False
    genetic: bool | None = None
    data_linkage: bool | None = None
    publication: bool | None = None
    return_data: bool | None = None
    project_id: str | None = None
    duration_months: int | None = None


class Reason(NamedTuple):
    """What one rule decided and why, with the DUO ids it is about."""

    rule: str
    outcome: RuleOutcome
    duo: tuple[str, ...]
    message: str

    def as_dict(self) -> dict[str, object]:
        """JSON-ready."""
        return {"rule": self.rule, "outcome": self.outcome.value, "duo": list(self.duo), "message": self.message}


class Decision(NamedTuple):
    """The decision, one reason per rule that applied, and the conditions an approval carries."""

    decision: Verdict
    reasons: tuple[Reason, ...]
    conditions: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, object]:
        """JSON-ready."""
        return {
            "decision": self.decision.value,
            "reasons": [r.as_dict() for r in self.reasons],
            "conditions": list(self.conditions),
        }


A, C, R, D = RuleOutcome.APPROVE, RuleOutcome.CONDITION, RuleOutcome.REVIEW, RuleOutcome.DENY
_ID = DUO_IDS


def _r(rule: str, outcome: RuleOutcome, message: str, *codes: str) -> Reason:
    return Reason(rule, outcome, tuple(_ID[c] for c in codes if c in _ID), message)


@lru_cache(maxsize=131072)
def disease_and_ancestors(code: str) -> frozenset[str]:
    """The code itself and every ancestor in the WHO ICD-10 hierarchy (category, block, chapter)."""
    if not is_icd10(code):
        return frozenset({code})
    return frozenset((code, *icd10_ancestors(code)))


def uncovered_diseases(purpose_diseases: frozenset[str], consent_diseases: frozenset[str]) -> list[str]:
    """Purpose diseases that no consent disease covers (itself or an ancestor): never the reverse."""
    return sorted(p for p in purpose_diseases if disease_and_ancestors(p).isdisjoint(consent_diseases))


# -- the permission rule --------------------------------------------------------------------------------

_PERM_NRES = _r("permission", A, "NRES: no restriction covers every purpose", "NRES")
_PERM_GRU = _r("permission", A, "GRU covers every research purpose", "GRU")
_PERM_HMB = _r("permission", A, "HMB covers health, medical and biomedical purposes, including disease-specific", "HMB")
_PERM_HMB_GRU = _r("permission", D, "HMB does not cover a general research (GRU) purpose", "HMB", "GRU")
_PERM_HMB_POA = _r("permission", D, "HMB does not cover population origins or ancestry research", "HMB", "POA")
_PERM_DS_GENERAL = {
    c: _r("permission", D, f"a DS consent covers only its diseases, never a {c} purpose", "DS", c)
    for c in ("GRU", "HMB", "POA")
}
_PERM_DS_CC = _r("permission", D, "a DS consent covers clinical care only for its diseases: state them", "DS", "CC")
_PERM_POA = _r("permission", A, "POA covers population origins or ancestry research", "POA")
_PERM_POA_OTHER = _r("permission", D, "a POA consent covers only population origins or ancestry research", "POA")


@lru_cache(maxsize=65536)
def _ds_permission(consent_diseases: frozenset[str], purpose_diseases: frozenset[str]) -> Reason:
    if not purpose_diseases:
        return _r("permission", D, "a DS purpose must name its diseases", "DS")
    consented = ", ".join(sorted(consent_diseases))
    missing = uncovered_diseases(purpose_diseases, consent_diseases)
    if missing:
        return _r("permission", D, f"DS consent for {consented} does not cover {', '.join(missing)}", "DS")
    return _r(
        "permission",
        A,
        f"DS consent for {consented} covers {', '.join(sorted(purpose_diseases))}"
        " (the same disease or an ancestor in ICD-10)",
        "DS",
    )


def _permission(consent: ConsentProfile, purpose: Purpose) -> Reason:
    permission, category = consent.permission, purpose.category
    if permission == "NRES":
        return _PERM_NRES
    if permission == "GRU":
        return _PERM_GRU
    if permission == "HMB":
        if category in ("HMB", "DS", "CC"):
            return _PERM_HMB
        return _PERM_HMB_GRU if category == "GRU" else _PERM_HMB_POA
    if permission == "DS":
        if category == "DS" or (category == "CC" and purpose.diseases):
            return _ds_permission(consent.diseases, purpose.diseases)
        if category == "CC":
            return _PERM_DS_CC
        return _PERM_DS_GENERAL.get(category) or _r("permission", D, f"unknown purpose {category!r}", "DS")
    if permission == "POA":
        return _PERM_POA if category == "POA" else _PERM_POA_OTHER
    return Reason("permission", D, (), f"unknown permission {permission!r}: deny by default")


# -- modifiers ------------------------------------------------------------------------------------------


def _stated(value: bool | None, yes: Reason, no: Reason, unknown: Reason, *, want: bool = True) -> Reason:
    if value is None:
        return unknown
    return yes if value is want else no


def _reasons(code: str, ok: str, bad: str, unknown: str) -> tuple[Reason, Reason, Reason]:
    return _r(code, A, ok, code), _r(code, D, bad, code), _r(code, R, unknown, code)


_IRB = _reasons(
    "IRB",
    "ethics approval is present",
    "ethics approval is required and the purpose has none",
    "ethics approval is required: the purpose does not say whether it has one",
)
_COL = _reasons(
    "COL",
    "a collaboration with the provider is stated",
    "collaboration with the provider is required",
    "collaboration is required: the purpose does not say whether there is one",
)
_GSO = _reasons(
    "GSO",
    "the purpose is a genetic study",
    "only genetic studies are allowed",
    "only genetic studies are allowed: the purpose does not say whether it is one",
)
_NPU = _reasons(
    "NPU",
    "the requester is a not-for-profit organisation",
    "only not-for-profit organisations may use it",
    "use is limited to not-for-profit organisations: the purpose does not say whether the requester is one",
)
_NCU = _reasons(
    "NCU",
    "the use is not commercial",
    "commercial use is not allowed",
    "commercial use is not allowed: the purpose does not say whether it is commercial",
)
_NPUNCU_OK = _r("NPUNCU", A, "a not-for-profit, non-commercial use", "NPUNCU")
_NPUNCU_BAD = _r("NPUNCU", D, "only not-for-profit organisations, for non-commercial use", "NPUNCU")
_NPUNCU_UNKNOWN = _r("NPUNCU", R, "not-for-profit, non-commercial use only: the purpose does not say both", "NPUNCU")
_NPOA_OK = _r("NPOA", A, "the purpose is not population or ancestry research", "NPOA")
_NPOA_BAD = _r("NPOA", D, "population origins or ancestry research is excluded", "NPOA")
_NMDS_OK = _r("NMDS", A, "the purpose is not methods development", "NMDS")
_NMDS_DISEASE = _r("NMDS", A, "methods development within the consented diseases", "NMDS")
_NMDS_BAD = _r("NMDS", D, "methods development is allowed only for the consented diseases", "NMDS")
_NMDS_UNKNOWN = _r("NMDS", R, "no general methods research: the purpose does not say whether it is", "NMDS")
_PUB = (
    _r("PUB", A, "the requester commits to publishing", "PUB"),
    _r("PUB", D, "publication of results is required", "PUB"),
    _r("PUB", C, "results must be published", "PUB"),
)
_RTN = (
    _r("RTN", A, "the requester commits to returning derived data", "RTN"),
    _r("RTN", D, "derived data must be returned to the biobank", "RTN"),
    _r("RTN", C, "derived data must be returned to the biobank", "RTN"),
)
_US = _r("US", R, "use is limited to named users: a reviewer checks the requester", "US")
_IS = _r("IS", R, "use is limited to named institutions: a reviewer checks the requester", "IS")
_RS = _r("RS", R, "research-specific restrictions apply: a reviewer checks them", "RS")
_PS_UNKNOWN = _r("PS", R, "use is limited to approved projects: a reviewer checks the project", "PS")
_CC_OK = _r("CC", A, "the consent allows clinical care use", "CC")
_CC_EXTRA = _r("CC", A, "clinical care use is allowed in addition; not needed for this purpose", "CC")
_CC_MISSING = _r("CC", D, "clinical care use needs the CC modifier (or NRES)", "CC")
_GS_UNKNOWN = _r("GS", R, "use is limited to some countries: the purpose does not state its country", "GS")
_TS_UNKNOWN = _r("TS", R, "a time limit applies but its number of months is not recorded", "TS")
_MOR_UNKNOWN = _r("MOR", R, "a publication moratorium applies but its date is not recorded", "MOR")
_STORAGE = Reason("storage", D, (), "the donor did not agree to keep samples for future research")
_GENETIC = (
    Reason("genetic", A, (), "the purpose is not genetic research"),
    Reason("genetic", D, (), "the donor declined genetic research"),
    Reason("genetic", R, (), "the donor declined genetic research: the purpose does not say whether it is"),
)
_LINKAGE = (
    Reason("data_linkage", A, (), "the purpose does not link data"),
    Reason("data_linkage", D, (), "the donor declined linkage with other data"),
    Reason("data_linkage", R, (), "the donor declined data linkage: the purpose does not say whether it links"),
)


def _npuncu(consent: ConsentProfile, purpose: Purpose, on: date) -> Reason:
    if purpose.non_profit is False or purpose.commercial is True:
        return _NPUNCU_BAD
    if purpose.non_profit is True and purpose.commercial is False:
        return _NPUNCU_OK
    return _NPUNCU_UNKNOWN


def _nmds(consent: ConsentProfile, purpose: Purpose, on: date) -> Reason:
    if purpose.methods_development is None:
        return _NMDS_UNKNOWN
    if not purpose.methods_development:
        return _NMDS_OK
    if purpose.diseases and consent.diseases and not uncovered_diseases(purpose.diseases, consent.diseases):
        return _NMDS_DISEASE
    return _NMDS_BAD


@lru_cache(maxsize=4096)
def _gs(countries: frozenset[str], country: str | None) -> Reason:
    if country is None or not countries:
        return _GS_UNKNOWN
    allowed = ", ".join(sorted(countries))
    if country.upper() in countries:
        return _r("GS", A, f"{country.upper()} is among the allowed countries ({allowed})", "GS")
    return _r("GS", D, f"use is limited to {allowed}; the purpose is in {country.upper()}", "GS")


@lru_cache(maxsize=4096)
def _mor(until: date | None, on: date) -> Reason:
    if until is None:
        return _MOR_UNKNOWN
    if until <= on:
        return _r("MOR", A, f"the publication moratorium ended on {until.isoformat()}", "MOR")
    return _r("MOR", C, f"no publication before {until.isoformat()}", "MOR")


@lru_cache(maxsize=4096)
def _ts(months: int | None, duration: int | None) -> Reason:
    if months is None:
        return _TS_UNKNOWN
    if duration is None:
        return _r("TS", C, f"access is limited to {months} months", "TS")
    if duration <= months:
        return _r("TS", A, f"{duration} months is within the {months}-month limit", "TS")
    return _r("TS", D, f"{duration} months exceeds the {months}-month limit", "TS")


def _ps(consent: ConsentProfile, purpose: Purpose, on: date) -> Reason:
    if not consent.projects or purpose.project_id is None:
        return _PS_UNKNOWN
    if purpose.project_id in consent.projects:
        return _r("PS", A, "the project is one the consent names", "PS")
    return _r("PS", D, "the consent is limited to other projects", "PS")


def _three(value: bool | None, reasons: tuple[Reason, Reason, Reason]) -> Reason:
    """(approve, deny, condition) by a commitment the purpose states, or does not."""
    return reasons[0] if value else reasons[1] if value is False else reasons[2]


ModifierRule = Callable[[ConsentProfile, Purpose, date], Reason]
MODIFIER_RULES: dict[str, ModifierRule] = {
    "IRB": lambda c, p, on: _stated(p.ethics_approval, *_IRB),
    "COL": lambda c, p, on: _stated(p.collaboration, *_COL),
    "NPU": lambda c, p, on: _stated(p.non_profit, *_NPU),
    "NCU": lambda c, p, on: _stated(p.commercial, *_NCU, want=False),
    "NPUNCU": _npuncu,
    "NPOA": lambda c, p, on: _NPOA_BAD if p.category == "POA" else _NPOA_OK,
    "NMDS": _nmds,
    "GSO": lambda c, p, on: _stated(p.genetic, *_GSO),
    "GS": lambda c, p, on: _gs(c.countries, p.country),
    "PUB": lambda c, p, on: _three(p.publication, _PUB),
    "RTN": lambda c, p, on: _three(p.return_data, _RTN),
    "MOR": lambda c, p, on: _mor(c.moratorium_until, on),
    "TS": lambda c, p, on: _ts(c.months, p.duration_months),
    "PS": _ps,
    "US": lambda c, p, on: _US,
    "IS": lambda c, p, on: _IS,
    "RS": lambda c, p, on: _RS,
    "CC": lambda c, p, on: _CC_OK if p.category == "CC" else _CC_EXTRA,
}


def _unknown_modifier(code: str) -> Reason:
    return Reason(code, D, (), f"unknown modifier {code!r}: deny by default")


def _today() -> date:
    return datetime.now(UTC).date()


def match(consent: ConsentProfile, purpose: Purpose, *, on: date | None = None) -> Decision:
    """Decide whether a consent profile allows a purpose; one reason per rule that applied."""
    reasons = [_permission(consent, purpose)]
    if purpose.category == "CC" and "CC" not in consent.modifiers:
        reasons.append(_CC_OK if consent.permission == "NRES" else _CC_MISSING)
    if consent.modifiers:
        day = on or _today()
        for code in consent.modifiers:
            rule = MODIFIER_RULES.get(code)
            reasons.append(rule(consent, purpose, day) if rule else _unknown_modifier(code))
    if consent.declined:
        if "storage" in consent.declined:
            reasons.append(_STORAGE)
        if "genetic" in consent.declined:
            g = purpose.genetic
            reasons.append(_GENETIC[2] if g is None else _GENETIC[1] if g else _GENETIC[0])
        if "data_linkage" in consent.declined:
            d = purpose.data_linkage
            reasons.append(_LINKAGE[2] if d is None else _LINKAGE[1] if d else _LINKAGE[0])
    verdict = Verdict.APPROVE
    conditions: list[str] = []
    for reason in reasons:
        outcome = reason.outcome
        if outcome is D:
            verdict = Verdict.DENY
            break
        if outcome is R:
            verdict = Verdict.NEEDS_REVIEW
        elif outcome is C:
            conditions.append(reason.message)
    if reasons[0].outcome is not A and verdict is not Verdict.DENY:
        verdict = Verdict.DENY  # deny by default: nothing approved the purpose itself
    return Decision(verdict, tuple(reasons), tuple(conditions) if verdict is not Verdict.DENY else ())


# Decisions for specimens that have no usable consent (eligibility uses these without a profile).
NO_CONSENT = Decision(
    Verdict.DENY, (Reason("consent", D, (), "no consent is recorded for the donor: deny by default"),)
)
WITHDRAWN = Decision(Verdict.DENY, (Reason("consent", D, (), "the donor withdrew consent"),))
EXPIRED = Decision(Verdict.DENY, (Reason("consent", D, (), "the consent is outside its validity period"),))
NOT_ACCEPTED = Reason("collection", D, (), "the collection does not accept the consent form version the donor signed")


def valid_permissions() -> frozenset[str]:
    """Every DUO permission shorthand."""
    return frozenset(p.value for p in Permission)


def valid_categories() -> frozenset[str]:
    """Every purpose category."""
    return frozenset(c.value for c in PurposeCategory)
