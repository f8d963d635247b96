"""Clinical settings, read from BIOBANK_CLINICAL_* environment variables."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_MINIMUM_DATASET = [
    "sex",
    "birth_year",
    "diagnosis.icd10",
    "diagnosis.date",
    "diagnosis.morphology",
    "diagnosis.stage",
    "treatment",
    "outcome.vital_status",
    "outcome.date",
]


class ClinicalSettings(BaseSettings):
    """The minimum clinical dataset the quality report measures completeness against (JSON list in env)."""

    model_config = SettingsConfigDict(env_prefix="BIOBANK_CLINICAL_", env_file=None, extra="ignore")

    minimum_dataset: list[str] = Field(default_factory=lambda: list(DEFAULT_MINIMUM_DATASET))
    max_upload_mb: int = Field(default=200, ge=1)


_current: ClinicalSettings | None = None


def get_clinical_settings() -> ClinicalSettings:
    """The process-wide clinical settings."""
    global _current
    if _current is None:
        _current = ClinicalSettings()
    return _current


def configure_clinical(settings: ClinicalSettings | None) -> None:
    """Replace the clinical settings (tests, operators)."""
    global _current
    _current = settings
