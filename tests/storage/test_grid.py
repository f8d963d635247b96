"""Position labels of box grids: A1 and 1-N schemes, AA rows, parse errors naming "position"."""

from __future__ import annotations

import pytest

from biobank.kit.errors import Invalid
from biobank.storage.grid import label_range, parse_position, position_label, positions_from, row_letters
from biobank.storage.models import LabelScheme, StorageUnit, UnitKind


def box(rows: int = 8, cols: int = 12, scheme: LabelScheme = LabelScheme.LETTER_NUMBER) -> StorageUnit:
    return StorageUnit(kind=UnitKind.BOX, name="Box", path="S / F / R / Box", rows=rows, cols=cols, label_scheme=scheme)


def all_positions(unit: StorageUnit) -> list[tuple[int, int]]:
    assert unit.rows and unit.cols
    return [(r, c) for r in range(1, unit.rows + 1) for c in range(1, unit.cols + 1)]


def test_letter_number_labels_of_a_96_well_box() -> None:
    unit = box()
    assert position_label(unit, 1, 1) == "A1"
    assert position_label(unit, 1, 12) == "A12"
    assert position_label(unit, 2, 1) == "B1"
    assert position_label(unit, 8, 12) == "H12"
    labels = [position_label(unit, r, c) for r, c in all_positions(unit)]
    assert len(set(labels)) == 96
    assert label_range(unit) == "A1..H12"


def test_numeric_labels_count_row_by_row() -> None:
    unit = box(scheme=LabelScheme.NUMERIC)
    assert position_label(unit, 1, 1) == "1"
    assert position_label(unit, 1, 12) == "12"
    assert position_label(unit, 2, 1) == "13"
    assert position_label(unit, 8, 12) == "96"
    assert [position_label(unit, r, c) for r, c in all_positions(unit)] == [str(n) for n in range(1, 97)]
    assert label_range(unit) == "1..96"


@pytest.mark.parametrize("scheme", list(LabelScheme))
def test_every_label_parses_back_to_its_position(scheme: LabelScheme) -> None:
    unit = box(rows=30, cols=17, scheme=scheme)
    for row, col in all_positions(unit):
        assert parse_position(unit, position_label(unit, row, col)) == (row, col)


def test_rows_past_z_use_two_letters() -> None:
    assert [row_letters(n) for n in (1, 26, 27, 28, 52, 53, 100)] == ["A", "Z", "AA", "AB", "AZ", "BA", "CV"]
    unit = box(rows=100, cols=100)
    assert position_label(unit, 27, 1) == "AA1"
    assert position_label(unit, 100, 100) == "CV100"
    assert parse_position(unit, "AA1") == (27, 1)
    assert parse_position(unit, "cv100") == (100, 100)


def test_parse_is_forgiving_about_case_spaces_and_leading_zeros() -> None:
    unit = box()
    assert parse_position(unit, " h12 ") == (8, 12)
    assert parse_position(unit, "A01") == (1, 1)
    assert parse_position(box(scheme=LabelScheme.NUMERIC), "007") == (1, 7)


@pytest.mark.parametrize("label", ["", "I1", "A13", "A0", "1A", "A", "12", "A-1", "AA1", "A1.5"])
def test_bad_letter_number_labels_name_the_position_field(label: str) -> None:
    with pytest.raises(Invalid) as caught:
        parse_position(box(), label)
    assert caught.value.errors[0]["loc"] == ["position"]
    assert "A1..H12" in caught.value.errors[0]["msg"]


@pytest.mark.parametrize("label", ["", "0", "97", "A1", "-1", "1.0"])
def test_bad_numeric_labels_name_the_position_field(label: str) -> None:
    with pytest.raises(Invalid) as caught:
        parse_position(box(scheme=LabelScheme.NUMERIC), label)
    assert caught.value.errors[0]["loc"] == ["position"]
    assert "1..96" in caught.value.errors[0]["msg"]


@pytest.mark.parametrize(("row", "col"), [(0, 1), (1, 0), (9, 1), (1, 13)])
def test_labels_outside_the_grid_are_refused(row: int, col: int) -> None:
    with pytest.raises(Invalid) as caught:
        position_label(box(), row, col)
    assert caught.value.errors[0]["loc"] == ["position"]


def test_a_unit_without_a_grid_is_not_a_box() -> None:
    rack = StorageUnit(kind=UnitKind.RACK, name="Rack", path="S / F / Rack")
    with pytest.raises(Invalid) as caught:
        parse_position(rack, "A1")
    assert caught.value.errors[0]["loc"] == ["box"]


def test_positions_run_row_by_row_to_the_end_of_the_box() -> None:
    unit = box(rows=2, cols=3)
    assert list(positions_from(unit, 1, 3)) == [(1, 3), (2, 1), (2, 2), (2, 3)]
    assert list(positions_from(unit, 1, 1)) == all_positions(unit)
