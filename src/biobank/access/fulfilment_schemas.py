"""API schemas of fulfilment: agreements, reservations, shipments, data grants, results, close."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time
from enum import StrEnum
from typing import Annotated

from pydantic import AfterValidator, Field, field_validator

from biobank.access.fulfilment_models import (
    AgreementKind,
    AgreementStatus,
    GrantStatus,
    ReservationStatus,
    ResultKind,
    ShipmentCondition,
)
from biobank.kit.schemas import ReadSchema, Schema

# Crossref's recommended pattern for modern DOIs (matches 74.4M of 74.9M registered DOIs).
DOI_PATTERN = re.compile(r"^10\.\d{4,9}/[-._;()/:A-Za-z0-9<>\[\]]+$")
DOI_PREFIXES = ("https://doi.org/", "http://doi.org/", "https://dx.doi.org/", "http://dx.doi.org/", "doi:")


def normalise_doi(value: str) -> str:
    """A DOI without resolver prefix, checked against the DOI syntax (10.<registrant>/<suffix>)."""
    doi = value.strip()
    for prefix in DOI_PREFIXES:
        if doi.lower().startswith(prefix):
            doi = doi[len(prefix) :]
            break
    if not DOI_PATTERN.match(doi):
        raise ValueError("not a DOI: expected 10.<registrant>/<suffix>, e.g. 10.1038/s41586-020-2649-2")
    return doi


def _http_url(value: str) -> str:
    url = value.strip()
    if not re.match(r"^https?://[^\s/$.?#][^\s]*$", url, re.IGNORECASE):
        raise ValueError("give an http(s) URL")
    return url


Doi = Annotated[str, AfterValidator(normalise_doi)]
HttpUrl = Annotated[str, AfterValidator(_http_url)]


class Party(StrEnum):
    REQUESTER = "requester"
    PROVIDER = "provider"


# -- agreements --------------------------------------------------------------------------------------------


class AgreementCreate(Schema):
    """Generate the agreement with one provider institution (a manager of one of its biobanks)."""

    provider: str | None = Field(default=None, description="provider institution code; default: yours")
    fee_amount: int = Field(default=0, ge=0, le=10**12, description="fee in accounting units")
    data_access_days: int | None = Field(default=None, ge=1, le=3650)
    specimens: bool | None = Field(default=None, description="covers specimens (default: from the request's items)")
    data: bool | None = Field(default=None, description="covers data (default: from the request's items)")


class AgreementSign(Schema):
    password: str = Field(min_length=1, max_length=200, description="your password, to confirm the signature")
    party: Party | None = Field(default=None, description="only needed when you are on both sides")


class AgreementRead(ReadSchema):
    public_id: str
    request: str
    provider_institution: str
    biobanks: list[str]
    kind: AgreementKind
    status: AgreementStatus
    includes_specimens: bool
    includes_data: bool
    data_access_days: int | None
    fee_amount: int
    template: str
    terms_text: str
    terms_hash: str
    requester_signature: str | None
    requester_signer: str | None
    requester_signed_at: datetime | None
    provider_signature: str | None
    provider_signer: str | None
    provider_signed_at: datetime | None
    signed_at: datetime | None
    fulfilled_at: datetime | None
    revoked_at: datetime | None
    created_at: datetime


# -- reservations ------------------------------------------------------------------------------------------


class ReservationCreate(Schema):
    """Reserve specimens of one provider biobank for the request (eligible and stored ones only)."""

    biobank: str | None = Field(default=None, description="biobank code; default: the one you work in")
    specimens: list[str] = Field(min_length=1, max_length=2000, description="public ids or barcodes")


class ReservationRelease(Schema):
    reason: str = Field(min_length=1, max_length=300)


class ReservationRead(ReadSchema):
    public_id: str
    agreement: str
    biobank: str
    specimen: str
    barcode: str
    status: ReservationStatus
    reserved_at: datetime
    released_at: datetime | None
    release_reason: str
    shipment: str | None


# -- shipments ---------------------------------------------------------------------------------------------


class ShipmentCreate(Schema):
    """Dispatch the reserved specimens of an agreement (one shipment per provider institution)."""

    agreement: str | None = Field(default=None, description="agreement public id; default: yours")
    courier: str = Field(min_length=1, max_length=100)
    tracking_number: str = Field(min_length=1, max_length=100)
    temperature_logger: str = Field(default="", max_length=100, description="temperature logger id")
    dispatched_at: datetime

    @field_validator("dispatched_at")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("give a time with its UTC offset")
        return value.astimezone(UTC)


class ShipmentReceive(Schema):
    received_at: datetime
    condition: ShipmentCondition
    notes: str = Field(default="", max_length=2000)

    @field_validator("received_at")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("give a time with its UTC offset")
        return value.astimezone(UTC)


class ShipmentRead(ReadSchema):
    public_id: str
    agreement: str
    biobank: str
    courier: str
    tracking_number: str
    temperature_logger: str
    dispatched_at: datetime
    specimen_count: int
    specimens: list[str]
    shipment_hash: str
    received_at: datetime | None
    condition: ShipmentCondition | None
    condition_notes: str
    condition_hash: str | None


# -- data grants -------------------------------------------------------------------------------------------


class GrantCreate(Schema):
    """Grant time-bounded access to pseudonymised data (a manager of a provider biobank)."""

    agreement: str | None = Field(default=None, description="agreement public id; default: yours")
    until: date | datetime = Field(description="last day (UTC, inclusive) or exact end time of access")
    specimens: list[str] | None = Field(
        default=None, max_length=20000, description="public ids or barcodes; default: the agreement's specimens"
    )

    def until_utc(self) -> datetime:
        """The end of access as an aware UTC datetime (a date means the end of that day)."""
        if isinstance(self.until, datetime):
            if self.until.tzinfo is None:
                raise ValueError("naive")
            return self.until.astimezone(UTC)
        return datetime.combine(self.until, time(23, 59, 59), tzinfo=UTC)


class GrantRead(ReadSchema):
    public_id: str
    agreement: str
    until: datetime
    status: GrantStatus
    active: bool
    specimens: int
    revoked_specimens: int
    granted_at: datetime
    exports: int


# -- results and close -------------------------------------------------------------------------------------


class PublicationIn(Schema):
    doi: Doi
    title: str = Field(default="", max_length=500)


class DatasetIn(Schema):
    url: HttpUrl
    description: str = Field(min_length=1, max_length=5000)


class ResultsCreate(Schema):
    publications: list[PublicationIn] = Field(default_factory=list, max_length=200)
    datasets: list[DatasetIn] = Field(default_factory=list, max_length=200)


class ResultRead(ReadSchema):
    kind: ResultKind
    doi: str | None
    title: str
    url: str | None
    description: str
    returned_at: datetime
    results_hash: str


class CloseRequest(Schema):
    pass


class RequestStatusRead(ReadSchema):
    public_id: str
    status: str
    closed_at: datetime | None


class ReviewFlagRead(ReadSchema):
    public_id: str
    biobank: str
    withdrawal: str
    summary: str
    created_at: datetime
    resolved_at: datetime | None


class FulfilmentRead(ReadSchema):
    """Everything of steps 5–7 of one request, as the caller may see it."""

    request: str
    status: str
    agreements: list[AgreementRead]
    reservations: list[ReservationRead]
    shipments: list[ShipmentRead]
    grants: list[GrantRead]
    results: list[ResultRead]
    review_flags: list[ReviewFlagRead]
