"""Plain-language views of consent records for pages (donor portal and staff), in English or Chinese."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from biobank.consent import repository as repo
from biobank.consent.duo import PLAIN
from biobank.consent.models import ConsentFormVersion, ConsentOption, DonorConsent, OptionKind
from biobank.kit.validation import icd10_description

LANGS = ("en", "zh")
DECLINED_PLAIN = {
    "storage": ("Your samples are not kept for future research.", "您的样本不会为将来的研究而保存。"),
    "genetic": ("They may not be used for genetic research.", "不得用于遗传学研究。"),
    "data_linkage": ("Your data may not be linked with other data.", "您的数据不得与其他数据关联。"),
}
STATUS_WORDS = {
    "active": ("current", "当前有效"),
    "superseded": ("replaced by a newer version", "已被新版本取代"),
    "withdrawn": ("withdrawn", "已撤回"),
}
METHOD_WORDS = {
    "electronic": ("signed electronically", "电子签署"),
    "paper": ("signed on paper", "纸质签署"),
}


def _i(lang: str) -> int:
    return 1 if lang == "zh" else 0


def disease_names(codes: list[str]) -> str:
    """ICD-10 codes with their WHO titles: "C34 (Malignant neoplasm of bronchus and lung)"."""
    out = []
    for code in codes:
        try:
            out.append(f"{code} ({icd10_description(code)})")
        except (ValueError, KeyError):
            out.append(code)
    return ", ".join(out)


def plain_sentences(profile: dict[str, Any], lang: str) -> list[str]:
    """What a DUO profile allows, one sentence per term, for donors."""
    i = _i(lang)
    values = {
        "diseases": disease_names(list(profile.get("diseases") or [])),
        "countries": ", ".join(profile.get("countries") or []),
        "months": profile.get("months") or "",
        "moratorium": profile.get("moratorium_until") or "",
    }
    out = []
    permission = str(profile.get("permission", ""))
    if permission in PLAIN:
        out.append(PLAIN[permission][i].format(**values))
    for code in profile.get("modifiers") or []:
        if code in PLAIN:
            out.append(PLAIN[code][i].format(**values))
    for declined in profile.get("declined") or []:
        if declined in DECLINED_PLAIN:
            out.append(DECLINED_PLAIN[declined][i])
    return out


@dataclass(frozen=True)
class OptionView:
    """One option as a donor reads it, with their answer."""

    code: str
    kind: str
    label: str
    explanation: str
    answer: bool | None


def option_views(options: list[ConsentOption], choices: dict[str, bool], lang: str) -> list[OptionView]:
    """The options of a version in the donor's language, with their answers (None for conditions)."""
    zh = lang == "zh"
    out = []
    for o in options:
        answer = None if o.kind == OptionKind.CONDITION else bool(choices.get(o.code, False))
        out.append(
            OptionView(
                code=o.code,
                kind=str(o.kind),
                label=(o.label_zh if zh and o.label_zh else o.label_en),
                explanation=(o.explanation_zh if zh and o.explanation_zh else o.explanation_en),
                answer=answer,
            )
        )
    return out


@dataclass(frozen=True)
class RecordView:
    """A consent record for a timeline."""

    public_id: str
    version: int
    form_version: str
    form_version_number: int
    status: str
    status_text: str
    method_text: str
    given_at: datetime
    recorded_at: datetime
    valid_until: datetime | None
    is_current: bool
    sentences: list[str]
    options: list[OptionView]
    has_witness: bool
    has_scan: bool
    channel: str


def record_views(session: Session, records: list[DonorConsent], lang: str) -> list[RecordView]:
    """Records with their version, options and plain-language sentences (a fixed number of queries)."""
    if not records:
        return []
    i = _i(lang)
    versions = repo.versions_by_ids(session, sorted({r.form_version_id for r in records}))
    options = repo.options_of(session, sorted(versions))
    profiles = repo.profile_rows(session, sorted({r.profile_key for r in records}))
    return [
        RecordView(
            public_id=r.public_id,
            version=r.version,
            form_version=versions[r.form_version_id].public_id,
            form_version_number=versions[r.form_version_id].number,
            status=str(r.status),
            status_text=STATUS_WORDS.get(str(r.status), (str(r.status), str(r.status)))[i],
            method_text=METHOD_WORDS.get(str(r.method), (str(r.method), str(r.method)))[i],
            given_at=r.given_at,
            recorded_at=r.recorded_at,
            valid_until=r.valid_until,
            is_current=r.is_current,
            sentences=plain_sentences(profiles[r.profile_key].body, lang),
            options=option_views(options[r.form_version_id], r.choices, lang),
            has_witness=r.has_witness,
            has_scan=r.scan_id is not None,
            channel=r.channel,
        )
        for r in records
    ]


def version_text(version: ConsentFormVersion, lang: str) -> str:
    """The form's text in the donor's language (English when there is no translation)."""
    return version.text_zh if lang == "zh" and version.text_zh else version.text_en
