"""API schemas of omics datasets, files, specimen links and coverage."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from pydantic import Field, field_validator

from biobank.kit.schemas import ReadSchema, Schema
from biobank.omics.models import OmicsKind

CHECKSUM = re.compile(r"^(sha256:[0-9a-f]{64}|sha512:[0-9a-f]{128}|md5:[0-9a-f]{32}|crc32c:[0-9a-f]{8})$")
URI = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.\-]*://\S+$")


def _metrics(value: dict[str, Any]) -> dict[str, Any]:
    for key, item in value.items():
        if not isinstance(item, int | float | str | bool) or (isinstance(item, str) and len(item) > 200):
            raise ValueError(f"QC metric {key!r} must be a number, a flag or a short text")
    return value


class FileIn(Schema):
    uri: str = Field(max_length=1000, description="s3://, https://, file://, drs:// … URI of the file")
    size_bytes: int | None = Field(default=None, ge=0)
    checksum: str = Field(description="sha256:<hex>, sha512:<hex>, md5:<hex> or crc32c:<hex>")
    format: str = Field(default="", max_length=20, description="VCF, BAM, CRAM, FASTQ, IDAT, mzML, …")

    @field_validator("uri")
    @classmethod
    def _uri(cls, value: str) -> str:
        if not URI.match(value):
            raise ValueError("give a URI with a scheme (s3://bucket/key, https://…, file:///…)")
        return value

    @field_validator("checksum")
    @classmethod
    def _checksum(cls, value: str) -> str:
        value = value.strip().lower()
        if not CHECKSUM.match(value):
            raise ValueError("give the algorithm and hex digest, e.g. sha256:9f86d0…")
        return value


class SpecimenLinkIn(Schema):
    specimen: str = Field(description="specimen public id or barcode")
    sample_name: str = Field(default="", max_length=200, description="the name the data files use")
    qc_metrics: dict[str, Any] = Field(default_factory=dict)

    @field_validator("qc_metrics")
    @classmethod
    def _qc(cls, value: dict[str, Any]) -> dict[str, Any]:
        return _metrics(value)


class DatasetCreate(Schema):
    biobank: str
    kind: OmicsKind
    title: str = Field(min_length=1, max_length=200)
    description: str = ""
    platform: str = Field(min_length=1, max_length=200, description="e.g. Illumina NovaSeq 6000")
    reference_genome: str = Field(default="", max_length=40)
    qc_metrics: dict[str, Any] = Field(default_factory=dict)
    files: list[FileIn] = Field(default_factory=list)
    specimens: list[SpecimenLinkIn] = Field(default_factory=list)

    @field_validator("qc_metrics")
    @classmethod
    def _qc(cls, value: dict[str, Any]) -> dict[str, Any]:
        return _metrics(value)


class FileRead(ReadSchema):
    uri: str
    format: str
    size_bytes: int | None
    checksum: str
    samples: list[str]


class SpecimenLinkRead(ReadSchema):
    specimen: str
    sample_name: str
    qc_metrics: dict[str, Any]


class DatasetRead(ReadSchema):
    public_id: str
    biobank: str
    kind: str
    title: str
    description: str
    platform: str
    reference_genome: str
    qc_metrics: dict[str, Any]
    files: list[FileRead]
    specimens: list[SpecimenLinkRead]
    created_at: datetime


class DatasetBrief(ReadSchema):
    public_id: str
    biobank: str
    kind: str
    title: str
    platform: str
    specimens: int
    files: int
    created_at: datetime


class VcfReport(ReadSchema):
    fileformat: str
    samples: list[str]
    mapped: dict[str, str] = Field(description="sample name → specimen public id")
    contigs: int
    info: int
    formats: int
    reference: str
    linked: int = Field(description="specimens newly linked to the dataset")


class CoverageLayer(ReadSchema):
    kind: str
    specimens: int
    share: float | None


class CollectionCoverage(ReadSchema):
    collection: str
    name: str
    specimens: int
    with_omics: int
    share: float | None
    layers: list[CoverageLayer]
