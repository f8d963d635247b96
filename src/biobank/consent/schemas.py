"""API schemas of consent: the matcher body, forms and versions, records, withdrawal, eligibility."""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Annotated, Any, TypeVar

from pydantic import AfterValidator, AwareDatetime, Field, ValidationInfo, field_validator

from biobank.consent.duo import Modifier, Permission, PurposeCategory
from biobank.consent.matcher import ConsentProfile, ExtraChoice, Purpose
from biobank.consent.models import (
    AppliesWhen,
    ConsentMethod,
    ConsentStatus,
    OptionKind,
    TaskStatus,
    WithdrawalKind,
)
from biobank.kit.schemas import ReadSchema, Schema
from biobank.kit.validation import icd10_code
from biobank.kit.vocab import SampleType
from biobank.specimens.models import Status

_COUNTRY = re.compile(r"^[A-Z]{2}$")
_CODE = re.compile(r"^[a-z0-9][a-z0-9_\-]{0,39}$")


def _icd10(value: str) -> str:
    return icd10_code(value)


def _country(value: str) -> str:
    cleaned = value.strip().upper()
    if not _COUNTRY.match(cleaned):
        raise ValueError(f"{value!r} is not an ISO 3166-1 alpha-2 country code")
    return cleaned


Icd10 = Annotated[str, AfterValidator(_icd10)]
Country = Annotated[str, AfterValidator(_country)]


T = TypeVar("T")


def _unique(values: list[Any]) -> list[Any]:
    return list(dict.fromkeys(values))


PARAMETER_NEEDED = {
    Modifier.GS: "GS (geographic restriction) needs at least one country",
    Modifier.TS: "TS (time limit) needs a number of months",
    Modifier.MOR: "MOR (publication moratorium) needs a date",
}


def check_diseases(permission: object, value: list[str], *, permission_given: bool) -> list[str]:
    """DS needs disease codes, and only DS takes them (shared by the profile and option schemas)."""
    if permission is Permission.DS and not value:
        raise ValueError("DS (disease-specific) needs at least one ICD-10 disease code")
    if value and permission_given and permission is not Permission.DS:
        raise ValueError("diseases are given only with the DS permission")
    return _unique(value)


def require_parameter(modifiers: list[Modifier] | None, modifier: Modifier, value: T) -> T:
    """A modifier that takes a parameter (GS countries, TS months, MOR date) must be given it."""
    if modifier in (modifiers or []) and not value and value != 0:
        raise ValueError(PARAMETER_NEEDED[modifier])
    return value


# -- the matcher ----------------------------------------------------------------------------------------


class ConsentIn(Schema):
    """A consent profile in DUO terms (the `consent` of POST /api/v1/consent/match)."""

    permission: Permission
    diseases: list[Icd10] = Field(default_factory=list, validate_default=True)
    modifiers: list[Modifier] = Field(default_factory=list)
    countries: list[Country] = Field(default_factory=list, validate_default=True)
    months: int | None = Field(default=None, ge=1, le=1200, validate_default=True)
    moratorium_until: date | None = Field(default=None, validate_default=True)
    projects: list[str] = Field(default_factory=list)
    declined: list[ExtraChoice] = Field(default_factory=list, description="extra choices the donor declined")

    @field_validator("modifiers")
    @classmethod
    def _modifiers_unique(cls, value: list[Modifier]) -> list[Modifier]:
        return _unique(value)

    @field_validator("diseases")
    @classmethod
    def _ds_needs_diseases(cls, value: list[str], info: ValidationInfo) -> list[str]:
        return check_diseases(info.data.get("permission"), value, permission_given="permission" in info.data)

    @field_validator("countries")
    @classmethod
    def _gs_needs_countries(cls, value: list[str], info: ValidationInfo) -> list[str]:
        return _unique(require_parameter(info.data.get("modifiers"), Modifier.GS, value))

    @field_validator("months")
    @classmethod
    def _ts_needs_months(cls, value: int | None, info: ValidationInfo) -> int | None:
        return require_parameter(info.data.get("modifiers"), Modifier.TS, value)

    @field_validator("moratorium_until")
    @classmethod
    def _mor_needs_date(cls, value: date | None, info: ValidationInfo) -> date | None:
        return require_parameter(info.data.get("modifiers"), Modifier.MOR, value)

    def profile(self) -> ConsentProfile:
        """The matcher's view."""
        return ConsentProfile.of(
            self.permission.value,
            diseases=self.diseases,
            modifiers=[m.value for m in self.modifiers],
            countries=self.countries,
            months=self.months,
            moratorium_until=self.moratorium_until,
            projects=self.projects,
            declined=[d.value for d in self.declined],
        )


