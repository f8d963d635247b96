"""Position labels of a box grid: "A1" (row letters, column number) or "1".."N" counted row by row."""

from __future__ import annotations

import re
from collections.abc import Iterator

from biobank.kit.errors import Invalid
from biobank.storage.models import LabelScheme, StorageUnit, UnitKind

_LETTER_NUMBER = re.compile(r"^([A-Z]+)0*([1-9][0-9]*)$")
_NUMBER = re.compile(r"^0*([1-9][0-9]*)$")


def row_letters(row: int) -> str:
    """Spreadsheet-style letters of a 1-based row: 1 → A, 26 → Z, 27 → AA, 100 → CV."""
    if row < 1:
        raise ValueError("rows are numbered from 1")
    letters = ""
    while row:
        row, rest = divmod(row - 1, 26)
        letters = chr(ord("A") + rest) + letters
    return letters


def row_number(letters: str) -> int:
    """The 1-based row of spreadsheet-style letters (A → 1, AA → 27)."""
    number = 0
    for letter in letters:
        number = number * 26 + (ord(letter) - ord("A") + 1)
    return number


def _scheme(box: StorageUnit) -> LabelScheme:
    return LabelScheme(box.label_scheme or LabelScheme.LETTER_NUMBER)


def _grid(box: StorageUnit) -> tuple[int, int]:
    if box.kind != UnitKind.BOX or not box.rows or not box.cols:
        raise Invalid.field("box", f"{box.path or box.name} is not a box")
    return box.rows, box.cols


def _label(scheme: LabelScheme, cols: int, row: int, col: int) -> str:
    if scheme is LabelScheme.NUMERIC:
        return str((row - 1) * cols + col)
    return f"{row_letters(row)}{col}"


def position_label(box: StorageUnit, row: int, col: int) -> str:
    """The label of a 1-based (row, col) in the box's scheme; Invalid("position") outside the grid."""
    rows, cols = _grid(box)
    if not (1 <= row <= rows and 1 <= col <= cols):
        raise Invalid.field("position", f"row {row}, column {col} is outside the {rows} × {cols} grid of the box")
    return _label(_scheme(box), cols, row, col)


def label_range(box: StorageUnit) -> str:
    """The first and last labels of a box, for messages ("A1..H12", "1..96")."""
    rows, cols = _grid(box)
    scheme = _scheme(box)
    return f"{_label(scheme, cols, 1, 1)}..{_label(scheme, cols, rows, cols)}"


def parse_position(box: StorageUnit, label: str) -> tuple[int, int]:
    """The 1-based (row, col) of a label in the box's scheme; Invalid("position") when bad or outside."""
    rows, cols = _grid(box)
    text = (label or "").strip().upper()
    scheme = _scheme(box)
    expected = f"use {label_range(box)}"
    if scheme is LabelScheme.NUMERIC:
        match = _NUMBER.match(text)
        if match is None:
            raise Invalid.field("position", f"{label!r} is not a position of this box: {expected}", value=label)
        number = int(match.group(1))
        if number > rows * cols:
            raise Invalid.field("position", f"{label!r} is outside this box: {expected}", value=label)
        return (number - 1) // cols + 1, (number - 1) % cols + 1
    match = _LETTER_NUMBER.match(text)
    if match is None:
        raise Invalid.field("position", f"{label!r} is not a position of this box: {expected}", value=label)
    row, col = row_number(match.group(1)), int(match.group(2))
    if row > rows or col > cols:
        raise Invalid.field("position", f"{label!r} is outside this box: {expected}", value=label)
    return row, col


def positions_from(box: StorageUnit, row: int, col: int) -> Iterator[tuple[int, int]]:
    """Every position from (row, col) to the end of the box, row by row."""
    rows, cols = _grid(box)
    for index in range((row - 1) * cols + (col - 1), rows * cols):
        yield index // cols + 1, index % cols + 1
