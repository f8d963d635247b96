"""Disclosure settings of the catalogue, read from BIOBANK_CATALOGUE_* environment variables.

They live here rather than in biobank.config so the catalogue can be tuned without touching the node's
settings object; tests and operators replace them with `configure_catalogue()`.
"""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class CatalogueSettings(BaseSettings):
    """Thresholds and rounding of every number the catalogue, the count query and the Beacon publish."""

    model_config = SettingsConfigDict(env_prefix="BIOBANK_CATALOGUE_", env_file=None, extra="ignore")

    # A collection-facts cell with fewer donors than this is not published (BBMRI Directory: 10).
    min_donors_per_cell: int = Field(default=10, ge=1)
    # Counts from 1 to floor-1 are reported as "< floor" (the Beacon reports them as `floor`).
    count_floor: int = Field(default=10, ge=1)
    # Counts at or above the floor are rounded to a multiple of this step (1 = exact).
    count_step: int = Field(default=10, ge=1)
    # The rounding function, by name (see biobank.catalogue.disclosure.register_rounding).
    count_rounding: str = "nearest"
    # How the Beacon names itself in /info and every response.
    beacon_id: str = "org.biobank-commons.beacon"
    beacon_name: str = "Biobank Commons Beacon"


_current: CatalogueSettings | None = None


def get_catalogue_settings() -> CatalogueSettings:
    """The process-wide catalogue settings (read from the environment on first use)."""
    global _current
    if _current is None:
        _current = CatalogueSettings()
    return _current


def configure_catalogue(settings: CatalogueSettings | None) -> None:
    """Replace the catalogue settings (tests, operators); None re-reads the environment next time."""
    global _current
    _current = settings
