"""FHIR R4 Consent of one consent record: research scope, the DUO permission as the permitted purpose,
nested provisions for modifiers (deny for restrictions, permit for obligations), ICD-10 codes for DS.

Built as plain JSON and validated with `fhir.resources.R4B` (equal to R4 for Consent) in the tests.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from biobank.consent.duo import DUO_IDS, LABELS
from biobank.consent.matcher import ConsentProfile
from biobank.consent.models import ConsentMethod, ConsentStatus

DUO_SYSTEM = "http://purl.obolibrary.org/obo/duo.owl"
ICD10_SYSTEM = "http://hl7.org/fhir/sid/icd-10"
SCOPE_SYSTEM = "http://terminology.hl7.org/CodeSystem/consentscope"
CATEGORY_SYSTEM = "http://terminology.hl7.org/CodeSystem/consentcategorycodes"
LOINC = "http://loinc.org"
IDENTIFIER_SYSTEM = "urn:biobank-commons:consent"
POLICY_PREFIX = "urn:biobank-commons:consent-form:"
# Restrictions say what is excluded (a deny provision); the rest are obligations attached to the permit.
RESTRICTIONS = frozenset({"NPOA", "NPU", "NCU", "NPUNCU", "NMDS"})
DECLINED_WORDS = {
    "storage": "storage of samples for future research",
    "genetic": "genetic research",
    "data_linkage": "linkage with other data",
}


def fhir_id(public_id: str) -> str:
    """A FHIR logical id ([A-Za-z0-9-.]{1,64}) from a public id (':' and '/' become '-')."""
    return "".join(c if c.isalnum() or c in "-." else "-" for c in public_id)[:64]


def _instant(value: datetime) -> str:
    return value.isoformat(timespec="seconds")


def _duo(code: str, detail: str = "") -> dict[str, Any]:
    label = LABELS.get(code, code)
    return {"system": DUO_SYSTEM, "code": DUO_IDS[code], "display": f"{label}{': ' + detail if detail else ''}"}


def _modifier_detail(code: str, profile: ConsentProfile) -> str:
    if code == "GS":
        return ", ".join(sorted(profile.countries))
    if code == "TS" and profile.months:
        return f"{profile.months} months"
    if code == "MOR" and profile.moratorium_until:
        return profile.moratorium_until.isoformat()
    if code == "PS" and profile.projects:
        return ", ".join(sorted(profile.projects))
    return ""


def consent_resource(
    *,
    public_id: str,
    donor_public_id: str,
    form_version_public_id: str,
    status: ConsentStatus,
    method: ConsentMethod,
    given_at: datetime,
    valid_from: datetime,
    valid_until: datetime | None,
    profile: ConsentProfile,
    organization: str,
    has_witness: bool,
    withdrawn_at: datetime | None,
    scan: dict[str, Any] | None,
) -> dict[str, Any]:
    """The FHIR R4 Consent of a record, as JSON."""
    period: dict[str, Any] = {"start": _instant(valid_from)}
    end = withdrawn_at or valid_until
    if end is not None:
        period["end"] = _instant(end)
    nested: list[dict[str, Any]] = []
    for code in profile.modifiers:
        detail = _modifier_detail(code, profile)
        nested.append({"type": "deny" if code in RESTRICTIONS else "permit", "purpose": [_duo(code, detail)]})
    for declined in sorted(profile.declined):
        nested.append({"type": "deny", "code": [{"text": f"declined: {DECLINED_WORDS.get(declined, declined)}"}]})
    provision: dict[str, Any] = {
        "type": "deny" if status == ConsentStatus.WITHDRAWN else "permit",
        "period": period,
    }
    if profile.permission in DUO_IDS:
        provision["purpose"] = [_duo(profile.permission)]
    if profile.diseases:
        provision["code"] = [{"coding": [{"system": ICD10_SYSTEM, "code": code}]} for code in sorted(profile.diseases)]
    if nested and status != ConsentStatus.WITHDRAWN:
        provision["provision"] = nested
    resource: dict[str, Any] = {
        "resourceType": "Consent",
        "id": fhir_id(public_id),
        "identifier": [{"system": IDENTIFIER_SYSTEM, "value": public_id}],
        "status": "active" if status == ConsentStatus.ACTIVE else "inactive",
        "scope": {"coding": [{"system": SCOPE_SYSTEM, "code": "research", "display": "Research"}]},
        "category": [
            {"coding": [{"system": CATEGORY_SYSTEM, "code": "research", "display": "Research Information Access"}]},
            {"coding": [{"system": LOINC, "code": "59284-0", "display": "Patient Consent"}]},
        ],
        "patient": {"reference": f"Patient/{fhir_id(donor_public_id)}"},
        "dateTime": _instant(given_at),
        "organization": [{"display": organization}],
        "policy": [{"uri": POLICY_PREFIX + form_version_public_id}],
        "provision": provision,
    }
    if method == ConsentMethod.PAPER and scan is not None:
        resource["sourceAttachment"] = {
            "contentType": scan["media_type"],
            "size": scan["size_bytes"],
            "title": f"scanned paper consent (SHA-256 {scan['sha256']})",
        }
    if has_witness or method == ConsentMethod.ELECTRONIC:
        resource["verification"] = [{"verified": True, "verificationDate": _instant(given_at)}]
    return resource
