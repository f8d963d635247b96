"""Interop tests reuse the catalogue's cohort (consented donors, facts refreshed)."""

from tests.catalogue.conftest import anonymous, catalogue_defaults, cohort  # noqa: F401
