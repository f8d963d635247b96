"""Factories for consent tests: a typical bilingual form, donors with consents, specimens."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from biobank.consent import forms, records
from biobank.consent.models import ConsentForm, ConsentFormVersion, DonorConsent
from biobank.consent.schemas import ConsentRecordCreate, FormCreate, VersionCreate
from biobank.institutions.models import Biobank
from tests.factories import system

# A form like the ones hospitals use: donors choose broad use, health research, or lung cancer only,
# and answer the extra questions; ethics approval is always required.
OPTIONS: list[dict[str, Any]] = [
    {
        "code": "broad",
        "kind": "permission",
        "label_en": "Any research",
        "label_zh": "任何研究",
        "duo_permission": "GRU",
    },
    {
        "code": "health",
        "kind": "permission",
        "label_en": "Health and medical research only",
        "label_zh": "仅限健康和医学研究",
        "duo_permission": "HMB",
    },
    {
        "code": "lung",
        "kind": "permission",
        "label_en": "Lung cancer research only",
        "label_zh": "仅限肺癌研究",
        "duo_permission": "DS",
        "diseases": ["C34"],
    },
    {
        "code": "ethics",
        "kind": "condition",
        "label_en": "Every study needs ethics approval",
        "label_zh": "每项研究都需要伦理批准",
        "duo_modifiers": ["IRB"],
    },
    {
        "code": "commercial",
        "kind": "choice",
        "label_en": "Companies may use my samples",
        "label_zh": "企业可以使用我的样本",
        "extra_choice": "commercial",
        "applies_when": "declined",
        "duo_modifiers": ["NPUNCU"],
        "default": True,
    },
    {
        "code": "genetic",
        "kind": "choice",
        "label_en": "Genetic research",
        "label_zh": "遗传学研究",
        "extra_choice": "genetic",
        "default": True,
    },
    {
        "code": "abroad",
        "kind": "choice",
        "label_en": "Sharing with researchers abroad",
        "label_zh": "与境外研究人员共享",
        "extra_choice": "cross_border",
        "default": True,
    },
    {
        "code": "recontact",
        "kind": "choice",
        "label_en": "You may contact me again",
        "label_zh": "可以再次联系我",
        "extra_choice": "recontact",
        "default": True,
    },
]

BROAD = {
    "broad": True,
    "health": False,
    "lung": False,
    "commercial": True,
    "genetic": True,
    "abroad": True,
    "recontact": True,
}
LUNG_ONLY = BROAD | {"broad": False, "lung": True}
NO_COMMERCIAL = BROAD | {"commercial": False}


def days_ago(days: float) -> datetime:
    return datetime.now(UTC) - timedelta(days=days)


def make_form(
    session: Session,
    biobank: Biobank,
    *,
    code: str = "MAIN",
    options: list[dict[str, Any]] | None = None,
    published_at: datetime | None = None,
) -> tuple[ConsentForm, ConsentFormVersion]:
    form = forms.create_form(
        session,
        system(),
        FormCreate(biobank=biobank.code, code=code, title_en="Biobank consent", title_zh="生物样本库知情同意书"),
    )
    version = add_version(session, form, options=options, published_at=published_at or days_ago(400))
    return form, version


def add_version(
    session: Session,
    form: ConsentForm,
    *,
    options: list[dict[str, Any]] | None = None,
    published_at: datetime | None = None,
) -> ConsentFormVersion:
    data = VersionCreate.model_validate(
        {
            "text_en": "You are asked to give samples for research. Your choices are below.",
            "text_zh": "我们邀请您为研究捐献样本。您的选择如下。",
            "options": options or OPTIONS,
            "published_at": published_at,
        }
    )
    return forms.add_version(session, system(), form, data)


def give_consent(
    session: Session,
    donor: Any,
    version: ConsentFormVersion,
    choices: dict[str, bool] | None = None,
    *,
    given_at: datetime | None = None,
    valid_until: datetime | None = None,
) -> DonorConsent:
    """An electronic consent as the donor gives it in the portal."""
    data = ConsentRecordCreate(
        version=version.public_id,
        choices=choices or BROAD,
        given_at=given_at or days_ago(30),
        valid_until=valid_until,
        method="electronic",
        signed_name="Test Person",
    )
    return records.record_consent(session, system(), donor, data, channel="portal")


def purpose_body(**overrides: Any) -> dict[str, Any]:
    return {
        "category": "DS",
        "diseases": ["C34.1"],
        "commercial": False,
        "non_profit": True,
        "country": "CN",
        "ethics_approval": True,
        "collaboration": False,
        "methods_development": False,
    } | overrides


@dataclass
class CohortData:
    """Donors of biobank A: broad (2 specimens), lung-only (3), no-commercial (1), no consent (1);
    a broad donor of biobank B (2 specimens). Every specimen is serum, C34.1."""

    form: ConsentForm
    version: ConsentFormVersion
    version_b: ConsentFormVersion
    donors: dict[str, Any]
    specimens: dict[str, list[str]]


def make_consent_cohort(session: Session, biobank_a: str, biobank_b: str, collection_a: str,
                        collection_b: str) -> CohortData:
    """The standard consent cohort over two biobanks and one collection in each (committed)."""
    from biobank.institutions import service as institutions
    from tests.factories import make_donor, make_specimen

    bb_a = institutions.get_biobank(session, biobank_a)
    bb_b = institutions.get_biobank(session, biobank_b)
    col_a = institutions.get_collection(session, collection_a)
    col_b = institutions.get_collection(session, collection_b)
    form, version = make_form(session, bb_a)
    _, version_b = make_form(session, bb_b, code="B")
    plan = [
        ("broad", bb_a, col_a, version, BROAD, 2),
        ("lung", bb_a, col_a, version, LUNG_ONLY, 3),
        ("nocommercial", bb_a, col_a, version, NO_COMMERCIAL, 1),
        ("none", bb_a, col_a, None, None, 1),
        ("b_broad", bb_b, col_b, version_b, BROAD, 2),
    ]
    donors: dict[str, Any] = {}
    specimens: dict[str, list[str]] = {}
    for name, biobank, collection, form_version, choices, n in plan:
        donor = make_donor(session, biobank)
        if form_version is not None:
            give_consent(session, donor, form_version, choices)
        donors[name] = donor
        specimens[name] = [
            make_specimen(session, collection, donor=donor.public_id, diagnosis="C34.1").public_id for _ in range(n)
        ]
    session.commit()
    return CohortData(form, version, version_b, donors, specimens)