class PurposeIn(Schema):
    """A research purpose (the `purpose` of POST /api/v1/consent/match and of eligibility)."""

    category: PurposeCategory
    diseases: list[Icd10] = Field(default_factory=list, validate_default=True)
    commercial: bool | None = None
    non_profit: bool | None = None
    country: Country | None = None
    ethics_approval: bool | None = None
    collaboration: bool | None = None
    methods_development: bool | None = False
    genetic: bool | None = Field(default=None, description="a genetic study")
    data_linkage: bool | None = Field(default=None, description="links the data with other data sets")
    publication: bool | None = Field(default=None, description="commits to publishing the results")
    return_data: bool | None = Field(default=None, description="commits to returning derived data")
    project_id: str | None = Field(default=None, max_length=100)
    duration_months: int | None = Field(default=None, ge=1, le=1200)

    @field_validator("diseases")
    @classmethod
    def _ds_needs_diseases(cls, value: list[str], info: ValidationInfo) -> list[str]:
        category = info.data.get("category")
        if category is PurposeCategory.DS and not value:
            raise ValueError("a DS (disease-specific) purpose needs at least one ICD-10 disease code")
        if value and category in (PurposeCategory.GRU, PurposeCategory.HMB, PurposeCategory.POA):
            raise ValueError("a purpose about specific diseases is DS: state the category DS")
        return _unique(value)

    def purpose(self) -> Purpose:
        """The matcher's view."""
        return Purpose(
            category=self.category.value,
            diseases=frozenset(self.diseases),
            commercial=self.commercial,
            non_profit=self.non_profit,
            country=self.country,
            ethics_approval=self.ethics_approval,
            collaboration=self.collaboration,
            methods_development=self.methods_development,
            genetic=self.genetic,
            data_linkage=self.data_linkage,
            publication=self.publication,
            return_data=self.return_data,
            project_id=self.project_id,
            duration_months=self.duration_months,
        )


class MatchRequest(Schema):
    consent: ConsentIn
    purpose: PurposeIn


class ReasonRead(ReadSchema):
    rule: str
    outcome: str
    duo: list[str]
    message: str


class MatchRead(ReadSchema):
    decision: str = Field(description="APPROVE, DENY or NEEDS_REVIEW")
    reasons: list[ReasonRead]
    conditions: list[str] = Field(default_factory=list, description="what an approval obliges the requester to do")


# -- forms and versions -----------------------------------------------------------------------------------


class FormCreate(Schema):
    biobank: str
    code: str = Field(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9][A-Za-z0-9_\-]*$")
    title_en: str = Field(min_length=1, max_length=200)
    title_zh: str = Field(default="", max_length=200)


class OptionIn(Schema):
    """One option of a form version and its DUO meaning."""

    code: str = Field(description="short id within the version, e.g. 'broad' or 'commercial'")
    kind: OptionKind
    label_en: str = Field(min_length=1, max_length=300)
    label_zh: str = Field(default="", max_length=300)
    explanation_en: str = Field(default="", max_length=4000)
    explanation_zh: str = Field(default="", max_length=4000)
    duo_permission: Permission | None = Field(default=None, validate_default=True)
    duo_modifiers: list[Modifier] = Field(default_factory=list)
    diseases: list[Icd10] = Field(default_factory=list, validate_default=True)
    countries: list[Country] = Field(default_factory=list, validate_default=True)
    months: int | None = Field(default=None, ge=1, le=1200, validate_default=True)
    moratorium_until: date | None = Field(default=None, validate_default=True)
    extra_choice: ExtraChoice | None = None
    applies_when: AppliesWhen = AppliesWhen.ACCEPTED
    default: bool = False

    @field_validator("code")
    @classmethod
    def _code(cls, value: str) -> str:
        if not _CODE.match(value):
            raise ValueError("1 to 40 lower-case letters, digits, _ or -")
        return value

    @field_validator("duo_permission")
    @classmethod
    def _permission_kind(cls, value: Permission | None, info: ValidationInfo) -> Permission | None:
        kind = info.data.get("kind")
        if kind is OptionKind.PERMISSION and value is None:
            raise ValueError("a permission option needs its DUO permission")
        if kind is not None and kind is not OptionKind.PERMISSION and value is not None:
            raise ValueError("only permission options set the DUO permission")
        return value

    @field_validator("duo_modifiers")
    @classmethod
    def _modifiers_unique(cls, value: list[Modifier]) -> list[Modifier]:
        return _unique(value)

    @field_validator("diseases")
    @classmethod
    def _ds_needs_diseases(cls, value: list[str], info: ValidationInfo) -> list[str]:
        return check_diseases(info.data.get("duo_permission"), value, permission_given="duo_permission" in info.data)

    @field_validator("countries")
    @classmethod
    def _gs_needs_countries(cls, value: list[str], info: ValidationInfo) -> list[str]:
        return _unique(require_parameter(info.data.get("duo_modifiers"), Modifier.GS, value))

    @field_validator("months")
    @classmethod
    def _ts_needs_months(cls, value: int | None, info: ValidationInfo) -> int | None:
        return require_parameter(info.data.get("duo_modifiers"), Modifier.TS, value)

    @field_validator("moratorium_until")
    @classmethod
    def _mor_needs_date(cls, value: date | None, info: ValidationInfo) -> date | None:
        return require_parameter(info.data.get("duo_modifiers"), Modifier.MOR, value)


