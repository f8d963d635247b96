"""ISBER SPREC v3 (Standard PREanalytical Code): tables, parsing, validation and derivation.

A SPREC is seven elements joined by ``-``. The first element (sample type) decides whether the
code describes a fluid or a solid specimen, and so which tables the other six elements use:

* fluid: sample type - primary container - pre-centrifugation delay - centrifugation -
  second centrifugation - post-centrifugation delay - long-term storage
* solid: sample type - type of collection - warm ischemia time - cold ischemia time -
  fixation/stabilisation type - fixation time - long-term storage

``X``/``XXX`` mean unknown and ``Z``/``ZZZ`` other, as in the standard. Where each table entry
comes from (and which could not be confirmed against the published v3 tables) is written down in
``docs/sprec.md``.

Parsing is plain dictionary look-ups behind an LRU cache, because bulk imports validate tens of
thousands of codes per second. Derivation turns recorded facts (timestamps, minutes, a described
centrifugation) into the code, so nobody has to type it; a fact that was not recorded yields the
standard's "unknown" code rather than a guess.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Literal, NamedTuple

Kind = Literal["fluid", "solid"]
HoldingTemperature = Literal["RT", "2-10", "35-38", "other", "unknown"]
SpinTemperature = Literal["RT", "2-10", "other"]

# --------------------------------------------------------------------------------------------
# Tables (code -> English description)
# --------------------------------------------------------------------------------------------

SPREC_FLUID_TYPES: dict[str, str] = {
    "ASC": "Ascites fluid",
    "AMN": "Amniotic fluid",
    "BAL": "Bronchoalveolar lavage",
    "BLD": "Blood (whole)",
    "BMA": "Bone marrow aspirate",
    "BMK": "Breast milk",
    "BUC": "Buccal cells",
    "BUF": "Buffy coat not separated by density gradient (unficolled), viable",
    "BFF": "Buffy coat not separated by density gradient (unficolled), non-viable",
    "CEL": "Mononuclear cells separated by density gradient (Ficoll), viable",
    "CEN": "Fresh cells from non-blood specimen type",
    "CLN": "Cells from non-blood specimen type (e.g. ascites, amniotic), viable",
    "CRD": "Cord blood",
    "CSF": "Cerebrospinal fluid",
    "CTC": "Enriched circulating tumour cells",
    "DWB": "Dried whole blood (e.g. Guthrie cards)",
    "NAS": "Nasal washing",
    "PEL": "Mononuclear cells separated by density gradient (Ficoll), non-viable",
    "PEN": "Cells from non-blood specimen type (e.g. ascites, amniotic), non-viable",
    "PFL": "Pleural fluid",
    "PLP": "Dental pulp",
    "PL1": "Plasma, single spun",
    "PL2": "Plasma, double spun",
    "RBC": "Red blood cells",
    "SAL": "Saliva",
    "SEM": "Semen",
    "SER": "Serum",
    "SPT": "Sputum",
    "STL": "Stool",
    "SYN": "Synovial fluid",
    "TER": "Tears",
    "U24": "24 h urine",
    "URN": 'Urine, random ("spot")',
    "URM": "Urine, first morning",
    "URT": "Urine, timed",
    "ZZZ": "Other",
}

SPREC_SOLID_TYPES: dict[str, str] = {
    "BON": "Bone",
    "CEN": "Fresh cells from non-blood specimen type (e.g. biopsy)",
    "CLN": "Cells from non-blood specimen type (e.g. dissociated tissue), viable",
    "FNA": "Cells from fine needle aspirate",
    "HAR": "Hair",
    "LCM": "Cells from laser capture microdissected tissue",
    "NAL": "Nails",
    "PEN": "Cells from non-blood specimen type (e.g. dissociated tissue), non-viable",
    "PLC": "Placenta",
    "TIS": "Solid tissue",
    "TCM": "Disrupted tissue, non-viable",
    "TTH": "Teeth",
    "ZZZ": "Other",
}

PRIMARY_CONTAINERS: dict[str, str] = {
    "ACD": "Acid citrate dextrose",
    "ADD": "Chemical additives / stabilisers",
    "CAT": "Serum tube without clot activator",
    "CPD": "Citrate phosphate dextrose",
    "CPH": "Cell Preparation Tube, heparin",
    "CPT": "Cell Preparation Tube, citrate",
    "CSV": "Aldehyde-based stabiliser for circulating tumour cells",
    "EDG": "EDTA and gel",
    "FIL": "Physical filtration system",
    "GLS": "Glass",
    "HEP": "Lithium heparin",
    "HIR": "Hirudin",
    "LHB": "Lithium heparin and rubber plug",
    "LHG": "Lithium heparin and gel",
    "OMN": "Stool collection container with DNA stabiliser",
    "ORG": "Oragene collection container or equivalent",
    "PAX": "PAXgene blood RNA+",
    "PED": "Potassium EDTA",
    "PET": "Polyethylene tube, sterile",
    "PI1": "S8820 protease inhibitor tablets or equivalent",
    "PIX": "Protease inhibitors",
    "PPS": "Polypropylene tube, sterile",
    "PXD": "PAXgene blood DNA",
    "PXR": "PAXgene bone marrow RNA",
    "RNL": "RNAlater",
    "SCI": "Sodium citrate",
    "SCK": "Non-aldehyde-based stabiliser for cell-free nucleic acids",
    "SED": "Sodium EDTA",
    "SHP": "Sodium heparin",
    "SPO": "Sodium fluoride / potassium oxalate",
    "SST": "Serum separator tube with clot activator",
    "TEM": "Tempus tube",
    "TRC": "Trace elements tube",
    "XXX": "Unknown",
    "ZZZ": "Other",
}

PRE_CENTRIFUGATION_DELAYS: dict[str, str] = {
    "A": "< 2 h at room temperature",
    "B": "< 2 h at 2 °C to 10 °C",
    "C": "2 h to 4 h at room temperature",
    "D": "2 h to 4 h at 2 °C to 10 °C",
    "E": "4 h to 8 h at room temperature",
    "F": "4 h to 8 h at 2 °C to 10 °C",
    "G": "8 h to 12 h at room temperature",
    "H": "8 h to 12 h at 2 °C to 10 °C",
    "I": "12 h to 24 h at room temperature",
    "J": "12 h to 24 h at 2 °C to 10 °C",
    "K": "24 h to 48 h at room temperature",
    "L": "24 h to 48 h at 2 °C to 10 °C",
    "M": "> 48 h at room temperature",
    "N": "> 48 h at 2 °C to 10 °C",
    "O": "< 2 h at 35 °C to 38 °C",
    "X": "Unknown",
    "Z": "Other",
}

_SPINS: dict[str, str] = {
    "A": "Room temperature, 10 min to 15 min, < 3000 g, no braking",
    "B": "Room temperature, 10 min to 15 min, < 3000 g, with braking",
    "C": "2 °C to 10 °C, 10 min to 15 min, < 3000 g, no braking",
    "D": "2 °C to 10 °C, 10 min to 15 min, < 3000 g, with braking",
    "E": "Room temperature, 10 min to 15 min, 3000 g to 6000 g, with braking",
    "F": "2 °C to 10 °C, 10 min to 15 min, 3000 g to 6000 g, with braking",
    "G": "Room temperature, 10 min to 15 min, 6000 g to 10000 g, with braking",
    "H": "2 °C to 10 °C, 10 min to 15 min, 6000 g to 10000 g, with braking",
    "I": "Room temperature, 10 min to 15 min, > 10000 g, with braking",
    "J": "2 °C to 10 °C, 10 min to 15 min, > 10000 g, with braking",
}

CENTRIFUGATIONS: dict[str, str] = {
    **_SPINS,
    "M": "Room temperature, 30 min, < 1000 g, no braking",
    "N": "No centrifugation",
    "X": "Unknown",
    "Z": "Other",
}

SECOND_CENTRIFUGATIONS: dict[str, str] = {
    **_SPINS,
    "N": "No second centrifugation",
    "X": "Unknown",
    "Z": "Other",
}

POST_CENTRIFUGATION_DELAYS: dict[str, str] = {
    "A": "< 1 h at 2 °C to 10 °C",
    "B": "< 1 h at room temperature",
    "C": "1 h to 2 h at 2 °C to 10 °C",
    "D": "1 h to 2 h at room temperature",
    "E": "2 h to 8 h at 2 °C to 10 °C",
    "F": "2 h to 8 h at room temperature",
    "G": "8 h to 24 h at 2 °C to 10 °C",
    "H": "8 h to 24 h at room temperature",
    "I": "> 24 h at 2 °C to 10 °C",
    "J": "> 24 h at room temperature",
    "N": "Not applicable",
    "X": "Unknown",
    "Z": "Other",
}

LONG_TERM_STORAGE: dict[str, str] = {
    "A": "PP tube 0.5 mL to 2 mL, −85 °C to −60 °C",
    "B": "PP tube 0.5 mL to 2 mL, −35 °C to −18 °C",
    "C": "Cryotube 1 mL to 2 mL, liquid nitrogen",
    "D": "Cryotube 1 mL to 2 mL, −85 °C to −60 °C",
    "E": "Cryotube 1 mL to 2 mL, programmable freezing to < −135 °C",
    "F": "Plastic cryo straw, liquid nitrogen",
    "G": "Straw, −85 °C to −60 °C",
    "H": "Straw, −35 °C to −18 °C",
    "I": "Straw, programmable freezing to < −135 °C",
    "J": "PP tube ≥ 5 mL, −85 °C to −60 °C",
    "K": "PP tube ≥ 5 mL, −35 °C to −18 °C",
    "L": "Microplate, −85 °C to −60 °C",
    "M": "Microplate, −35 °C to −18 °C",
    "N": "Cryotube 1 mL to 2 mL, liquid nitrogen after temporary −85 °C to −60 °C",
    "O": "Plastic cryo straw, liquid nitrogen after temporary −85 °C to −60 °C",
    "P": "Paraffin block, room temperature",
    "Q": "Bag, liquid nitrogen",
    "R": "Dry technology medium, room temperature",
    "S": "PP tube 40 µL to 500 µL, −85 °C to −60 °C",
    "T": "PP tube 40 µL to 500 µL, −35 °C to −18 °C",
    "U": "Paraffin block, 2 °C to 10 °C",
    "V": "PP tube 0.5 mL to 2 mL, < −135 °C",
    "W": "PP tube 40 µL to 500 µL, < −135 °C",
    "Y": "Original primary container, −35 °C to −18 °C or −85 °C to −60 °C",
    "X": "Unknown",
    "Z": "Other",
}

COLLECTION_TYPES: dict[str, str] = {
    "A06": "Autopsy < 6 h post-mortem",
    "A12": "Autopsy 6 h to 12 h post-mortem",
    "A24": "Autopsy 12 h to 24 h post-mortem",
    "A48": "Autopsy 24 h to 48 h post-mortem",
    "A72": "Autopsy 48 h to 72 h post-mortem",
    "BCM": "Biopsy in culture medium",
    "BPS": "Biopsy",
    "BSL": "Biopsy in normal saline or phosphate-buffered saline",
    "BTM": "Biopsy in low-temperature tissue transport medium",
    "FNA": "Fine needle aspirate",
    "PUN": "Punction",
    "SCM": "Surgical excision in culture medium",
    "SRG": "Surgical excision",
    "SSL": "Surgical excision in normal saline or phosphate-buffered saline",
    "STM": "Surgical excision in low-temperature tissue transport medium",
    "SWB": "Swab",
    "VAC": "Surgical excision in vacuum container",
    "ZZZ": "Other",
}

_ISCHEMIA: dict[str, str] = {
    "A": "< 2 min",
    "B": "2 min to 10 min",
    "C": "10 min to 20 min",
    "D": "20 min to 30 min",
    "E": "30 min to 60 min",
    "F": "> 60 min",
    "N": "Not applicable (e.g. biopsy)",
    "X": "Unknown",
    "Z": "Other",
}
WARM_ISCHEMIA_TIMES: dict[str, str] = dict(_ISCHEMIA)
COLD_ISCHEMIA_TIMES: dict[str, str] = dict(_ISCHEMIA)

FIXATION_TYPES: dict[str, str] = {
    "ACA": "Non-aldehyde with acetic acid",
    "ALD": "Aldehyde-based",
    "ALL": "Allprotect tissue reagent",
    "ETH": "Alcohol-based",
    "FOR": "Non-buffered formalin",
    "HST": "Heat stabilisation",
    "NAA": "Non-aldehyde-based without acetic acid",
    "NBF": "Neutral buffered formalin",
    "OCT": "Optimum cutting temperature medium",
    "PXT": "PAXgene tissue",
    "RNL": "RNAlater",
    "SNP": "Snap freezing",
    "XXX": "Unknown",
    "ZZZ": "Other",
}

FIXATION_TIMES: dict[str, str] = {
    "A": "< 15 min",
    "B": "15 min to 1 h",
    "C": "1 h to 4 h",
    "D": "4 h to 8 h",
    "E": "8 h to 24 h",
    "F": "24 h to 48 h",
    "G": "48 h to 72 h",
    "N": "Not applicable",
    "X": "Unknown",
    "Z": "Other",
}

FLUID_ELEMENTS: tuple[str, ...] = (
    "sample_type",
    "primary_container",
    "pre_centrifugation_delay",
    "centrifugation",
    "second_centrifugation",
    "post_centrifugation_delay",
    "long_term_storage",
)
SOLID_ELEMENTS: tuple[str, ...] = (
    "sample_type",
    "collection_type",
    "warm_ischemia_time",
    "cold_ischemia_time",
    "fixation_type",
    "fixation_time",
    "long_term_storage",
)

FLUID_TABLES: tuple[Mapping[str, str], ...] = (
    SPREC_FLUID_TYPES,
    PRIMARY_CONTAINERS,
    PRE_CENTRIFUGATION_DELAYS,
    CENTRIFUGATIONS,
    SECOND_CENTRIFUGATIONS,
    POST_CENTRIFUGATION_DELAYS,
    LONG_TERM_STORAGE,
)
SOLID_TABLES: tuple[Mapping[str, str], ...] = (
    SPREC_SOLID_TYPES,
    COLLECTION_TYPES,
    WARM_ISCHEMIA_TIMES,
    COLD_ISCHEMIA_TIMES,
    FIXATION_TYPES,
    FIXATION_TIMES,
    LONG_TERM_STORAGE,
)

_ELEMENTS: dict[Kind, tuple[str, ...]] = {"fluid": FLUID_ELEMENTS, "solid": SOLID_ELEMENTS}
_TABLES: dict[Kind, tuple[Mapping[str, str], ...]] = {"fluid": FLUID_TABLES, "solid": SOLID_TABLES}

# MIABIS material type -> the most usual SPREC sample type. A default suggestion only: nucleic
# acids, cell lines, microbes and digital samples have no SPREC type of their own (a derivative
# carries its parent specimen's code), so they suggest ZZZ.
MIABIS_TO_SPREC_TYPE: dict[str, str] = {
    "Blood": "BLD",
    "Buffy coat": "BUF",
    "Cancer cell lines": "ZZZ",
    "Digital sample": "ZZZ",
    "DNA": "ZZZ",
    "Entire body organ": "TIS",
    "Faeces": "STL",
    "Embryo/fetal tissue": "TIS",
    "Immortalized cell lines": "ZZZ",
    "Isolated microbes": "ZZZ",
    "Other body fluid": "ZZZ",
    "Plasma": "PL1",
    "Primary cells": "CEL",
    "Post-mortem tissue": "TIS",
    "RNA": "ZZZ",
    "Saliva": "SAL",
    "Serum": "SER",
    "Environment/food specimen": "ZZZ",
    "Swab": "ZZZ",
    "Tissue (Frozen)": "TIS",
    "Tissue (FFPE)": "TIS",
    "Urine": "URN",
    "Other": "ZZZ",
    # MIABIS 2 (BBMRI-ERIC Directory) names still found in older exports.
    "Peripheral blood cells": "CEL",
    "cDNA/mRNA": "ZZZ",
    "microRNA": "ZZZ",
    "Whole genome amplified DNA": "ZZZ",
    "Isolated pathogen": "ZZZ",
    "Pathogen": "ZZZ",
    "Cerebrospinal fluid": "CSF",
}
_MIABIS_FOLDED: dict[str, str] = {name.casefold(): code for name, code in MIABIS_TO_SPREC_TYPE.items()}

_LABELS: dict[str, str] = {
    "sample_type": "sample type",
    "primary_container": "primary container",
    "pre_centrifugation_delay": "pre-centrifugation delay",
    "centrifugation": "centrifugation",
    "second_centrifugation": "second centrifugation",
    "post_centrifugation_delay": "post-centrifugation delay",
    "long_term_storage": "long-term storage",
    "collection_type": "type of collection",
    "warm_ischemia_time": "warm ischemia time",
    "cold_ischemia_time": "cold ischemia time",
    "fixation_type": "fixation/stabilisation type",
    "fixation_time": "fixation time",
}

# Collection types for which the standard codes warm ischemia as "N" (not applicable, e.g. biopsy).
_NO_WARM_ISCHEMIA = frozenset({"BPS", "BCM", "BSL", "BTM", "FNA"})
# Stabilisations without a fixation period: fixation time is "N" when nothing else was recorded.
_NO_FIXATION_TIME = frozenset({"SNP", "OCT"})


# --------------------------------------------------------------------------------------------
# Results and errors
# --------------------------------------------------------------------------------------------


class SprecElement(NamedTuple):
    """One element of a parsed code: its name, its code and the table's description."""

    name: str
    code: str
    description: str


