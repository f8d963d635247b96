"""SPREC v3: parsing, validation, derivation from recorded facts, MIABIS suggestions."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from biobank.kit.vocab import SampleType
from biobank.specimens import sprec
from biobank.specimens.sprec import (
    FLUID_ELEMENTS,
    FLUID_TABLES,
    MIABIS_TO_SPREC_TYPE,
    SOLID_ELEMENTS,
    SOLID_TABLES,
    SPREC_FLUID_TYPES,
    SPREC_SOLID_TYPES,
    Spin,
    SprecCode,
    SprecInvalid,
    derive_fluid,
    derive_solid,
    parse,
    validate,
)

T0 = datetime(2024, 3, 1, 8, 0, tzinfo=UTC)
H = timedelta(hours=1)
MIN = timedelta(minutes=1)

# --------------------------------------------------------------------------------------------
# Tables
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("tables", [FLUID_TABLES, SOLID_TABLES], ids=["fluid", "solid"])
def test_every_table_has_consistent_code_lengths(tables: tuple[dict[str, str], ...]) -> None:
    expected_lengths = (3, 3, 1, 1, 1, 1, 1) if tables is FLUID_TABLES else (3, 3, 1, 1, 3, 1, 1)
    for position, (table, length) in enumerate(zip(tables, expected_lengths, strict=True), start=1):
        assert table, f"table {position} is empty"
        for code, description in table.items():
            assert len(code) == length, (position, code)
            assert code == code.upper() and code.isalnum()
            assert description.strip() == description and description


@pytest.mark.parametrize(
    ("table", "unknown", "other"),
    [
        (sprec.PRIMARY_CONTAINERS, "XXX", "ZZZ"),
        (sprec.PRE_CENTRIFUGATION_DELAYS, "X", "Z"),
        (sprec.CENTRIFUGATIONS, "X", "Z"),
        (sprec.SECOND_CENTRIFUGATIONS, "X", "Z"),
        (sprec.POST_CENTRIFUGATION_DELAYS, "X", "Z"),
        (sprec.LONG_TERM_STORAGE, "X", "Z"),
        (sprec.WARM_ISCHEMIA_TIMES, "X", "Z"),
        (sprec.COLD_ISCHEMIA_TIMES, "X", "Z"),
        (sprec.FIXATION_TYPES, "XXX", "ZZZ"),
        (sprec.FIXATION_TIMES, "X", "Z"),
    ],
)
def test_tables_carry_unknown_and_other(table: dict[str, str], unknown: str, other: str) -> None:
    assert table[unknown] == "Unknown"
    assert table[other] == "Other"


def test_known_facts_from_the_standard() -> None:
    for code in ("SER", "PL1", "PL2", "BLD", "CSF", "URN", "SAL", "BUF"):
        assert code in SPREC_FLUID_TYPES
    assert sprec.PRIMARY_CONTAINERS["PED"] == "Potassium EDTA"
    assert sprec.PRIMARY_CONTAINERS["SCI"] == "Sodium citrate"
    assert sprec.PRIMARY_CONTAINERS["HEP"] == "Lithium heparin"
    for code in ("SST", "PAX", "CPT"):
        assert code in sprec.PRIMARY_CONTAINERS
    assert sprec.PRE_CENTRIFUGATION_DELAYS["A"] == "< 2 h at room temperature"
    assert sprec.PRE_CENTRIFUGATION_DELAYS["B"] == "< 2 h at 2 °C to 10 °C"
    assert sprec.PRE_CENTRIFUGATION_DELAYS["C"] == "2 h to 4 h at room temperature"
    assert "TIS" in SPREC_SOLID_TYPES


# --------------------------------------------------------------------------------------------
# Parsing valid codes
# --------------------------------------------------------------------------------------------

VALID_FLUID = [
    "SER-SST-A-B-N-B-A",
    "PL1-PED-B-D-N-A-D",
    "PL2-PED-A-B-J-B-S",
    "BLD-PED-A-N-N-N-C",
    "CSF-PPS-B-C-N-A-W",
    "URN-PPS-X-N-N-N-T",
    "BUF-PED-C-B-N-D-V",
    "SAL-ORG-Z-Z-Z-Z-Z",
    "PL1-SCI-O-M-N-B-A",
    "PL2-CPT-N-J-J-J-Y",
    "CTC-CSV-A-A-N-B-E",
    "RBC-XXX-X-X-X-X-X",
    "PL1-SCK-A-B-N-B-U",
]
VALID_SOLID = [
    "TIS-SRG-A-B-NBF-E-P",
    "TIS-BPS-N-A-SNP-N-C",
    "TIS-SRG-F-F-OCT-N-D",
    "TIS-A06-X-X-XXX-X-X",
    "FNA-FNA-N-A-ETH-A-A",
    "PLC-SCM-N-C-RNL-D-D",
    "TTH-ZZZ-Z-Z-ZZZ-Z-Z",
    "BON-SRG-C-E-PXT-G-P",
    "LCM-VAC-B-D-ALL-B-U",
    "TCM-A72-X-N-HST-N-R",
]


@pytest.mark.parametrize("code", VALID_FLUID)
def test_parse_valid_fluid(code: str) -> None:
    parsed = parse(code)
    assert parsed.kind == "fluid"
    assert str(parsed) == code
    assert [e.name for e in parsed.elements] == list(FLUID_ELEMENTS)
    assert [e.code for e in parsed.elements] == code.split("-")
    for element, table in zip(parsed.elements, FLUID_TABLES, strict=True):
        assert element.description == table[element.code]
    assert validate(code) == []
    assert sprec.is_valid(code)


@pytest.mark.parametrize("code", VALID_SOLID)
def test_parse_valid_solid(code: str) -> None:
    parsed = parse(code)
    assert parsed.kind == "solid"
    assert str(parsed) == code
    assert [e.name for e in parsed.elements] == list(SOLID_ELEMENTS)
    for element, table in zip(parsed.elements, SOLID_TABLES, strict=True):
        assert element.description == table[element.code]
    assert validate(code) == []


def test_parsed_fields_and_accessors() -> None:
    parsed = parse("PL1-PED-B-D-N-A-D")
    assert parsed.sample_type == "PL1"
    assert parsed.long_term_storage == "D"
    assert parsed.element("pre_centrifugation_delay") == "B"
    assert parsed.as_dict()["primary_container"] == "PED"
    assert parsed.elements[2].description == "< 2 h at 2 °C to 10 °C"
    with pytest.raises(KeyError, match="fixation_type"):
        parsed.element("fixation_type")
    solid = parse("TIS-SRG-A-B-NBF-E-P")
    assert solid.element("fixation_type") == "NBF"
    assert solid.elements[4].description == "Neutral buffered formalin"


def test_parse_is_case_insensitive_and_returns_canonical_code() -> None:
    assert str(parse("ser-sst-a-b-n-b-a")) == "SER-SST-A-B-N-B-A"
    assert parse("Tis-Srg-a-b-nbf-e-p") == parse("TIS-SRG-A-B-NBF-E-P")


def test_parse_returns_frozen_value() -> None:
    parsed = parse("SER-SST-A-B-N-B-A")
    assert isinstance(parsed, SprecCode)
    with pytest.raises(AttributeError):
        parsed.kind = "solid"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("code", "kind"),
    [
        # CEN, CLN, PEN and ZZZ are both fluid and solid sample types.
        ("CEN-PED-A-B-N-B-A", "fluid"),
        ("CEN-SRG-A-B-NBF-E-P", "solid"),
        ("CLN-CPT-A-B-N-B-C", "fluid"),
        ("PEN-BPS-N-A-SNP-N-C", "solid"),
        ("ZZZ-ZZZ-A-A-N-A-A", "fluid"),
        ("ZZZ-ZZZ-A-A-NBF-A-A", "solid"),
    ],
)
def test_shared_sample_types_resolve_by_the_other_elements(code: str, kind: str) -> None:
    assert parse(code).kind == kind


# --------------------------------------------------------------------------------------------
# Each element invalid in turn
# --------------------------------------------------------------------------------------------

FLUID_BASE = "SER-SST-A-B-N-B-A"
SOLID_BASE = "TIS-SRG-A-B-NBF-E-P"
FLUID_BAD = ["QQQ", "QQQ", "Q", "Q", "M", "Q", "QQ"]  # 'M' exists only for the first spin
SOLID_BAD = ["QQQ", "QQQ", "G", "G", "QQQ", "H", "QQ"]


def _replace(base: str, position: int, value: str) -> str:
    parts = base.split("-")
    parts[position - 1] = value
    return "-".join(parts)


@pytest.mark.parametrize("position", range(1, 8))
def test_each_fluid_element_invalid_in_turn(position: int) -> None:
    code = _replace(FLUID_BASE, position, FLUID_BAD[position - 1])
    name = FLUID_ELEMENTS[position - 1]
    with pytest.raises(SprecInvalid) as caught:
        parse(code)
    assert caught.value.position == position
    assert caught.value.element == name
    assert f"element {position} (" in str(caught.value)
    assert "is not a SPREC v3 code; expected one of" in str(caught.value)
    issues = validate(code)
    assert [(i.position, i.element) for i in issues] == [(position, name)]


@pytest.mark.parametrize("position", range(1, 8))
def test_each_solid_element_invalid_in_turn(position: int) -> None:
    code = _replace(SOLID_BASE, position, SOLID_BAD[position - 1])
    name = SOLID_ELEMENTS[position - 1]
    with pytest.raises(SprecInvalid) as caught:
        parse(code)
    assert (caught.value.position, caught.value.element) == (position, name)
    assert [(i.position, i.element) for i in validate(code)] == [(position, name)]


def test_message_names_the_element_and_lists_the_allowed_codes() -> None:
    with pytest.raises(SprecInvalid) as caught:
        parse("SER-SST-Q-B-N-B-A")
    message = str(caught.value)
    assert message.startswith(
        "element 3 (pre-centrifugation delay): 'Q' is not a SPREC v3 code; expected one of A, B,"
    )
    assert caught.value.element == "pre_centrifugation_delay"
    assert caught.value.code == "Q"
    assert isinstance(caught.value, ValueError)


def test_validate_lists_every_bad_element() -> None:
    issues = validate("SER-QQQ-Q-B-QQ-B-QQ")
    assert [i.position for i in issues] == [2, 3, 5, 7]
    assert [i.element for i in issues] == [
        "primary_container",
        "pre_centrifugation_delay",
        "second_centrifugation",
        "long_term_storage",
    ]
    assert all(i.message.startswith(f"element {i.position} (") for i in issues)


def test_fluid_codes_are_not_accepted_in_solid_positions() -> None:
    # A valid fluid code for element 3 is not a warm ischemia code.
    issues = validate("TIS-SRG-K-B-NBF-E-P")
    assert [(i.position, i.element) for i in issues] == [(3, "warm_ischemia_time")]


@pytest.mark.parametrize(
    ("code", "position", "element"),
    [
        ("SER-SST-A-B-N-B", 7, "long_term_storage"),
        ("SER-SST", 3, "pre_centrifugation_delay"),
        ("SER", 2, "primary_container"),
        ("TIS-SRG-A-B-NBF", 6, "fixation_time"),
        ("SER-SST-A-B-N-B-A-A", 7, "long_term_storage"),
        ("SER_SST_A_B_N_B_A", 2, "primary_container"),
    ],
)
def test_wrong_number_of_elements(code: str, position: int, element: str) -> None:
    with pytest.raises(SprecInvalid) as caught:
        parse(code)
    assert (caught.value.position, caught.value.element) == (position, element)
    assert "7 elements separated by '-'" in str(caught.value)
    assert len(validate(code)) == 1


@pytest.mark.parametrize(
    ("code", "position"),
    [
        (" SER-SST-A-B-N-B-A", 1),
        ("SER-SST-A-B-N-B-A ", 7),
        ("SER-SST-A-B-N-B-A\n", 7),
        ("SER -SST-A-B-N-B-A", 1),
        ("SER-SST- A-B-N-B-A", 3),
        ("SER-SST-A-B-N-\tB-A", 6),
    ],
)
def test_whitespace_is_rejected_with_the_element_named(code: str, position: int) -> None:
    with pytest.raises(SprecInvalid) as caught:
        parse(code)
    assert caught.value.position == position
    assert "whitespace" in str(caught.value)


@pytest.mark.parametrize(
    ("code", "position"), [("", 1), ("   ", 1), ("SER--A-B-N-B-A", 2), ("SER-SST-A-B-N-B-", 7)]
)
def test_empty_elements_are_rejected(code: str, position: int) -> None:
    with pytest.raises(SprecInvalid) as caught:
        parse(code)
    assert caught.value.position == position
    assert "empty" in str(caught.value)


def test_unknown_sample_type_lists_the_types_of_the_kind_the_rest_implies() -> None:
    with pytest.raises(SprecInvalid) as caught:
        parse("QQQ-QQQ-A-B-QQ-B-A")  # nothing tells fluid from solid
    assert caught.value.position == 1
    assert "TIS" in str(caught.value) and "SER" in str(caught.value)
    solid_issues = validate("QQQ-SRG-A-B-NBF-E-P")
    assert [i.position for i in solid_issues] == [1]
    assert "TIS" in solid_issues[0].message and "SER" not in solid_issues[0].message


def test_non_text_is_rejected() -> None:
    with pytest.raises(SprecInvalid):
        parse(None)  # type: ignore[arg-type]
    assert validate(42)[0].position == 1  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------
# Derivation: fluids
# --------------------------------------------------------------------------------------------


def test_serum_processed_within_two_hours_at_rt_starts_ser_sst_a() -> None:
    code = derive_fluid(
        "SER",
        "SST",
        collected_at=T0,
        centrifuged_at=T0 + 90 * MIN,
        centrifugation=Spin("RT", 10, 2000, True),
        second_centrifugation="N",
        frozen_at=T0 + 90 * MIN + 30 * MIN,
        storage="A",
    )
    assert code.startswith("SER-SST-A-")
    assert code == "SER-SST-A-B-N-B-A"
    assert parse(code).kind == "fluid"


@pytest.mark.parametrize(
    ("delay", "temperature", "expected"),
    [
        (timedelta(0), "RT", "A"),
        (2 * H - timedelta(seconds=1), "RT", "A"),
        (2 * H, "RT", "C"),
        (2 * H, "2-10", "D"),
        (90 * MIN, "2-10", "B"),
        (4 * H - MIN, "RT", "C"),
        (4 * H, "RT", "E"),
        (8 * H, "2-10", "H"),
        (12 * H, "RT", "I"),
        (24 * H, "2-10", "L"),
        (48 * H - MIN, "RT", "K"),
        (48 * H, "RT", "M"),
        (72 * H, "2-10", "N"),
        (1 * H, "35-38", "O"),
        (2 * H, "35-38", "Z"),
        (1 * H, "other", "Z"),
        (1 * H, "unknown", "X"),
    ],
)
def test_pre_centrifugation_bands(
    delay: timedelta, temperature: sprec.HoldingTemperature, expected: str
) -> None:
    code = derive_fluid(
        "PL1",
        "PED",
        collected_at=T0,
        centrifuged_at=T0 + delay,
        centrifugation="B",
        pre_centrifugation_temperature=temperature,
    )
    assert code.split("-")[2] == expected


@pytest.mark.parametrize(
    ("delay", "temperature", "expected"),
    [
        (timedelta(0), "2-10", "A"),
        (59 * MIN, "RT", "B"),
        (1 * H, "RT", "D"),
        (1 * H, "2-10", "C"),
        (2 * H, "2-10", "E"),
        (2 * H, "RT", "F"),
        (8 * H, "2-10", "G"),
        (8 * H, "RT", "H"),
        (24 * H, "2-10", "I"),
        (30 * H, "RT", "J"),
        (3 * H, "35-38", "Z"),
        (3 * H, "unknown", "X"),
    ],
)
def test_post_centrifugation_bands(
    delay: timedelta, temperature: sprec.HoldingTemperature, expected: str
) -> None:
    spun = T0 + 30 * MIN
    code = derive_fluid(
        "PL1",
        "PED",
        collected_at=T0,
        centrifuged_at=spun,
        centrifugation="B",
        frozen_at=spun + delay,
        post_centrifugation_temperature=temperature,
    )
    assert code.split("-")[5] == expected


@pytest.mark.parametrize(
    ("spin", "expected"),
    [
        (Spin("RT", 10, 2000, False), "A"),
        (Spin("RT", 15, 2999, True), "B"),
        (Spin("2-10", 12, 1500, False), "C"),
        (Spin("2-10", 10, 2500, True), "D"),
        (Spin("RT", 10, 3000, True), "E"),
        (Spin("2-10", 10, 5999, True), "F"),
        (Spin("RT", 10, 6000, True), "G"),
        (Spin("2-10", 10, 10000, True), "H"),
        (Spin("RT", 10, 10001, True), "I"),
        (Spin("2-10", 15, 16000, True), "J"),
        (Spin("RT", 30, 800, False), "M"),
        (Spin("RT", 10, 4000, False), "Z"),  # no band for a high-force run without braking
        (Spin("RT", 20, 2000, True), "Z"),
        (Spin("other", 10, 2000, True), "Z"),
    ],
)
def test_first_centrifugation_from_a_recorded_run(spin: Spin, expected: str) -> None:
    code = derive_fluid("PL2", "PED", collected_at=T0, centrifugation=spin, second_centrifugation="J")
    assert code.split("-")[3] == expected
    assert parse(code)


def test_second_centrifugation_from_a_recorded_run_has_no_m_band() -> None:
    assert sprec.spin_code(Spin("RT", 30, 800, False)) == "M"
    assert sprec.spin_code(Spin("RT", 30, 800, False), second=True) == "Z"
    code = derive_fluid(
        "PL2", "PED", collected_at=T0, centrifugation="D", second_centrifugation=Spin("2-10", 10, 16000, True)
    )
    assert code.split("-")[3:5] == ["D", "J"]


def test_spin_needs_positive_duration_and_force() -> None:
    with pytest.raises(SprecInvalid) as caught:
        derive_fluid(
            "PL2", "PED", collected_at=T0, centrifugation="B", second_centrifugation=Spin("RT", 0, 100, True)
        )
    assert (caught.value.position, caught.value.element) == (5, "second_centrifugation")


def test_unknown_inputs_give_unknown_codes() -> None:
    assert derive_fluid("SER", "SST", collected_at=T0) == "SER-SST-X-X-X-X-X"
    # Single-spun plasma has no second spin by definition.
    assert derive_fluid("PL1", "PED", collected_at=T0) == "PL1-PED-X-X-N-X-X"
    # Spun, but how and when it was frozen were not recorded.
    assert derive_fluid("PL2", "PED", collected_at=T0, centrifuged_at=T0 + 3 * H) == "PL2-PED-C-X-X-X-X"


def test_not_centrifuged_specimen() -> None:
    code = derive_fluid("URN", "PPS", collected_at=T0, centrifugation="N", frozen_at=T0 + 3 * H, storage="K")
    assert code == "URN-PPS-C-N-N-N-K"
    assert derive_fluid("BLD", "PED", collected_at=T0, centrifugation="N") == "BLD-PED-X-N-N-N-X"


@pytest.mark.parametrize(
    ("kwargs", "position", "element"),
    [
        ({"centrifuged_at": T0 - MIN}, 3, "pre_centrifugation_delay"),
        ({"centrifuged_at": T0 + H, "frozen_at": T0 + 30 * MIN}, 6, "post_centrifugation_delay"),
        ({"frozen_at": T0 - H}, 6, "post_centrifugation_delay"),
        ({"centrifugation": "N", "centrifuged_at": T0 + H}, 4, "centrifugation"),
        ({"centrifugation": "N", "second_centrifugation": "B"}, 5, "second_centrifugation"),
        ({"centrifugation": "Q"}, 4, "centrifugation"),
        ({"centrifugation": "B", "second_centrifugation": "M"}, 5, "second_centrifugation"),
        ({"storage": "QQ"}, 7, "long_term_storage"),
        ({"centrifuged_at": datetime(2024, 3, 1, 9, 0)}, 3, "pre_centrifugation_delay"),  # naive
        ({"frozen_at": datetime(2024, 3, 1, 9, 0)}, 6, "post_centrifugation_delay"),  # naive
    ],
)
def test_impossible_fluid_facts_are_rejected(kwargs: dict[str, object], position: int, element: str) -> None:
    with pytest.raises(SprecInvalid) as caught:
        derive_fluid("PL2", "PED", collected_at=T0, **kwargs)  # type: ignore[arg-type]
    assert (caught.value.position, caught.value.element) == (position, element)


def test_plasma_spin_count_must_match_its_type() -> None:
    with pytest.raises(SprecInvalid, match="PL1 is single-spun"):
        derive_fluid("PL1", "PED", collected_at=T0, centrifugation="B", second_centrifugation="J")
    with pytest.raises(SprecInvalid, match="PL2 is double-spun"):
        derive_fluid("PL2", "PED", collected_at=T0, centrifugation="B", second_centrifugation="N")


@pytest.mark.parametrize(
    ("sample_type", "container", "position"),
    [("TIS", "PED", 1), ("QQQ", "PED", 1), ("SER", "SRG", 2), ("SER", "", 2)],
)
def test_fluid_derivation_checks_type_and_container(sample_type: str, container: str, position: int) -> None:
    with pytest.raises(SprecInvalid) as caught:
        derive_fluid(sample_type, container, collected_at=T0)
    assert caught.value.position == position


def test_naive_collection_time_is_rejected() -> None:
    with pytest.raises(SprecInvalid, match="timezone-aware"):
        derive_fluid("SER", "SST", collected_at=datetime(2024, 3, 1, 8, 0))


def test_timestamps_in_different_zones_are_compared_as_instants() -> None:
    cet = timezone(timedelta(hours=1))
    # 09:30 CET is 08:30 UTC: 30 minutes after collection, not 90.
    code = derive_fluid("SER", "SST", collected_at=T0, centrifuged_at=datetime(2024, 3, 1, 9, 30, tzinfo=cet))
    assert code.split("-")[2] == "A"


# --------------------------------------------------------------------------------------------
# Derivation: solids
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("minutes", "expected"),
    [
        (0, "A"),
        (1.99, "A"),
        (2, "B"),
        (9.5, "B"),
        (10, "C"),
        (20, "D"),
        (30, "E"),
        (59.9, "E"),
        (60, "F"),
        (600, "F"),
        (None, "X"),
    ],
)
def test_ischemia_bands(minutes: float | None, expected: str) -> None:
    code = derive_solid("TIS", "SRG", warm_ischemia_minutes=minutes, cold_ischemia_minutes=minutes)
    assert code.split("-")[2:4] == [expected, expected]


@pytest.mark.parametrize(
    ("hours", "fixation", "expected"),
    [
        (0.2, "NBF", "A"),
        (0.25, "NBF", "B"),
        (1, "NBF", "C"),
        (4, "NBF", "D"),
        (8, "FOR", "E"),
        (24, "NBF", "F"),
        (48, "NBF", "G"),
        (72, "NBF", "Z"),
        (None, "NBF", "X"),
        (None, "SNP", "N"),
        (None, "OCT", "N"),
        (None, None, "X"),
    ],
)
def test_fixation_time_bands(hours: float | None, fixation: str | None, expected: str) -> None:
    code = derive_solid("TIS", "SRG", fixation=fixation, fixation_hours=hours)
    assert code.split("-")[5] == expected


def test_solid_derivation_full_code() -> None:
    code = derive_solid(
        "tis",
        "srg",
        warm_ischemia_minutes=5,
        cold_ischemia_minutes=25,
        fixation="nbf",
        fixation_hours=20,
        storage="p",
    )
    assert code == "TIS-SRG-B-D-NBF-E-P"
    assert parse(code).kind == "solid"


def test_biopsy_has_no_warm_ischemia_unless_recorded() -> None:
    assert derive_solid("TIS", "BPS").split("-")[2] == "N"
    assert derive_solid("TIS", "BPS", warm_ischemia_minutes=3).split("-")[2] == "B"
    assert derive_solid("TIS", "SRG").split("-")[2] == "X"


def test_solid_unknown_inputs_give_unknown_codes() -> None:
    assert derive_solid("TIS", "SRG") == "TIS-SRG-X-X-XXX-X-X"


@pytest.mark.parametrize(
    ("args", "kwargs", "position", "element"),
    [
        (("SER", "SRG"), {}, 1, "sample_type"),
        (("TIS", "SST"), {}, 2, "collection_type"),
        (("TIS", "SRG"), {"warm_ischemia_minutes": -1}, 3, "warm_ischemia_time"),
        (("TIS", "SRG"), {"cold_ischemia_minutes": -0.5}, 4, "cold_ischemia_time"),
        (("TIS", "SRG"), {"fixation": "FFPE"}, 5, "fixation_type"),
        (("TIS", "SRG"), {"fixation": "NBF", "fixation_hours": -2}, 6, "fixation_time"),
        (("TIS", "SRG"), {"storage": "-80"}, 7, "long_term_storage"),
    ],
)
def test_impossible_solid_facts_are_rejected(
    args: tuple[str, str], kwargs: dict[str, object], position: int, element: str
) -> None:
    with pytest.raises(SprecInvalid) as caught:
        derive_solid(*args, **kwargs)  # type: ignore[arg-type]
    assert (caught.value.position, caught.value.element) == (position, element)


# --------------------------------------------------------------------------------------------
# MIABIS suggestions
# --------------------------------------------------------------------------------------------


def test_every_miabis_sample_type_has_a_suggestion_of_a_real_code() -> None:
    for member in SampleType:
        code = MIABIS_TO_SPREC_TYPE[member.value]
        assert code in SPREC_FLUID_TYPES or code in SPREC_SOLID_TYPES


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Serum", "SER"),
        ("Plasma", "PL1"),
        ("Blood", "BLD"),
        ("Buffy coat", "BUF"),
        ("Urine", "URN"),
        ("Saliva", "SAL"),
        ("Faeces", "STL"),
        ("Tissue (Frozen)", "TIS"),
        ("Tissue (FFPE)", "TIS"),
        ("DNA", "ZZZ"),
        ("Other body fluid", "ZZZ"),
    ],
)
def test_miabis_suggestions(name: str, expected: str) -> None:
    assert MIABIS_TO_SPREC_TYPE[name] == expected
    assert sprec.suggest_sprec_type(name.upper()) == expected


def test_ffpe_suggestion_is_a_solid_type() -> None:
    assert MIABIS_TO_SPREC_TYPE["Tissue (FFPE)"] in SPREC_SOLID_TYPES
    assert sprec.suggest_sprec_type("no such material") == "ZZZ"