class VersionCreate(Schema):
    text_en: str = Field(min_length=1, max_length=100_000)
    text_zh: str = Field(default="", max_length=100_000)
    options: list[OptionIn] = Field(min_length=1, max_length=100)
    published_at: AwareDatetime | None = Field(default=None, description="default: now")

    @field_validator("options")
    @classmethod
    def _options_consistent(cls, value: list[OptionIn]) -> list[OptionIn]:
        codes = [o.code for o in value]
        if len(set(codes)) != len(codes):
            raise ValueError("option codes must be unique within a version")
        if not any(o.kind is OptionKind.PERMISSION for o in value):
            raise ValueError("a version needs at least one permission option (the DUO permission donors choose)")
        return value


class OptionRead(ReadSchema):
    code: str
    kind: OptionKind
    label_en: str
    label_zh: str
    explanation_en: str
    explanation_zh: str
    duo_permission: str | None
    duo_modifiers: list[str]
    diseases: list[str]
    countries: list[str]
    months: int | None
    moratorium_until: date | None
    extra_choice: str | None
    applies_when: AppliesWhen
    default: bool


class VersionRead(ReadSchema):
    public_id: str
    form: str
    number: int
    text_en: str
    text_zh: str
    published_at: datetime
    options: list[OptionRead]


class FormRead(ReadSchema):
    public_id: str
    biobank: str
    code: str
    title_en: str
    title_zh: str
    versions: list[str] = Field(default_factory=list, description="version public ids, oldest first")
    latest_version: str | None = None


class AcceptedVersions(Schema):
    versions: list[str] = Field(description="form version public ids; empty: every version is accepted")


# -- records ----------------------------------------------------------------------------------------------


class ConsentRecordCreate(Schema):
    """A consent recorded by staff (paper, optionally witnessed) or given by the donor (electronic)."""

    version: str = Field(description="form version public id")
    choices: dict[str, bool] = Field(description="option code → yes/no, for the version's permission and choices")
    given_at: AwareDatetime | None = Field(default=None, description="when the donor consented; default now")
    valid_from: AwareDatetime | None = None
    valid_until: AwareDatetime | None = None
    method: ConsentMethod = ConsentMethod.PAPER
    scan: str | None = Field(default=None, description="public id of an uploaded scan (paper consents)")
    witness: str | None = Field(default=None, max_length=200)
    signed_name: str | None = Field(default=None, max_length=200, description="typed name (e-signature)")


class ChoicesChange(Schema):
    """A donor changing their choices in the portal: a new version, e-signed with their typed name."""

    choices: dict[str, bool]
    signed_name: str = Field(min_length=2, max_length=200)
    version: str | None = Field(default=None, description="form version; default the newest of the same form")


class ScanRead(ReadSchema):
    public_id: str
    sha256: str
    media_type: str
    size_bytes: int


class ConsentRecordRead(ReadSchema):
    public_id: str
    donor: str
    version: int
    form: str
    form_version: str
    form_version_number: int
    choices: dict[str, bool]
    profile: dict[str, Any]
    profile_key: str
    method: ConsentMethod
    signed_at: datetime | None
    has_witness: bool
    scan: ScanRead | None
    given_at: datetime
    valid_from: datetime
    valid_until: datetime | None
    status: ConsentStatus
    is_current: bool
    channel: str
    recorded_at: datetime
    supersedes: str | None
    withdrawal: WithdrawalRead | None = None


