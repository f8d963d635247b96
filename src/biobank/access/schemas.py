"""API schemas of access requests: the request and its lines, ethics decisions, provider state changes."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import AfterValidator, Field, model_validator

from biobank.access.models import ItemKind, ProviderState
from biobank.consent.duo import DUO_IDS, PurposeCategory
from biobank.consent.schemas import PurposeIn
from biobank.kit.schemas import ReadSchema, Schema
from biobank.kit.vocab import DatasetType, SampleType
from biobank.specimens.models import QuantityUnit

# ISO 3166-1 alpha-2: the 249 officially assigned codes (no reserved or user-assigned ones).
ISO_COUNTRIES = frozenset(
    """
AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ BR BS BT
BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO DZ EC EE EG EH
ER ES ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU GW GY HK HM HN HR HT
HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN KP KR KW KY KZ LA LB LC LI LK LR LS
LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI
NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW PY QA RE RO RS RU RW SA SB SC SD SE SG
SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG
UM US UY UZ VA VC VE VG VI VN VU WF WS YE YT ZA ZM ZW
""".split()  # noqa: SIM905 (a table people can read)
)
# A purpose category may be given by its DUO id (DUO:0000042) or its shorthand (GRU).
_CATEGORY_BY_DUO_ID = {DUO_IDS[c.value]: c.value for c in PurposeCategory}


def iso_country(value: str) -> str:
    """An ISO 3166-1 alpha-2 code, upper-cased; anything else is refused."""
    cleaned = value.strip().upper()
    if cleaned not in ISO_COUNTRIES:
        raise ValueError(f"{value!r} is not an ISO 3166-1 alpha-2 country code")
    return cleaned


IsoCountry = Annotated[str, AfterValidator(iso_country)]


class RequestPurpose(PurposeIn):
    """The research purpose, DUO-coded exactly as consent's matcher reads it (category by shorthand or DUO id)."""

    @model_validator(mode="before")
    @classmethod
    def _duo_id_category(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("category"), str):
            category = data["category"].strip()
            data = {**data, "category": _CATEGORY_BY_DUO_ID.get(category.upper(), category)}
        return data


class ItemIn(Schema):
    """One requested line: `collection` (quantity specimens, optionally of one material), `specimen` (by public
    id), or `data` (a MIABIS data category of a collection)."""

    kind: ItemKind
    collection: str | None = Field(default=None, max_length=80)
    specimen: str | None = Field(default=None, max_length=80)
    sample_type: SampleType | None = None
    data_category: DatasetType | None = None
    quantity: int = Field(default=1, ge=1, le=1_000_000, description="specimens (or records) asked for")
    amount: float | None = Field(default=None, gt=0, le=1_000_000, description="per specimen, in amount_unit")
    amount_unit: QuantityUnit | None = None
    notes: str = Field(default="", max_length=2000)


class AccessRequestCreate(Schema):
    """A new request (a draft until submitted)."""

    project_title: str = Field(min_length=3, max_length=300)
    project_summary: str = Field(default="", max_length=20_000)
    purpose: RequestPurpose
    ethics_reference: str = Field(default="", max_length=120)
    shipment_country: IsoCountry
    items: list[ItemIn] = Field(min_length=1, max_length=500)


class EthicsDecisionIn(Schema):
    approved: bool
    comments: str = Field(default="", max_length=20_000)


class ProviderStateChange(Schema):
    state: ProviderState
    note: str = Field(default="", max_length=4000, description="what the requester should know (conditions, ...)")


# -- reads ------------------------------------------------------------------------------------------------


class ItemRead(ReadSchema):
    kind: str
    biobank: str
    collection: str
    collection_name: str
    specimen: str | None
    sample_type: str | None
    data_category: str | None
    quantity: int
    amount: float | None
    amount_unit: str
    notes: str


class EligibilityCounts(ReadSchema):
    approve: int = 0
    deny: int = 0
    review: int = 0


class ProviderEventRead(ReadSchema):
    from_state: str
    to_state: str
    note: str
    at: datetime


class NoticeRead(ReadSchema):
    request: str
    biobank: str | None
    kind: str
    days_waiting: int
    message: str
    created_at: datetime


class ProviderRead(ReadSchema):
    biobank: str
    biobank_name: str
    institution: str
    state: str
    eligibility: EligibilityCounts | None
    eligibility_at: datetime | None
    conditions: str
    reminders_sent: int
    contacted_at: datetime | None
    last_activity_at: datetime
    escalated_at: datetime | None
    decided_at: datetime | None
    allowed_states: list[str] = Field(description="states this caller may move the track to now")
    events: list[ProviderEventRead] = Field(default_factory=list)


class EthicsDocumentRead(ReadSchema):
    filename: str
    media_type: str
    size_bytes: int
    sha256: str
    uploaded_at: datetime


class EthicsDecisionRead(ReadSchema):
    approved: bool
    comments: str
    decision_hash: str
    decided_at: datetime


class AccessRequestSummary(ReadSchema):
    public_id: str
    project_title: str
    status: str
    purpose_category: str
    shipment_country: str
    requester_institution: str
    created_at: datetime
    submitted_at: datetime | None
    providers: list[str]
    is_mine: bool


class AccessRequestRead(AccessRequestSummary):
    project_summary: str
    purpose: dict[str, Any]
    purpose_duo: str = Field(description="DUO id of the purpose category")
    ethics_reference: str
    ethics_document: EthicsDocumentRead | None
    ethics_decision: EthicsDecisionRead | None
    items: list[ItemRead]
    provider_tracks: list[ProviderRead]
    notices: list[NoticeRead]
    chain_id: str
    commitment: str | None
    can_decide_ethics: bool


class CompetingRequest(ReadSchema):
    public_id: str
    project_title: str
    status: str
    submitted_at: datetime | None
    requester_institution: str
    quantity: int
    provider_state: str | None


class CompetingGroup(ReadSchema):
    kind: str = Field(description="specimen or collection")
    resource: str = Field(description="public id of the specimen or collection")
    name: str
    biobank: str
    requests: list[CompetingRequest]