@dataclass(frozen=True, slots=True)
class SprecIssue:
    """One bad element of a SPREC code."""

    position: int
    element: str
    code: str
    message: str


class SprecInvalid(ValueError):
    """A SPREC code, or a fact to derive one from, is not valid; names the element at fault."""

    def __init__(self, message: str, *, element: str, position: int, code: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.element = element
        self.position = position
        self.code = code

    @classmethod
    def from_issue(cls, issue: SprecIssue) -> SprecInvalid:
        """The exception for one issue."""
        return cls(issue.message, element=issue.element, position=issue.position, code=issue.code)


@dataclass(frozen=True, slots=True)
class SprecCode:
    """A valid SPREC v3 code; ``codes`` holds the seven elements in order."""

    kind: Kind
    codes: tuple[str, str, str, str, str, str, str]

    @property
    def names(self) -> tuple[str, ...]:
        """The element names for this kind, in order."""
        return _ELEMENTS[self.kind]

    @property
    def elements(self) -> tuple[SprecElement, ...]:
        """The seven elements as (name, code, description)."""
        tables = _TABLES[self.kind]
        return tuple(
            SprecElement(name, code, tables[i][code])
            for i, (name, code) in enumerate(zip(self.names, self.codes, strict=True))
        )

    @property
    def sample_type(self) -> str:
        """Element 1."""
        return self.codes[0]

    @property
    def long_term_storage(self) -> str:
        """Element 7."""
        return self.codes[6]

    def element(self, name: str) -> str:
        """The code of the element called ``name`` (KeyError if this kind has no such element)."""
        try:
            return self.codes[self.names.index(name)]
        except ValueError:
            raise KeyError(
                f"a {self.kind} SPREC has no element {name!r}; it has {', '.join(self.names)}"
            ) from None

    def as_dict(self) -> dict[str, str]:
        """Element name -> code."""
        return dict(zip(self.names, self.codes, strict=True))

    def __str__(self) -> str:
        return "-".join(self.codes)


# --------------------------------------------------------------------------------------------
# Parsing and validation
# --------------------------------------------------------------------------------------------


def _label(position: int, name: str) -> str:
    return f"element {position} ({_LABELS[name]})"


def _kind_of(parts: list[str]) -> Kind | None:
    """Fluid or solid from the first element; for codes shared by both tables, from the others."""
    first = parts[0]
    fluid = first in SPREC_FLUID_TYPES
    solid = first in SPREC_SOLID_TYPES
    if fluid != solid:
        return "fluid" if fluid else "solid"
    # CEN, CLN, PEN, ZZZ (or an unknown type): element 2 and then element 5 tell them apart,
    # because fixation types have three letters and centrifugation codes one.
    if len(parts) > 1:
        second = parts[1]
        in_containers = second in PRIMARY_CONTAINERS
        in_collections = second in COLLECTION_TYPES
        if in_containers != in_collections:
            return "fluid" if in_containers else "solid"
    if len(parts) > 4 and len(parts[4]) in (1, 3):
        return "fluid" if len(parts[4]) == 1 else "solid"
    return "fluid" if fluid else None


def _element_issue(position: int, name: str, raw: str, table: Mapping[str, str]) -> SprecIssue:
    where = _label(position, name)
    if raw == "":
        message = f"{where} is empty"
    elif raw != raw.strip() or any(ch.isspace() for ch in raw):
        message = f"{where}: {raw!r} contains whitespace"
    else:
        message = f"{where}: {raw!r} is not a SPREC v3 code; expected one of {', '.join(table)}"
    return SprecIssue(position=position, element=name, code=raw, message=message)


def _issues(code: str) -> list[SprecIssue]:
    if not code.strip():
        return [
            SprecIssue(
                1, "sample_type", code, f"{_label(1, 'sample_type')} is empty: the SPREC code is blank"
            )
        ]
    parts = code.upper().split("-")
    kind = _kind_of(parts)
    names = _ELEMENTS[kind or "fluid"]
    if len(parts) != 7:
        rule = f"a SPREC code has 7 elements separated by '-', got {len(parts)}"
        if len(parts) < 7:
            position, name = len(parts) + 1, names[len(parts)]
            message = f"{_label(position, name)} is missing: {rule}"
        else:
            position, name = 7, names[6]
            message = f"{_label(position, name)} is followed by {'-'.join(parts[7:])!r}: {rule}"
        return [SprecIssue(position=position, element=name, code=code, message=message)]
    if kind is None:
        table = {**SPREC_FLUID_TYPES, **SPREC_SOLID_TYPES}
        return [_element_issue(1, "sample_type", parts[0], table)]
    tables = _TABLES[kind]
    return [
        _element_issue(i + 1, names[i], raw, tables[i]) for i, raw in enumerate(parts) if raw not in tables[i]
    ]


@lru_cache(maxsize=16384)
def _parse_cached(code: str) -> SprecCode:
    parts = code.upper().split("-")
    if len(parts) == 7:
        kind = _kind_of(parts)
        if kind is not None:
            tables = _TABLES[kind]
            if all(raw in tables[i] for i, raw in enumerate(parts)):
                return SprecCode(kind, (parts[0], parts[1], parts[2], parts[3], parts[4], parts[5], parts[6]))
    issues = _issues(code)
    raise SprecInvalid.from_issue(issues[0])


def parse(code: str) -> SprecCode:
    """Parse a SPREC v3 code (case-insensitive); raise SprecInvalid naming the first bad element."""
    if not isinstance(code, str):
        raise SprecInvalid(
            f"a SPREC code must be text, not {type(code).__name__}", element="sample_type", position=1
        )
    return _parse_cached(code)


def validate(code: str) -> list[SprecIssue]:
    """Every bad element of ``code`` (an empty list when the code is valid)."""
    if not isinstance(code, str):
        return [
            SprecIssue(1, "sample_type", repr(code), f"a SPREC code must be text, not {type(code).__name__}")
        ]
    try:
        _parse_cached(code)
    except SprecInvalid:
        return _issues(code)
    return []


def is_valid(code: str) -> bool:
    """True when ``code`` is a valid SPREC v3 code."""
    return not validate(code)


def suggest_sprec_type(miabis_sample_type: str) -> str:
    """The usual SPREC sample type for a MIABIS material type (ZZZ when there is none)."""
    return _MIABIS_FOLDED.get(miabis_sample_type.strip().casefold(), "ZZZ")


# --------------------------------------------------------------------------------------------
# Derivation from recorded facts
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Spin:
    """A recorded centrifugation run: temperature, duration, relative centrifugal force, braking."""

    temperature: SpinTemperature
    minutes: float
    g_force: float
    braking: bool


def spin_code(spin: Spin, *, second: bool = False) -> str:
    """The centrifugation code of a recorded run ("Z" when it fits no band of the standard)."""
    if spin.minutes <= 0 or spin.g_force <= 0:
        position, name = (5, "second_centrifugation") if second else (4, "centrifugation")
        raise SprecInvalid(
            f"{_label(position, name)}: a centrifugation needs a positive duration and force, "
            f"got {spin.minutes} min at {spin.g_force} g",
            element=name,
            position=position,
        )
    cold = spin.temperature == "2-10"
    if spin.temperature not in ("RT", "2-10"):
        return "Z"
    if 10 <= spin.minutes <= 15:
        if spin.g_force < 3000:
            return ("D" if spin.braking else "C") if cold else ("B" if spin.braking else "A")
        if not spin.braking:
            return "Z"
        if spin.g_force < 6000:
            return "F" if cold else "E"
        if spin.g_force <= 10000:
            return "H" if cold else "G"
        return "J" if cold else "I"
    if not second and spin.minutes == 30 and spin.g_force < 1000 and not spin.braking and not cold:
        return "M"
    return "Z"


# Bands are closed below and open above: a delay exactly on a boundary belongs to the longer
# band (the standard's "< 2 h" excludes 2 h), so exactly 48 h is "> 48 h".
_PRE_BOUNDS_H = (2.0, 4.0, 8.0, 12.0, 24.0, 48.0)
_PRE_CODES: dict[str, str] = {"RT": "ACEGIKM", "2-10": "BDFHJLN"}
_POST_BOUNDS_H = (1.0, 2.0, 8.0, 24.0)
_POST_CODES: dict[str, str] = {"RT": "BDFHJ", "2-10": "ACEGI"}
_ISCHEMIA_BOUNDS_MIN = (2.0, 10.0, 20.0, 30.0, 60.0)
_FIXATION_BOUNDS_H = (0.25, 1.0, 4.0, 8.0, 24.0, 48.0, 72.0)


def _band(value: float, bounds: tuple[float, ...]) -> int:
    for index, bound in enumerate(bounds):
        if value < bound:
            return index
    return len(bounds)


def _hours_between(start: datetime, end: datetime) -> float:
    return (end - start).total_seconds() / 3600.0


def fluid_delay_bands(pre_hours: float | None, post_hours: float | None) -> tuple[int | None, int | None]:
    """The bands of a pre- and a post-centrifugation delay in hours (-1 when negative, None when unknown).

    With no centrifugation, storage or holding temperature given, ``derive_fluid`` depends on the
    times only through these two bands and on whether freezing came before collection, so a caller
    deriving many codes derives one per distinct (type, container, bands, frozen before collection).
    """
    return (
        None if pre_hours is None else -1 if pre_hours < 0 else _band(pre_hours, _PRE_BOUNDS_H),
        None if post_hours is None else -1 if post_hours < 0 else _band(post_hours, _POST_BOUNDS_H),
    )


def _require_aware(moment: datetime | None, what: str, position: int, element: str) -> None:
    if moment is not None and (moment.tzinfo is None or moment.utcoffset() is None):
        raise SprecInvalid(
            f"{_label(position, element)}: {what} must be a timezone-aware datetime",
            element=element,
            position=position,
        )


def _known(value: str, position: int, name: str, table: Mapping[str, str]) -> str:
    code = value.strip().upper()
    if code not in table:
        raise SprecInvalid.from_issue(_element_issue(position, name, value, table))
    return code


def pre_centrifugation_code(hours: float | None, temperature: HoldingTemperature = "RT") -> str:
    """The pre-centrifugation delay code for a delay in hours held at ``temperature``."""
    if hours is None or temperature == "unknown":
        return "X"
    if hours < 0:
        raise SprecInvalid(
            f"{_label(3, 'pre_centrifugation_delay')}: the delay cannot be negative ({hours} h)",
            element="pre_centrifugation_delay",
            position=3,
        )
    if temperature == "35-38":
        return "O" if hours < 2 else "Z"
    if temperature not in _PRE_CODES:
        return "Z"
    return _PRE_CODES[temperature][_band(hours, _PRE_BOUNDS_H)]


def post_centrifugation_code(hours: float | None, temperature: HoldingTemperature = "RT") -> str:
    """The post-centrifugation delay code for a delay in hours held at ``temperature``."""
    if hours is None or temperature == "unknown":
        return "X"
    if hours < 0:
        raise SprecInvalid(
            f"{_label(6, 'post_centrifugation_delay')}: the delay cannot be negative ({hours} h)",
            element="post_centrifugation_delay",
            position=6,
        )
    if temperature not in _POST_CODES:
        return "Z"
    return _POST_CODES[temperature][_band(hours, _POST_BOUNDS_H)]


def ischemia_code(minutes: float | None, *, position: int = 3) -> str:
    """The warm (position 3) or cold (position 4) ischemia code for a time in minutes."""
    if minutes is None:
        return "X"
    if minutes < 0:
        name = "warm_ischemia_time" if position == 3 else "cold_ischemia_time"
        raise SprecInvalid(
            f"{_label(position, name)}: the time cannot be negative ({minutes} min)",
            element=name,
            position=position,
        )
    return "ABCDEF"[_band(minutes, _ISCHEMIA_BOUNDS_MIN)]


def fixation_time_code(hours: float | None, fixation: str = "XXX") -> str:
    """The fixation time code for a time in hours ("Z" beyond 72 h, which no band covers)."""
    if hours is None:
        return "N" if fixation in _NO_FIXATION_TIME else "X"
    if hours < 0:
        raise SprecInvalid(
            f"{_label(6, 'fixation_time')}: the time cannot be negative ({hours} h)",
            element="fixation_time",
            position=6,
        )
    return "ABCDEFGZ"[_band(hours, _FIXATION_BOUNDS_H)]


def _centrifugation(value: str | Spin | None, *, second: bool) -> str:
    position, name = (5, "second_centrifugation") if second else (4, "centrifugation")
    if value is None:
        return "X"
    if isinstance(value, Spin):
        return spin_code(value, second=second)
    return _known(value, position, name, SECOND_CENTRIFUGATIONS if second else CENTRIFUGATIONS)


def derive_fluid(
    sample_type: str,
    container: str,
    *,
    collected_at: datetime,
    centrifuged_at: datetime | None = None,
    centrifugation: str | Spin | None = None,
    second_centrifugation: str | Spin | None = None,
    frozen_at: datetime | None = None,
    pre_centrifugation_temperature: HoldingTemperature = "RT",
    post_centrifugation_temperature: HoldingTemperature = "RT",
    storage: str | None = None,
) -> str:
    """The SPREC code of a fluid specimen, computed from its recorded handling."""
    sample = _known(sample_type, 1, "sample_type", SPREC_FLUID_TYPES)
    tube = _known(container, 2, "primary_container", PRIMARY_CONTAINERS)
    _require_aware(collected_at, "collected_at", 3, "pre_centrifugation_delay")
    _require_aware(centrifuged_at, "centrifuged_at", 3, "pre_centrifugation_delay")
    _require_aware(frozen_at, "frozen_at", 6, "post_centrifugation_delay")

    first_spin = _centrifugation(centrifugation, second=False)
    second_spin = _centrifugation(second_centrifugation, second=True)
    not_spun = first_spin == "N"
    if not_spun and centrifuged_at is not None:
        raise SprecInvalid(
            f"{_label(4, 'centrifugation')}: 'N' (no centrifugation) contradicts centrifuged_at",
            element="centrifugation",
            position=4,
            code="N",
        )
    if second_centrifugation is None:
        # Single-spun plasma has no second spin by definition, nor has anything not spun at all.
        second_spin = "N" if (not_spun or sample == "PL1") else "X"
    elif not_spun and second_spin != "N":
        raise SprecInvalid(
            f"{_label(5, 'second_centrifugation')}: a second centrifugation without a first one",
            element="second_centrifugation",
            position=5,
            code=second_spin,
        )
    elif sample == "PL1" and second_spin not in ("N", "X"):
        raise SprecInvalid(
            f"{_label(5, 'second_centrifugation')}: PL1 is single-spun plasma; a second spin makes it PL2",
            element="second_centrifugation",
            position=5,
            code=second_spin,
        )
    elif sample == "PL2" and second_spin == "N":
        raise SprecInvalid(
            f"{_label(5, 'second_centrifugation')}: PL2 is double-spun plasma; 'N' contradicts it",
            element="second_centrifugation",
            position=5,
            code=second_spin,
        )

    if frozen_at is not None and frozen_at < collected_at:
        raise SprecInvalid(
            f"{_label(6, 'post_centrifugation_delay')}: frozen_at ({frozen_at.isoformat()}) "
            f"is before collected_at ({collected_at.isoformat()})",
            element="post_centrifugation_delay",
            position=6,
        )
    if centrifuged_at is not None:
        if centrifuged_at < collected_at:
            raise SprecInvalid(
                f"{_label(3, 'pre_centrifugation_delay')}: centrifuged_at ({centrifuged_at.isoformat()}) "
                f"is before collected_at ({collected_at.isoformat()})",
                element="pre_centrifugation_delay",
                position=3,
            )
        pre = pre_centrifugation_code(
            _hours_between(collected_at, centrifuged_at), pre_centrifugation_temperature
        )
    elif not_spun and frozen_at is not None:
        # Not centrifuged: the element records the delay between collection and processing.
        pre = pre_centrifugation_code(_hours_between(collected_at, frozen_at), pre_centrifugation_temperature)
    else:
        pre = "X"

    if not_spun:
        post = "N"
    elif centrifuged_at is not None and frozen_at is not None:
        if frozen_at < centrifuged_at:
            raise SprecInvalid(
                f"{_label(6, 'post_centrifugation_delay')}: frozen_at ({frozen_at.isoformat()}) "
                f"is before centrifuged_at ({centrifuged_at.isoformat()})",
                element="post_centrifugation_delay",
                position=6,
            )
        post = post_centrifugation_code(
            _hours_between(centrifuged_at, frozen_at), post_centrifugation_temperature
        )
    else:
        post = "X"

    store = "X" if storage is None else _known(storage, 7, "long_term_storage", LONG_TERM_STORAGE)
    return "-".join((sample, tube, pre, first_spin, second_spin, post, store))


def derive_solid(
    sample_type: str,
    collection_type: str,
    *,
    warm_ischemia_minutes: float | None = None,
    cold_ischemia_minutes: float | None = None,
    fixation: str | None = None,
    fixation_hours: float | None = None,
    storage: str | None = None,
) -> str:
    """The SPREC code of a solid specimen, computed from its recorded handling."""
    sample = _known(sample_type, 1, "sample_type", SPREC_SOLID_TYPES)
    collection = _known(collection_type, 2, "collection_type", COLLECTION_TYPES)
    if warm_ischemia_minutes is None and collection in _NO_WARM_ISCHEMIA:
        warm = "N"
    else:
        warm = ischemia_code(warm_ischemia_minutes, position=3)
    cold = ischemia_code(cold_ischemia_minutes, position=4)
    fix = "XXX" if fixation is None else _known(fixation, 5, "fixation_type", FIXATION_TYPES)
    fix_time = fixation_time_code(fixation_hours, fix)
    store = "X" if storage is None else _known(storage, 7, "long_term_storage", LONG_TERM_STORAGE)
    return "-".join((sample, collection, warm, cold, fix, fix_time, store))
