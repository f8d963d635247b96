"""The columns of the specimen import template: names, which are required, and what each holds.

docs/import-template.md and the downloadable template file are written from these.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Column:
    """One column of the import template."""

    name: str
    required: bool
    description: str
    example: str = ""
    example_2: str = ""


COLUMNS: tuple[Column, ...] = (
    Column("barcode", True, "Unique label of the tube or block (3–64 letters, digits or . _ - /).", "SER-000101",
           "SER-000101-01"),
    Column("collection", True, "Collection public id, or its acronym within the biobank.", "LUNG", "LUNG"),
    Column("sample_type", True, "MIABIS material type, e.g. Serum, Plasma, DNA, Tissue (Frozen) (any case).",
           "Serum", "Serum"),
    Column("detailed_type", False, "Free text refining the material (up to 100 characters).", "", ""),
    Column("donor_patient_id", False,
           "Hospital patient id; turned into the donor's keyed pseudonym and never stored in clear outside "
           "the encrypted vault. An unknown patient is registered when donor_sex is given.", "MRN0012345", ""),
    Column("donor_sex", False, "MIABIS sex: Male, Female, Unknown, Undifferentiated, Not applicable.", "Female", ""),
    Column("donor_birth_year", False, "Year of birth of a donor registered by this file.", "1961", ""),
    Column("donor", False, "Donor public id (instead of donor_patient_id).", "", ""),
    Column("parent_barcode", False,
           "Barcode of the specimen this one was taken from: an existing specimen or an earlier row.", "",
           "SER-000101"),
    Column("lineage", False, "primary, aliquot or derivative (default primary; aliquot when a parent is given).",
           "primary", "aliquot"),
    Column("collected_at", False, "ISO 8601 date and time with offset, e.g. 2026-01-31T09:30:00+08:00.",
           "2026-01-31T09:30:00+08:00", "2026-01-31T09:30:00+08:00"),
    Column("received_at", False, "ISO 8601 with offset.", "2026-01-31T10:05:00+08:00", "2026-01-31T10:05:00+08:00"),
    Column("processed_at", False, "ISO 8601 with offset (centrifugation for fluids).", "2026-01-31T10:40:00+08:00",
           "2026-01-31T10:40:00+08:00"),
    Column("frozen_at", False, "ISO 8601 with offset.", "2026-01-31T11:20:00+08:00", "2026-01-31T11:20:00+08:00"),
    Column("container", False, "SPREC primary container code, e.g. SST, PED, SCI, HEP.", "SST", "SST"),
    Column("sprec_code", False, "SPREC v3 code; derived from the times and container when empty.", "", ""),
    Column("anatomical_site", False, "ICD-O-3 topography, e.g. C34.1.", "", ""),
    Column("diagnosis", False, "ICD-10 (WHO) code, e.g. C34.1.", "C34.1", "C34.1"),
    Column("quantity", False, "Amount, zero or more (aliquots draw it from their parent).", "2", "0.5"),
    Column("quantity_unit", False, "mL, µL (or uL), g, mg, µg, ng, cells, pieces, slides, blocks.", "mL", "mL"),
    Column("concentration", False, "Concentration, zero or more.", "", ""),
    Column("concentration_unit", False, "ng/µL, µg/mL, mg/mL, cells/mL.", "", ""),
    Column("freeze_thaw_count", False, "Whole number, zero or more (default 0).", "0", "0"),
    Column("storage_temperature", False, "MIABIS storage temperature or a common spelling such as -80 or LN2 vapour.",
           "-80", "-80"),
    Column("status", False, "collected, received, processed or stored (default stored with a position, "
           "else received).", "", ""),
    Column("box", False, "Box public id or full path (Site / Freezer / Rack / Box).", "", "Main / F01 / R01 / B001"),
    Column("position", False, "Position in the box, e.g. A1.", "", "A1"),
    Column("notes", False, "Free text.", "", ""),
)
COLUMN_NAMES = tuple(c.name for c in COLUMNS)
REQUIRED = tuple(c.name for c in COLUMNS if c.required)
