"""Printable label sheets (A4, PDF or SVG) with a Code 128 barcode on every label.

Each label carries, top to bottom: the Code 128 barcode of ``Label.barcode`` (with a quiet zone of
ten modules each side), the barcode's text, the public id in bold, and up to three short extra
lines (sample type, date, ...). Text too wide for the label is shrunk, then cut with an ellipsis.

Both formats draw the bars from the same encoder (:func:`code128_values`, set B with set C for
runs of digits), so a PDF and an SVG of the same sheet carry the same symbols. The PDF is drawn
with reportlab, one page per sheet. The SVG is a single document in millimetre user units; its
pages are stacked top to bottom as ``<g id="page-N" class="page">`` groups, each one A4 page high,
so the document is ``pages × 297 mm`` tall. Every label is a ``<g class="label">`` whose
``<g class="bars">`` holds one ``<rect>`` per bar.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal
from xml.sax.saxutils import escape, quoteattr

from reportlab.pdfbase.pdfmetrics import stringWidth
from reportlab.pdfgen.canvas import Canvas

MM_PER_PT = 25.4 / 72.0
QUIET_ZONE_MODULES = 10
MAX_EXTRA_LINES = 3
FONT = "Helvetica"
FONT_BOLD = "Helvetica-Bold"

# Code 128 symbol patterns: the widths, in modules, of bar, space, bar, space, bar, space
# (the stop symbol has a seventh element, its final bar). Index = symbol value.
CODE128_PATTERNS: tuple[str, ...] = (
    "212222", "222122", "222221", "121223", "121322", "131222", "122213", "122312", "132212", "221213",
    "221312", "231212", "112232", "122132", "122231", "113222", "123122", "123221", "223211", "221132",
    "221231", "213212", "223112", "312131", "311222", "321122", "321221", "312212", "322112", "322211",
    "212123", "212321", "232121", "111323", "131123", "131321", "112313", "132113", "132311", "211313",
    "231113", "231311", "112133", "112331", "132131", "113123", "113321", "133121", "313121", "211331",
    "231131", "213113", "213311", "213131", "311123", "311321", "331121", "312113", "312311", "332111",
    "314111", "221411", "431111", "111224", "111422", "121124", "121421", "141122", "141221", "112214",
    "112412", "122114", "122411", "142112", "142211", "241211", "221114", "413111", "241112", "134111",
    "111242", "121142", "121241", "114212", "124112", "124211", "411212", "421112", "421211", "212141",
    "214121", "412121", "111143", "111341", "131141", "114113", "114311", "411113", "411311", "113141",
    "114131", "311141", "411131", "211412", "211214", "211232", "2331112",
)  # fmt: skip
CODE_C = 99
CODE_B = 100
START_B = 104
START_C = 105
STOP = 106
_DIGITS = frozenset("0123456789")


@dataclass(frozen=True, slots=True)
class Label:
    """One label: the barcode value, the public id, and up to three short extra lines."""

    barcode: str
    public_id: str
    lines: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class LabelLayout:
    """An A4 sheet of ``columns`` × ``rows`` labels; all lengths in millimetres."""

    label_width_mm: float = 70.0
    label_height_mm: float = 37.0
    columns: int = 3
    rows: int = 8
    margin_left_mm: float = 0.0
    margin_top_mm: float = 0.5
    gap_x_mm: float = 0.0
    gap_y_mm: float = 0.0
    padding_mm: float = 2.5
    page_width_mm: float = 210.0
    page_height_mm: float = 297.0
    min_module_mm: float = 0.19
    max_module_mm: float = 0.5

    def __post_init__(self) -> None:
        if self.columns < 1 or self.rows < 1:
            raise ValueError(
                f"a label layout needs at least one column and one row, got {self.columns}×{self.rows}"
            )
        lengths = (self.label_width_mm, self.label_height_mm, self.page_width_mm, self.page_height_mm)
        if (
            min(lengths) <= 0
            or min(self.margin_left_mm, self.margin_top_mm, self.gap_x_mm, self.gap_y_mm) < 0
        ):
            raise ValueError("label and page sizes must be positive, margins and gaps not negative")
        if not 0 < self.min_module_mm <= self.max_module_mm:
            raise ValueError("barcode module widths must satisfy 0 < min_module_mm <= max_module_mm")
        used_width = (
            self.margin_left_mm + self.columns * self.label_width_mm + (self.columns - 1) * self.gap_x_mm
        )
        used_height = self.margin_top_mm + self.rows * self.label_height_mm + (self.rows - 1) * self.gap_y_mm
        if used_width > self.page_width_mm + 1e-9 or used_height > self.page_height_mm + 1e-9:
            raise ValueError(
                f"{self.columns}×{self.rows} labels of {self.label_width_mm}×{self.label_height_mm} mm need "
                f"{used_width:g}×{used_height:g} mm, more than the "
                f"{self.page_width_mm:g}×{self.page_height_mm:g} mm page"
            )
        if self.bar_height_mm < 4.0 or self.label_width_mm - 2 * self.padding_mm <= 0:
            raise ValueError(
                f"a {self.label_width_mm}×{self.label_height_mm} mm label with {self.padding_mm} mm padding "
                "leaves no room for a readable barcode and its text"
            )

    @property
    def per_page(self) -> int:
        """How many labels fit on one sheet."""
        return self.columns * self.rows

    @property
    def inner_width_mm(self) -> float:
        """The printable width of one label (inside the padding)."""
        return self.label_width_mm - 2 * self.padding_mm

    @property
    def line_height_mm(self) -> float:
        """The height of one text line (barcode text, public id and the extra lines)."""
        usable = self.label_height_mm - 2 * self.padding_mm
        return min(3.4, usable * 0.6 / (2 + MAX_EXTRA_LINES))

    @property
    def bar_height_mm(self) -> float:
        """The height of the bars: what the text lines leave."""
        usable = self.label_height_mm - 2 * self.padding_mm
        return usable - (2 + MAX_EXTRA_LINES) * self.line_height_mm

    def origin_mm(self, index_on_page: int) -> tuple[float, float]:
        """Top-left corner of the label at ``index_on_page`` (row by row), from the page's top-left."""
        row, column = divmod(index_on_page, self.columns)
        return (
            self.margin_left_mm + column * (self.label_width_mm + self.gap_x_mm),
            self.margin_top_mm + row * (self.label_height_mm + self.gap_y_mm),
        )


