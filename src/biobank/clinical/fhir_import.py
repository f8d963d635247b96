"""Clinical import from a FHIR R4 Bundle: Patient, Condition, Observation and Specimen entries.

The Bundle is first validated with `fhir.resources` (R4B, equal to R4 for these resources); a
structural error is reported at its JSON path (`entry[3].resource.valueQuantity.value`). Then:

- Patient → the donor, by an identifier with system `urn:biobank-commons:donor` (our donor public id)
  or else the first identifier's value (the hospital patient id, matched through its pseudonym);
- Condition → a diagnosis: ICD-10 coding (WHO list), ICD-O-3 topography from bodySite and morphology
  from an ICD-O-3 coding, TNM and stage from stage.summary, onset date;
- Observation → an observation (code, valueQuantity / valueCodeableConcept / valueString, date), linked
  to a specimen when it references a Specimen entry;
- Specimen → resolved to one of the biobank's specimens by identifier (barcode or public id).

Each record's key is its resource type and id (or the entry's fullUrl), so re-importing the same
Bundle changes nothing. Other resource types are ignored and listed in the report.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError
from sqlalchemy.orm import Session

from biobank.clinical import codes, units
from biobank.clinical.records import Errors, Pending
from biobank.kit.errors import FieldError, Invalid

DONOR_SYSTEM = "urn:biobank-commons:donor"
SUPPORTED = ("Patient", "Condition", "Observation", "Specimen")
TNM_TOKEN = re.compile(r"((?:[cpy]|yp)?[TNM](?:X|is|\d[a-d]?))", re.IGNORECASE)


def json_path(loc: list[str | int] | tuple[Any, ...]) -> str:
    """`entry[3].resource.code` from a location list."""
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "$"


@dataclass
class ParsedBundle:
    pending: list[Pending]
    entries: int
    ignored: dict[str, int] = field(default_factory=dict)
    # specimen references (entry fullUrl / Specimen/id) → (specimen ref, JSON path, patient ref)
    specimens: dict[str, tuple[str, list[str | int], str | None]] = field(default_factory=dict)
    patients: int = 0


def load_bundle(content: bytes | str) -> dict[str, Any]:
    """Parse and validate a Bundle; Invalid names the JSON path of every structural error."""
    try:
        data = json.loads(content)
    except (ValueError, UnicodeDecodeError) as exc:
        raise Invalid([FieldError([], f"not valid JSON: {exc}")], name="InvalidBundle") from None
    if not isinstance(data, dict) or data.get("resourceType") != "Bundle":
        raise Invalid(
            [FieldError(["resourceType"], "expected a FHIR Bundle (resourceType: Bundle)")], name="InvalidBundle"
        )
    from fhir.resources.R4B.bundle import Bundle

    try:
        Bundle.model_validate(data)
    except ValidationError as exc:
        errors = []
        for error in exc.errors(include_url=False)[:200]:
            loc = [p for p in error["loc"] if not (isinstance(p, str) and p.startswith("function-"))]
            errors.append(FieldError(loc, f"{json_path(loc)}: {error['msg']}", value=_scalar(error.get("input"))))
        raise Invalid(errors, name="InvalidBundle") from None
    return data


def _scalar(value: Any) -> Any:
    return value if isinstance(value, str | int | float | bool) else None


def _reference_keys(entry: dict[str, Any], resource: dict[str, Any]) -> list[str]:
    keys = []
    if entry.get("fullUrl"):
        keys.append(str(entry["fullUrl"]))
    if resource.get("id"):
        keys.append(f"{resource['resourceType']}/{resource['id']}")
    return keys


def _record_key(entry: dict[str, Any], resource: dict[str, Any]) -> str | None:
    if resource.get("id"):
        return f"fhir/{resource['resourceType']}/{resource['id']}"[:200]
    if entry.get("fullUrl"):
        return f"fhir/{resource['resourceType']}/{entry['fullUrl']}"[:200]
    return None


def _date(value: Any) -> Any:
    from datetime import date

    if isinstance(value, str) and len(value) >= 10:
        return date.fromisoformat(value[:10])
    return None


def parse_bundle(data: dict[str, Any], errors: Errors) -> ParsedBundle:
    """Pending records of a validated Bundle; semantic errors (codes, references) at their JSON paths."""
    entries = data.get("entry") or []
    result = ParsedBundle(pending=[], entries=len(entries))
    patients: dict[str, str] = {}
    # First pass: patients and specimens (references may point forward).
    for i, entry in enumerate(entries):
        resource = entry.get("resource") or {}
        kind = resource.get("resourceType")
        base: list[str | int] = ["entry", i, "resource"]
        if kind == "Patient":
            result.patients += 1
            donor_ref = _patient_ref(resource)
            if donor_ref is None:
                errors.add([*base, "identifier"], f"{json_path([*base, 'identifier'])}: the Patient has no identifier")
                continue
            for key in _reference_keys(entry, resource):
                patients[key] = donor_ref
        elif kind == "Specimen":
            identifiers = resource.get("identifier") or []
            value = next((str(x["value"]) for x in identifiers if x.get("value")), None)
            if value is None:
                path = [*base, "identifier"]
                errors.add(path, f"{json_path(path)}: the Specimen has no identifier (barcode or public id)")
                continue
            subject = ((resource.get("subject") or {}).get("reference")) or None
            for key in _reference_keys(entry, resource):
                result.specimens[key] = (value, [*base, "identifier", 0, "value"], subject)
        elif kind not in SUPPORTED:
            result.ignored[str(kind)] = result.ignored.get(str(kind), 0) + 1
    for i, entry in enumerate(entries):
        resource = entry.get("resource") or {}
        kind = resource.get("resourceType")
        base = ["entry", i, "resource"]
        if kind not in ("Condition", "Observation"):
            continue
        record_key = _record_key(entry, resource)
        if record_key is None:
            errors.add([*base, "id"], f"{json_path([*base, 'id'])}: give the resource an id (needed to re-import)")
            continue
        subject = (resource.get("subject") or {}).get("reference")
        donor_ref = patients.get(subject or "")
        if donor_ref is None:
            path = [*base, "subject", "reference"]
            errors.add(path, f"{json_path(path)}: does not reference a Patient in this Bundle", value=subject)
            continue
        if kind == "Condition":
            values = _condition(resource, base, errors)
            if values is not None:
                result.pending.append(Pending("diagnosis", donor_ref, record_key, values, base))
        else:
            values = _observation(resource, base, errors)
            if values is not None:
                specimen = (resource.get("specimen") or {}).get("reference")
                if specimen:
                    if specimen not in result.specimens:
                        path = [*base, "specimen", "reference"]
                        errors.add(path, f"{json_path(path)}: does not reference a Specimen in this Bundle")
                        continue
                    values["_specimen"] = specimen
                result.pending.append(Pending("observation", donor_ref, record_key, values, base))
    return result


def _patient_ref(resource: dict[str, Any]) -> str | None:
    identifiers = [x for x in resource.get("identifier") or [] if x.get("value")]
    for identifier in identifiers:
        if identifier.get("system") == DONOR_SYSTEM:
            return "donor:" + str(identifier["value"])
    return "patient:" + str(identifiers[0]["value"]) if identifiers else None


def _codings(concept: dict[str, Any] | None) -> list[dict[str, Any]]:
    return list((concept or {}).get("coding") or [])


def _condition(resource: dict[str, Any], base: list[str | int], errors: Errors) -> dict[str, Any] | None:
    values: dict[str, Any] = {}
    ok = True
    for j, coding in enumerate(_codings(resource.get("code"))):
        path = [*base, "code", "coding", j, "code"]
        system, code = coding.get("system", ""), str(coding.get("code", ""))
        try:
            if system in codes.ICD10_SYSTEMS and "icd10" not in values:
                values["icd10"] = codes.normalise_icd10(code)
            elif system in codes.ICDO3_SYSTEMS and "/" in code:
                values["morphology"] = codes.normalise_morphology(code)
        except ValueError as exc:
            errors.add(path, f"{json_path(path)}: {exc}", value=code)
            ok = False
    if "icd10" not in values and (resource.get("code") or {}).get("text"):
        values["text"] = str(resource["code"]["text"])[:200]
    if "icd10" not in values and "text" not in values and ok:
        path = [*base, "code"]
        errors.add(path, f"{json_path(path)}: the Condition needs an ICD-10 coding or a text")
        return None
    for j, site in enumerate(resource.get("bodySite") or []):
        for k, coding in enumerate(_codings(site)):
            if coding.get("system") in codes.ICDO3_SYSTEMS:
                path = [*base, "bodySite", j, "coding", k, "code"]
                try:
                    values["topography"] = codes.normalise_topography(str(coding.get("code", "")))
                except ValueError as exc:
                    errors.add(path, f"{json_path(path)}: {exc}", value=coding.get("code"))
                    ok = False
    for j, stage in enumerate(resource.get("stage") or []):
        summary = stage.get("summary") or {}
        texts = [str(c.get("code", "")) for c in _codings(summary)] + ([summary["text"]] if summary.get("text") else [])
        for text in texts:
            path = [*base, "stage", j, "summary"]
            try:
                _stage(text, values)
            except ValueError as exc:
                errors.add(path, f"{json_path(path)}: {exc}", value=text)
                ok = False
    onset = resource.get("onsetDateTime") or resource.get("recordedDate")
    values["diagnosed_on"] = _date(onset)
    return values if ok else None


def _stage(text: str, values: dict[str, Any]) -> None:
    cleaned = text.strip()
    if not cleaned:
        return
    tokens = TNM_TOKEN.findall(cleaned.replace(" ", ""))
    if tokens and "".join(tokens).casefold() == cleaned.replace(" ", "").casefold():
        for token in tokens:
            letter = token.lstrip("cpyCPY")[0].upper()
            parser = {"T": codes.normalise_t, "N": codes.normalise_n, "M": codes.normalise_m}[letter]
            values[f"tnm_{letter.lower()}"] = parser(token)
        return
    values["stage"] = codes.normalise_stage(cleaned)


def _observation(resource: dict[str, Any], base: list[str | int], errors: Errors) -> dict[str, Any] | None:
    codings = _codings(resource.get("code"))
    if not codings or not codings[0].get("code"):
        path = [*base, "code", "coding"]
        errors.add(path, f"{json_path(path)}: the Observation needs a coded code (e.g. LOINC)")
        return None
    first = codings[0]
    values: dict[str, Any] = {
        "system": str(first.get("system", ""))[:100],
        "code": str(first["code"])[:40],
        "display": str(first.get("display", ""))[:200],
        "observed_on": _date(resource.get("effectiveDateTime")),
    }
    quantity = resource.get("valueQuantity")
    if quantity is not None:
        values["value_number"] = float(quantity.get("value")) if quantity.get("value") is not None else None
        unit = quantity.get("code") or quantity.get("unit") or ""
        try:
            values["unit"] = units.canonical(unit) if unit else ""
        except units.UnitError:
            values["unit"] = str(unit)[:20]
    elif resource.get("valueCodeableConcept") is not None:
        concept = resource["valueCodeableConcept"]
        coded = _codings(concept)
        values["value_text"] = str(coded[0].get("code") if coded else concept.get("text", ""))[:200]
    elif resource.get("valueString") is not None:
        values["value_text"] = str(resource["valueString"])[:200]
    elif resource.get("valueBoolean") is not None:
        values["value_text"] = "true" if resource["valueBoolean"] else "false"
    return values


def resolve_specimens(
    session: Session, biobank_id: int, parsed: ParsedBundle, donor_ids: dict[str, int], errors: Errors
) -> None:
    """Replace each observation's Specimen reference by our specimen id; unknown or foreign ones are errors."""
    from biobank.specimens import service as specimens

    refs = sorted({ref for ref, _, _ in parsed.specimens.values()})
    found = specimens.by_refs_in_biobank(session, biobank_id, refs)
    for record in parsed.pending:
        reference = record.values.pop("_specimen", None)
        if reference is None:
            continue
        ref, path, _ = parsed.specimens[reference]
        specimen = found.get(ref)
        if specimen is None:
            errors.add(path, f"{json_path(path)}: no specimen with this barcode or id in the biobank", value=ref)
            continue
        donor_id = donor_ids.get(record.donor_ref)
        if donor_id is not None and specimen.donor_id not in (None, donor_id):
            errors.add(path, f"{json_path(path)}: the specimen belongs to another donor", value=ref)
            continue
        record.values["specimen_id"] = specimen.id
