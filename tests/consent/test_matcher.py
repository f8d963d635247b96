"""The matcher, rule by rule, as STANDARDS.md states them (table-driven)."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from biobank.consent.duo import DUO_IDS, Modifier, Permission, duo_iri
from biobank.consent.matcher import (
    ConsentProfile,
    Purpose,
    RuleOutcome,
    Verdict,
    disease_and_ancestors,
    match,
)
from biobank.consent.profiles import profile_key

APPROVE, DENY, REVIEW = Verdict.APPROVE, Verdict.DENY, Verdict.NEEDS_REVIEW
TODAY = date(2026, 6, 1)


def consent(
    permission: str, diseases: tuple[str, ...] = (), modifiers: tuple[str, ...] = (), **kw: Any
) -> ConsentProfile:
    return ConsentProfile.of(permission, diseases=diseases, modifiers=modifiers, **kw)


def purpose(category: str, diseases: tuple[str, ...] = (), **kw: Any) -> Purpose:
    base: dict[str, Any] = {
        "commercial": False,
        "non_profit": True,
        "country": "CN",
        "ethics_approval": True,
        "collaboration": False,
        "methods_development": False,
    }
    return Purpose(category=category, diseases=frozenset(diseases), **(base | kw))


def reason(decision: Any, rule: str) -> Any:
    found = [r for r in decision.reasons if r.rule == rule]
    assert len(found) == 1, f"expected one reason for {rule}: {decision.reasons}"
    return found[0]


# -- codes -------------------------------------------------------------------------------------------------


def test_duo_codes_are_exactly_those_of_the_standard() -> None:
    expected = {
        "NRES": "0000004",
        "GRU": "0000042",
        "HMB": "0000006",
        "DS": "0000007",
        "POA": "0000011",
        "NMDS": "0000015",
        "GSO": "0000016",
        "NPUNCU": "0000018",
        "NPU": "0000045",
        "NCU": "0000046",
        "PUB": "0000019",
        "COL": "0000020",
        "IRB": "0000021",
        "GS": "0000022",
        "MOR": "0000024",
        "TS": "0000025",
        "US": "0000026",
        "PS": "0000027",
        "IS": "0000028",
        "RTN": "0000029",
        "RS": "0000012",
        "CC": "0000043",
        "NPOA": "0000044",
    }
    assert {k: v.removeprefix("DUO:") for k, v in DUO_IDS.items()} == expected
    assert {p.value for p in Permission} | {m.value for m in Modifier} == set(expected)
    assert duo_iri("NPOA") == "http://purl.obolibrary.org/obo/DUO_0000044"


# -- permission × purpose category ---------------------------------------------------------------------------

PERMISSION_TABLE = [
    # consent permission, consent diseases, purpose category, purpose diseases, expected
    ("NRES", (), "GRU", (), APPROVE),
    ("NRES", (), "HMB", (), APPROVE),
    ("NRES", (), "DS", ("C34.1",), APPROVE),
    ("NRES", (), "POA", (), APPROVE),
    ("NRES", (), "CC", (), APPROVE),
    ("GRU", (), "GRU", (), APPROVE),
    ("GRU", (), "HMB", (), APPROVE),
    ("GRU", (), "DS", ("C34.1",), APPROVE),
    ("GRU", (), "POA", (), APPROVE),
    ("GRU", (), "CC", (), DENY),  # clinical care is not research: needs CC
    ("HMB", (), "GRU", (), DENY),
    ("HMB", (), "HMB", (), APPROVE),
    ("HMB", (), "DS", ("C34.1",), APPROVE),
    ("HMB", (), "POA", (), DENY),
    ("HMB", (), "CC", (), DENY),
    ("DS", ("C34",), "GRU", (), DENY),  # the known defect: a GRU purpose is never approved on DS-only
    ("DS", ("C34",), "HMB", (), DENY),
    ("DS", ("C34",), "POA", (), DENY),
    ("DS", ("C34",), "CC", (), DENY),
    ("DS", ("C34",), "DS", ("C34",), APPROVE),
    ("DS", ("C34",), "DS", ("C34.1",), APPROVE),  # lung cancer purpose ⊂ lung cancer consent
    ("DS", ("C34.1",), "DS", ("C34",), DENY),  # never the reverse
    ("DS", ("C34.1",), "DS", ("C34.1",), APPROVE),
    ("DS", ("C30-C39",), "DS", ("C34.1",), APPROVE),  # block ancestor
    ("DS", ("C00-C97",), "DS", ("C34.1",), APPROVE),  # block of blocks
    ("DS", ("II",), "DS", ("C34.1",), APPROVE),  # chapter ancestor (neoplasms)
    ("DS", ("II",), "DS", ("I10",), DENY),  # hypertension is not a neoplasm
    ("DS", ("C34",), "DS", ("C34.1", "C50.9"), DENY),  # every purpose disease must be covered
    ("DS", ("C34", "C50"), "DS", ("C34.1", "C50.9"), APPROVE),
    ("DS", ("C34.1",), "DS", ("C30-C39",), DENY),  # a broader purpose is not covered by a narrower consent
    ("POA", (), "POA", (), APPROVE),
    ("POA", (), "GRU", (), DENY),
    ("POA", (), "HMB", (), DENY),
    ("POA", (), "DS", ("C34",), DENY),
]


@pytest.mark.parametrize(("permission", "cdis", "category", "pdis", "expected"), PERMISSION_TABLE)
def test_permission_covers_purpose_category(
    permission: str, cdis: tuple[str, ...], category: str, pdis: tuple[str, ...], expected: Verdict
) -> None:
    decision = match(consent(permission, cdis), purpose(category, pdis), on=TODAY)
    assert decision.decision is expected, decision.reasons
    first = decision.reasons[0]
    assert first.rule == "permission"
    assert DUO_IDS[permission] in first.duo
    if expected is DENY and category != "CC":
        assert first.outcome is RuleOutcome.DENY


def test_gru_purpose_against_ds_only_consent_is_deny_with_a_reason() -> None:
    decision = match(consent("DS", ("C34",)), purpose("GRU"), on=TODAY)
    assert decision.decision is DENY
    assert "never a GRU purpose" in decision.reasons[0].message
    assert decision.reasons[0].duo == ("DUO:0000007", "DUO:0000042")


def test_icd10_ancestors_are_cached_and_include_the_code() -> None:
    assert disease_and_ancestors("C34.1") == {"C34.1", "C34", "C30-C39", "C00-C75", "C00-C97", "II"}
    assert disease_and_ancestors("ZZZ") == {"ZZZ"}  # unknown codes only match themselves


# -- NPOA, NPU/NCU/NPUNCU, NMDS ---------------------------------------------------------------------------------

MODIFIER_TABLE = [
    # modifiers, purpose category, purpose diseases, purpose overrides, expected, rule, rule outcome
    (("NPOA",), "POA", (), {}, DENY, "NPOA", "deny"),
    (("NPOA",), "HMB", (), {}, APPROVE, "NPOA", "approve"),
    (("NPU",), "HMB", (), {"non_profit": False}, DENY, "NPU", "deny"),
    (("NPU",), "HMB", (), {"non_profit": True, "commercial": True}, APPROVE, "NPU", "approve"),
    (("NPU",), "HMB", (), {"non_profit": None}, REVIEW, "NPU", "review"),
    (("NCU",), "HMB", (), {"commercial": True}, DENY, "NCU", "deny"),
    (("NCU",), "HMB", (), {"commercial": False, "non_profit": False}, APPROVE, "NCU", "approve"),
    (("NCU",), "HMB", (), {"commercial": None}, REVIEW, "NCU", "review"),
    (("NPUNCU",), "HMB", (), {"commercial": True}, DENY, "NPUNCU", "deny"),
    (("NPUNCU",), "HMB", (), {"non_profit": False}, DENY, "NPUNCU", "deny"),
    (("NPUNCU",), "HMB", (), {}, APPROVE, "NPUNCU", "approve"),
    (("NPUNCU",), "HMB", (), {"non_profit": None}, REVIEW, "NPUNCU", "review"),
    (("NMDS",), "HMB", (), {"methods_development": True}, DENY, "NMDS", "deny"),
    (("NMDS",), "HMB", (), {"methods_development": False}, APPROVE, "NMDS", "approve"),
    (("NMDS",), "HMB", (), {"methods_development": None}, REVIEW, "NMDS", "review"),
    (("IRB",), "HMB", (), {"ethics_approval": True}, APPROVE, "IRB", "approve"),
    (("IRB",), "HMB", (), {"ethics_approval": False}, DENY, "IRB", "deny"),
    (("IRB",), "HMB", (), {"ethics_approval": None}, REVIEW, "IRB", "review"),
    (("COL",), "HMB", (), {"collaboration": True}, APPROVE, "COL", "approve"),
    (("COL",), "HMB", (), {"collaboration": False}, DENY, "COL", "deny"),
    (("COL",), "HMB", (), {"collaboration": None}, REVIEW, "COL", "review"),
    (("GSO",), "HMB", (), {"genetic": True}, APPROVE, "GSO", "approve"),
    (("GSO",), "HMB", (), {"genetic": False}, DENY, "GSO", "deny"),
    (("GSO",), "HMB", (), {}, REVIEW, "GSO", "review"),
    (("PUB",), "HMB", (), {}, APPROVE, "PUB", "condition"),
    (("PUB",), "HMB", (), {"publication": True}, APPROVE, "PUB", "approve"),
    (("PUB",), "HMB", (), {"publication": False}, DENY, "PUB", "deny"),
    (("RTN",), "HMB", (), {}, APPROVE, "RTN", "condition"),
    (("RTN",), "HMB", (), {"return_data": True}, APPROVE, "RTN", "approve"),
    (("RTN",), "HMB", (), {"return_data": False}, DENY, "RTN", "deny"),
    (("US",), "HMB", (), {}, REVIEW, "US", "review"),
    (("IS",), "HMB", (), {}, REVIEW, "IS", "review"),
    (("RS",), "HMB", (), {}, REVIEW, "RS", "review"),
    (("PS",), "HMB", (), {"project_id": "P1"}, REVIEW, "PS", "review"),  # no project list: a reviewer checks
    (("CC",), "CC", (), {}, APPROVE, "CC", "approve"),
    (("CC",), "HMB", (), {}, APPROVE, "CC", "approve"),  # CC adds a use; it restricts nothing
]


@pytest.mark.parametrize(("modifiers", "category", "pdis", "overrides", "expected", "rule", "outcome"), MODIFIER_TABLE)
def test_modifier_rules(
    modifiers: tuple[str, ...],
    category: str,
    pdis: tuple[str, ...],
    overrides: dict[str, Any],
    expected: Verdict,
    rule: str,
    outcome: str,
) -> None:
    decision = match(consent("GRU", (), modifiers), purpose(category, pdis, **overrides), on=TODAY)
    assert decision.decision is expected, decision.reasons
    found = reason(decision, rule)
    assert found.outcome.value == outcome
    assert found.duo == (DUO_IDS[rule],)


def test_nmds_allows_methods_development_only_within_the_consented_diseases() -> None:
    ds = consent("DS", ("C34",), ("NMDS",))
    inside = match(ds, purpose("DS", ("C34.1",), methods_development=True), on=TODAY)
    assert inside.decision is APPROVE
    assert reason(inside, "NMDS").message == "methods development within the consented diseases"
    outside = match(ds, purpose("DS", ("C50",), methods_development=True), on=TODAY)
    assert outside.decision is DENY
    hmb = consent("HMB", (), ("NMDS",))
    assert match(hmb, purpose("DS", ("C34.1",), methods_development=True), on=TODAY).decision is DENY


def test_npoa_denies_ancestry_even_under_gru_and_poa_stays_otherwise_covered() -> None:
    assert match(consent("GRU", (), ("NPOA",)), purpose("POA"), on=TODAY).decision is DENY
    assert match(consent("GRU"), purpose("POA"), on=TODAY).decision is APPROVE


def test_geographic_restriction_checks_the_requester_country() -> None:
    gs = consent("GRU", (), ("GS",), countries=("CN", "SG"))
    assert match(gs, purpose("HMB", country="CN"), on=TODAY).decision is APPROVE
    assert match(gs, purpose("HMB", country="sg"), on=TODAY).decision is APPROVE
    denied = match(gs, purpose("HMB", country="US"), on=TODAY)
    assert denied.decision is DENY and "CN, SG" in reason(denied, "GS").message
    assert match(gs, purpose("HMB", country=None), on=TODAY).decision is REVIEW


def test_time_limit_is_a_condition_or_checked_against_the_requested_duration() -> None:
    ts = consent("GRU", (), ("TS",), months=12)
    open_ended = match(ts, purpose("HMB"), on=TODAY)
    assert open_ended.decision is APPROVE and open_ended.conditions == ("access is limited to 12 months",)
    assert match(ts, purpose("HMB", duration_months=12), on=TODAY).decision is APPROVE
    assert match(ts, purpose("HMB", duration_months=13), on=TODAY).decision is DENY


def test_moratorium_is_a_condition_until_its_date() -> None:
    mor = consent("GRU", (), ("MOR",), moratorium_until=date(2027, 1, 1))
    before = match(mor, purpose("HMB"), on=TODAY)
    assert before.decision is APPROVE
    assert before.conditions == ("no publication before 2027-01-01",)
    after = match(mor, purpose("HMB"), on=date(2027, 1, 2))
    assert after.decision is APPROVE and after.conditions == ()
    assert reason(after, "MOR").outcome is RuleOutcome.APPROVE


def test_project_specific_consent_checks_the_project_when_projects_are_named() -> None:
    ps = consent("GRU", (), ("PS",), projects=("P-1",))
    assert match(ps, purpose("HMB", project_id="P-1"), on=TODAY).decision is APPROVE
    assert match(ps, purpose("HMB", project_id="P-2"), on=TODAY).decision is DENY
    assert match(ps, purpose("HMB"), on=TODAY).decision is REVIEW


def test_declined_extra_choices() -> None:
    storage = consent("GRU", declined=("storage",))
    assert match(storage, purpose("HMB"), on=TODAY).decision is DENY
    genetic = consent("GRU", declined=("genetic",))
    assert match(genetic, purpose("HMB", genetic=True), on=TODAY).decision is DENY
    assert match(genetic, purpose("HMB", genetic=False), on=TODAY).decision is APPROVE
    assert match(genetic, purpose("HMB"), on=TODAY).decision is REVIEW
    linkage = consent("GRU", declined=("data_linkage",))
    assert match(linkage, purpose("HMB", data_linkage=True), on=TODAY).decision is DENY
    # Declines that do not restrict use (recontact) are not part of the profile at all.
    assert consent("GRU", declined=("recontact",)) == consent("GRU")


def test_every_rule_must_approve_deny_wins_over_review_and_conditions() -> None:
    profile = consent("GRU", (), ("IRB", "NPU", "PUB"))
    decision = match(profile, purpose("HMB", ethics_approval=False, non_profit=None), on=TODAY)
    assert decision.decision is DENY
    assert decision.conditions == ()  # a denial carries no conditions
    assert [r.rule for r in decision.reasons] == ["permission", "NPU", "PUB", "IRB"]  # one per rule, DUO order
    review = match(profile, purpose("HMB", non_profit=None), on=TODAY)
    assert review.decision is REVIEW and review.conditions == ("results must be published",)


def test_deny_by_default_for_unknown_permission_or_category() -> None:
    assert match(ConsentProfile.of("XYZ"), purpose("HMB"), on=TODAY).decision is DENY
    assert match(consent("HMB"), Purpose(category="NOPE"), on=TODAY).decision is DENY
    assert match(consent("DS", ("C34",)), Purpose(category="DS"), on=TODAY).decision is DENY  # no diseases


def test_profiles_are_canonical_so_equal_consents_share_one_key() -> None:
    a = ConsentProfile.of("DS", diseases=["C50", "C34"], modifiers=["PUB", "IRB", "NPU"], countries=["cn"])
    b = ConsentProfile.of("DS", diseases=["C34", "C50"], modifiers=["NPU", "IRB", "PUB", "IRB"], countries=["CN"])
    assert a == b and hash(a) == hash(b)
    assert profile_key(a) == profile_key(b)
    assert ConsentProfile.from_canonical(a.canonical()) == a
    assert profile_key(a) != profile_key(ConsentProfile.of("DS", diseases=["C34"]))
