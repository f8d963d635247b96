"""API schemas of donors. Identifying fields go in, but only the identity endpoint gives them back."""

from __future__ import annotations

from datetime import date, datetime

from pydantic import Field, field_validator

from biobank.kit.schemas import ReadSchema, Schema
from biobank.kit.validation import icd10_code
from biobank.kit.vocab import Sex


class DiagnosisIn(Schema):
    icd10: str
    diagnosed_on: date | None = None
    is_primary: bool = False

    @field_validator("icd10")
    @classmethod
    def _code(cls, value: str) -> str:
        return icd10_code(value)


class DonorCreate(Schema):
    biobank: str = Field(description="biobank code")
    patient_id: str = Field(min_length=1, max_length=64, description="the hospital's patient id (kept encrypted)")
    sex: Sex
    birth_year: int | None = Field(default=None, ge=1880)
    name: str = Field(default="", max_length=200, description="kept encrypted in the vault")
    contact: str = Field(default="", max_length=300, description="kept encrypted in the vault")
    diagnoses: list[DiagnosisIn] = Field(default_factory=list)

    @field_validator("birth_year")
    @classmethod
    def _not_future(cls, value: int | None) -> int | None:
        if value is not None and value > datetime.now().year:
            raise ValueError("birth year is in the future")
        return value


class DonorUpdate(Schema):
    sex: Sex | None = None
    birth_year: int | None = Field(default=None, ge=1880)
    name: str | None = Field(default=None, max_length=200)
    contact: str | None = Field(default=None, max_length=300)


class DiagnosisRead(ReadSchema):
    icd10: str
    diagnosed_on: date | None
    is_primary: bool


class DonorRead(ReadSchema):
    public_id: str
    biobank: str
    sex: str
    birth_year: int | None
    diagnoses: list[DiagnosisRead] = Field(default_factory=list)
    specimen_count: int = 0
    created_at: datetime


class DonorIdentity(ReadSchema):
    public_id: str
    name: str
    patient_id: str
    contact: str