DEFAULT_LAYOUT = LabelLayout()


# --------------------------------------------------------------------------------------------
# Code 128
# --------------------------------------------------------------------------------------------


def _check_encodable(text: str) -> None:
    if not text:
        raise ValueError("the barcode value is empty")
    for position, char in enumerate(text, start=1):
        if not 32 <= ord(char) <= 126:
            raise ValueError(
                f"barcode {text!r}: character {char!r} at position {position} cannot be encoded in Code 128 "
                "set B (printable ASCII, space to '~', only)"
            )


def _digit_run(text: str, start: int) -> int:
    end = start
    while end < len(text) and text[end] in _DIGITS:
        end += 1
    return end - start


def code128_values(text: str) -> list[int]:
    """The Code 128 symbol values of ``text``: start, data, checksum, stop (set B, set C for digit runs)."""
    _check_encodable(text)
    values: list[int]
    in_c = _digit_run(text, 0) >= 4
    values = [START_C if in_c else START_B]
    index = 0
    while index < len(text):
        if in_c:
            if _digit_run(text, index) >= 2:
                values.append(int(text[index : index + 2]))
                index += 2
            else:
                values.append(CODE_B)
                in_c = False
            continue
        run = _digit_run(text, index)
        # Switching costs a symbol: worth it for 6+ digits, or 4+ digits that end the value.
        if run >= 6 or (run >= 4 and index + run == len(text)):
            if run % 2:
                values.append(ord(text[index]) - 32)
                index += 1
            values.append(CODE_C)
            in_c = True
            continue
        values.append(ord(text[index]) - 32)
        index += 1
    checksum = (values[0] + sum(weight * value for weight, value in enumerate(values[1:], start=1))) % 103
    values += [checksum, STOP]
    return values


def code128_widths(text: str) -> list[int]:
    """Element widths in modules, alternating bar and space and starting with a bar."""
    return [int(width) for value in code128_values(text) for width in CODE128_PATTERNS[value]]