# -- withdrawal -------------------------------------------------------------------------------------------


class WithdrawalCreate(Schema):
    kind: WithdrawalKind
    reason: str = Field(default="", max_length=1000)


class DestructionTaskRead(ReadSchema):
    public_id: str
    withdrawal: str
    specimen: str
    status: TaskStatus
    created_at: datetime
    completed_at: datetime | None
    notes: str


class FollowUpRead(ReadSchema):
    public_id: str
    withdrawal: str
    specimen: str
    recipient: str
    distributed_at: datetime | None
    status: TaskStatus
    created_at: datetime
    resolved_at: datetime | None
    notes: str


class WithdrawalRead(ReadSchema):
    public_id: str
    donor: str
    consent: str
    kind: WithdrawalKind
    at: datetime
    channel: str
    flagged_requests: list[str]
    destruction_tasks: list[DestructionTaskRead] = Field(default_factory=list)
    follow_ups: list[FollowUpRead] = Field(default_factory=list)


class TaskComplete(Schema):
    notes: str = Field(default="", max_length=1000)


# -- eligibility ------------------------------------------------------------------------------------------


class SearchCriteria(Schema):
    """Search criteria over specimens (ANDed)."""

    biobank: str | None = None
    sample_types: list[SampleType] = Field(default_factory=list)
    statuses: list[Status] = Field(default_factory=list)
    diagnoses: list[Icd10] = Field(default_factory=list, description="ICD-10; sub-codes included")


class EligibilityRequest(Schema):
    purpose: PurposeIn
    specimens: list[str] = Field(default_factory=list, max_length=10_000, description="public ids or barcodes")
    collections: list[str] = Field(default_factory=list, max_length=1000)
    criteria: SearchCriteria | None = None
    limit: int = Field(default=100, ge=0, le=1000, description="specimens listed with reasons (staff only)")
    by_collection: bool = Field(default=False, description="also count per collection")


class DecisionCounts(ReadSchema):
    APPROVE: int = 0
    DENY: int = 0
    NEEDS_REVIEW: int = 0


class CollectionCounts(DecisionCounts):
    collection: str


class SpecimenDecision(ReadSchema):
    specimen: str
    collection: str
    decision: str
    reasons: list[ReasonRead]
    conditions: list[str]


class EligibilityRead(ReadSchema):
    total: int
    counts: DecisionCounts
    by_collection: list[CollectionCounts] = Field(default_factory=list, description="when asked for")
    profiles: int = Field(description="distinct consent profiles decided")
    specimens: list[SpecimenDecision] | None = Field(
        default=None, description="only for staff of the owning biobank; only their specimens"
    )
    specimens_truncated: bool = False


# -- portal and staff helpers -----------------------------------------------------------------------------


class InvitationCreate(Schema):
    days: int = Field(default=30, ge=1, le=365)


class InvitationCreated(ReadSchema):
    public_id: str
    code: str = Field(description="shown once: give it to the donor")
    expires_at: datetime


class InvitationRedeem(Schema):
    code: str = Field(min_length=4, max_length=64)
    username: str = Field(min_length=3, max_length=64)
    password: str = Field(min_length=10, max_length=200)


class NotificationCreate(Schema):
    text_en: str = Field(min_length=1, max_length=2000)
    text_zh: str = Field(default="", max_length=2000)
    kind: str = Field(default="message", max_length=32)


class NotificationRead(ReadSchema):
    id: int
    kind: str
    text_en: str
    text_zh: str
    created_at: datetime
    read_at: datetime | None


class ReconsentRow(ReadSchema):
    donor: str
    record: str
    form_version: str
    form_version_number: int
    latest_version: str
    has_account: bool
    invited_at: datetime | None


class ReconsentInvite(Schema):
    donors: list[str] = Field(min_length=1, max_length=1000)
    days: int = Field(default=30, ge=1, le=365)


class ReconsentInvited(ReadSchema):
    donor: str
    notified: bool = Field(description="the donor has an account and was notified in the portal")
    code: str | None = Field(default=None, description="invitation code (donors without an account); shown once")


class AccessEventRead(ReadSchema):
    at: datetime
    action: str
    description: str
    institution: str
    resource: str


ConsentRecordRead.model_rebuild()