def _bars(widths: Sequence[int]) -> list[tuple[int, int]]:
    """(offset, width) in modules of every bar."""
    bars: list[tuple[int, int]] = []
    offset = 0
    for index, width in enumerate(widths):
        if index % 2 == 0:
            bars.append((offset, width))
        offset += width
    return bars


# --------------------------------------------------------------------------------------------
# Shared label geometry
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Text:
    text: str
    x_mm: float  # centre
    baseline_mm: float  # from the label's top
    size_mm: float
    bold: bool


@dataclass(frozen=True, slots=True)
class _Drawn:
    barcode: str
    module_mm: float
    bars_left_mm: float
    bars_top_mm: float
    bar_height_mm: float
    bars: list[tuple[int, int]]
    texts: list[_Text]


def _clean(text: str) -> str:
    """Printable text: control characters become spaces, what XML cannot carry becomes '?'."""
    out = []
    for char in text:
        code = ord(char)
        if code < 32 or 0x7F <= code < 0xA0:
            out.append(" ")
        elif 0xD800 <= code <= 0xDFFF or code in (0xFFFE, 0xFFFF):
            out.append("?")
        else:
            out.append(char)
    return "".join(out).strip()


def _fit(text: str, size_mm: float, width_mm: float, font: str) -> tuple[str, float]:
    """Shrink the text down to 70 % of its size, then cut it with an ellipsis, to fit ``width_mm``."""

    def width(candidate: str, size: float) -> float:
        return float(stringWidth(candidate, font, size / MM_PER_PT)) * MM_PER_PT

    natural = width(text, size_mm)
    if natural <= width_mm:
        return text, size_mm
    size = max(size_mm * 0.7, size_mm * width_mm / natural)
    if width(text, size) <= width_mm:
        return text, size
    while text and width(text + "…", size) > width_mm:
        text = text[:-1]
    return text.rstrip() + "…", size


def _layout_label(number: int, label: Label, layout: LabelLayout) -> _Drawn:
    where = f"label {number} ({label.public_id!r})"
    if isinstance(label.lines, str):
        raise ValueError(f"{where}: lines must be a tuple of strings, not one string")
    lines = tuple(label.lines)
    if len(lines) > MAX_EXTRA_LINES:
        raise ValueError(f"{where}: at most {MAX_EXTRA_LINES} extra lines fit on a label, got {len(lines)}")
    try:
        widths = code128_widths(label.barcode)
    except ValueError as error:
        raise ValueError(f"{where}: {error}") from None
    modules = sum(widths) + 2 * QUIET_ZONE_MODULES
    module = min(layout.max_module_mm, layout.inner_width_mm / modules)
    if module < layout.min_module_mm:
        raise ValueError(
            f"{where}: barcode {label.barcode!r} needs {modules} modules, "
            f"{modules * layout.min_module_mm:.1f} mm at the smallest printable module of "
            f"{layout.min_module_mm} mm; the label leaves "
            f"{layout.inner_width_mm:.1f} mm"
        )
    centre = layout.label_width_mm / 2
    bars_left = centre - (modules - 2 * QUIET_ZONE_MODULES) * module / 2
    top = layout.padding_mm
    line = layout.line_height_mm
    size = line * 0.82
    texts: list[_Text] = []
    baseline = top + layout.bar_height_mm + line * 0.85
    entries = [(_clean(label.barcode), False), (_clean(label.public_id), True)]
    entries += [(_clean(str(extra)), False) for extra in lines]
    for text, bold in entries:
        if text:
            fitted, fitted_size = _fit(text, size, layout.inner_width_mm, FONT_BOLD if bold else FONT)
            texts.append(_Text(fitted, centre, baseline, fitted_size, bold))
        baseline += line
    return _Drawn(label.barcode, module, bars_left, top, layout.bar_height_mm, _bars(widths), texts)


def _pages(labels: Sequence[Label], layout: LabelLayout) -> list[list[_Drawn]]:
    drawn = [_layout_label(number, label, layout) for number, label in enumerate(labels, start=1)]
    return [drawn[start : start + layout.per_page] for start in range(0, len(drawn), layout.per_page)]


# --------------------------------------------------------------------------------------------
# Renderers
# --------------------------------------------------------------------------------------------


def _pdf(pages: list[list[_Drawn]], layout: LabelLayout) -> bytes:
    def pt(mm: float) -> float:
        return mm / MM_PER_PT

    buffer = io.BytesIO()
    page_height = layout.page_height_mm
    canvas = Canvas(buffer, pagesize=(pt(layout.page_width_mm), pt(page_height)), invariant=1)
    canvas.setTitle("Specimen labels")
    canvas.setCreator("Biobank Commons")
    for page in pages:
        for index, label in enumerate(page):
            left, top = layout.origin_mm(index)
            canvas.setFillColorRGB(0, 0, 0)
            bottom = page_height - (top + label.bars_top_mm + label.bar_height_mm)
            for offset, width in label.bars:
                canvas.rect(
                    pt(left + label.bars_left_mm + offset * label.module_mm),
                    pt(bottom),
                    pt(width * label.module_mm),
                    pt(label.bar_height_mm),
                    stroke=0,
                    fill=1,
                )
            for text in label.texts:
                canvas.setFont(FONT_BOLD if text.bold else FONT, pt(text.size_mm))
                canvas.drawCentredString(
                    pt(left + text.x_mm), pt(page_height - top - text.baseline_mm), text.text
                )
        canvas.showPage()
    canvas.save()
    return buffer.getvalue()


def _n(value: float) -> str:
    return f"{value:.4f}".rstrip("0").rstrip(".")


def _svg(pages: list[list[_Drawn]], layout: LabelLayout) -> bytes:
    width, height = layout.page_width_mm, layout.page_height_mm
    total = height * len(pages)
    out = [
        '<?xml version="1.0" encoding="UTF-8"?>',
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{_n(width)}mm" height="{_n(total)}mm" '
        f'viewBox="0 0 {_n(width)} {_n(total)}" data-pages="{len(pages)}">',
        "<title>Specimen labels</title>",
    ]
    for number, page in enumerate(pages, start=1):
        out.append(
            f'<g id="page-{number}" class="page" transform="translate(0 {_n((number - 1) * height)})">'
        )
        out.append(f'<rect class="sheet" x="0" y="0" width="{_n(width)}" height="{_n(height)}" fill="#fff"/>')
        for index, label in enumerate(page):
            left, top = layout.origin_mm(index)
            out.append(
                f'<g class="label" transform="translate({_n(left)} {_n(top)})" '
                f"data-barcode={quoteattr(label.barcode)}>"
            )
            out.append(
                f'<g class="bars" fill="#000" data-module-mm="{_n(label.module_mm)}" '
                f'shape-rendering="crispEdges">'
            )
            for offset, bar in label.bars:
                out.append(
                    f'<rect x="{_n(label.bars_left_mm + offset * label.module_mm)}" '
                    f'y="{_n(label.bars_top_mm)}" width="{_n(bar * label.module_mm)}" '
                    f'height="{_n(label.bar_height_mm)}"/>'
                )
            out.append("</g>")
            for text in label.texts:
                weight = ' font-weight="bold"' if text.bold else ""
                out.append(
                    f'<text x="{_n(text.x_mm)}" y="{_n(text.baseline_mm)}" '
                    f'font-family="Helvetica, Arial, sans-serif" font-size="{_n(text.size_mm)}" '
                    f'text-anchor="middle"{weight}>{escape(text.text)}</text>'
                )
            out.append("</g>")
        out.append("</g>")
    out.append("</svg>")
    return ("\n".join(out) + "\n").encode("utf-8")


def render_label_sheet(
    labels: Sequence[Label], *, fmt: Literal["pdf", "svg"] = "pdf", layout: LabelLayout = DEFAULT_LAYOUT
) -> bytes:
    """Render labels onto A4 sheets as PDF or SVG bytes; ValueError on an empty list or a bad barcode."""
    if fmt not in ("pdf", "svg"):
        raise ValueError(f"unknown label sheet format {fmt!r}; use 'pdf' or 'svg'")
    if not labels:
        raise ValueError("no labels to print: the list of labels is empty")
    pages = _pages(labels, layout)
    return _pdf(pages, layout) if fmt == "pdf" else _svg(pages, layout)


def page_count(label_count: int, layout: LabelLayout = DEFAULT_LAYOUT) -> int:
    """How many sheets ``label_count`` labels take."""
    return math.ceil(label_count / layout.per_page)
