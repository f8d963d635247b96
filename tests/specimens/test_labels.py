"""Label sheets: the Code 128 bars are decoded back from the SVG and the PDF, not just looked at."""

from __future__ import annotations

import base64
import math
import re
import xml.etree.ElementTree as ET
import zlib
from collections import defaultdict

import pytest
from reportlab.graphics.barcode import code128 as reportlab_code128
from reportlab.pdfbase.pdfmetrics import stringWidth

from biobank.specimens.labels import (
    CODE128_PATTERNS,
    DEFAULT_LAYOUT,
    MM_PER_PT,
    QUIET_ZONE_MODULES,
    Label,
    LabelLayout,
    code128_values,
    code128_widths,
    page_count,
    render_label_sheet,
)

SVG = "{http://www.w3.org/2000/svg}"

# The reference table, taken from reportlab rather than from the module under test:
# upper-case letters are bars, lower-case spaces, A/a = 1 module ... D/d = 4 modules.
REFERENCE_PATTERNS: dict[str, int] = {
    "".join(str(ord(char.lower()) - ord("a") + 1) for char in pattern): value
    for value, pattern in reportlab_code128._patterns.items()
}

# --------------------------------------------------------------------------------------------
# An independent Code 128 decoder
# --------------------------------------------------------------------------------------------


def decode_widths(widths: list[int]) -> str:
    """Decode bar/space widths (in modules, starting with a bar); checks start, checksum and stop."""
    assert len(widths) % 6 == 1, f"{len(widths)} elements is not n symbols plus a stop"
    *symbols, stop = [widths[i : i + 6] for i in range(0, len(widths) - 7, 6)] + [widths[-7:]]
    assert "".join(map(str, stop)) == "2331112", "missing stop pattern"
    values = [REFERENCE_PATTERNS["".join(map(str, symbol))] for symbol in symbols]
    start, *data, checksum = values
    assert start in (103, 104, 105), f"not a start symbol: {start}"
    expected = (start + sum(weight * value for weight, value in enumerate(data, start=1))) % 103
    assert checksum == expected, f"checksum {checksum} != {expected}"
    code_set = {103: "A", 104: "B", 105: "C"}[start]
    text = []
    for value in data:
        if code_set == "C":
            if value == 100:
                code_set = "B"
            elif value < 100:
                text.append(f"{value:02d}")
            else:
                raise AssertionError(f"unexpected value {value} in set C")
        elif code_set == "B":
            if value == 99:
                code_set = "C"
            elif value < 96:
                text.append(chr(value + 32))
            else:
                raise AssertionError(f"unexpected value {value} in set B")
        else:  # pragma: no cover - the encoder never starts in set A
            raise AssertionError("set A")
    return "".join(text)


def widths_from_bars(bars: list[tuple[float, float]], module: float) -> list[int]:
    """Element widths from (x, width) bars, measured in modules; every width must be a whole number."""
    bars = sorted(bars)
    widths: list[int] = []
    for index, (x, width) in enumerate(bars):
        for measured in [width] if index == 0 else [x - (bars[index - 1][0] + bars[index - 1][1]), width]:
            modules = measured / module
            assert abs(modules - round(modules)) < 0.02, f"{measured} is not a whole number of modules"
            assert 1 <= round(modules) <= 4
            widths.append(round(modules))
    return widths


def parse_svg(document: bytes) -> ET.Element:
    """Parse an SVG this module rendered itself (trusted input)."""
    return ET.fromstring(document)  # noqa: S314 - our own output, not untrusted data


def svg_labels(document: bytes) -> list[dict[str, object]]:
    root = parse_svg(document)
    labels = []
    for page in root.findall(f"{SVG}g"):
        for label in page.findall(f"{SVG}g"):
            bars_group = label.find(f"{SVG}g")
            assert bars_group is not None and bars_group.get("class") == "bars"
            module = float(bars_group.attrib["data-module-mm"])
            bars = [
                (float(r.attrib["x"]), float(r.attrib["width"])) for r in bars_group.findall(f"{SVG}rect")
            ]
            labels.append(
                {
                    "page": page.attrib["id"],
                    "transform": label.attrib["transform"],
                    "barcode": label.attrib["data-barcode"],
                    "module": module,
                    "bars": bars,
                    "texts": [t.text for t in label.findall(f"{SVG}text")],
                }
            )
    return labels


def pdf_streams(document: bytes) -> list[str]:
    streams = []
    for match in re.finditer(rb"stream\r?\n(.*?)endstream", document, re.S):
        raw = match.group(1).strip()
        raw = raw.removesuffix(b"~>")
        streams.append(zlib.decompress(base64.a85decode(raw)).decode("latin-1"))
    return streams


def pdf_page_count(document: bytes) -> int:
    return len(re.findall(rb"/Type /Page(?![s\w])", document))


def pdf_bars_by_label(content: str, layout: LabelLayout) -> dict[int, list[tuple[float, float]]]:
    """Bars in one page's content stream, bucketed by label index (from their position)."""
    by_label: dict[int, list[tuple[float, float]]] = defaultdict(list)
    for x, y, w, h in re.findall(r"n ([\d.]+) ([\d.]+) ([\d.]+) ([\d.]+) re f\*", content):
        x_mm, top_mm = float(x) * MM_PER_PT, layout.page_height_mm - (float(y) + float(h)) * MM_PER_PT
        column = int((x_mm - layout.margin_left_mm) // (layout.label_width_mm + layout.gap_x_mm))
        row = int((top_mm - layout.margin_top_mm) // (layout.label_height_mm + layout.gap_y_mm))
        by_label[row * layout.columns + column].append((x_mm, float(w) * MM_PER_PT))
    return by_label


def pdf_texts(content: str) -> list[str]:
    return [
        text.replace("\\(", "(").replace("\\)", ")")
        for text in re.findall(r"\(((?:[^()\\]|\\.)*)\) Tj", content)
    ]


# --------------------------------------------------------------------------------------------
# The encoder
# --------------------------------------------------------------------------------------------


def test_pattern_table_matches_the_reference_table() -> None:
    assert len(CODE128_PATTERNS) == 107
    for value, pattern in enumerate(CODE128_PATTERNS):
        assert REFERENCE_PATTERNS[pattern] == value


def test_patterns_are_well_formed() -> None:
    for value, pattern in enumerate(CODE128_PATTERNS):
        widths = [int(w) for w in pattern]
        assert sum(widths) == (13 if value == 106 else 11)
        assert sum(widths[0::2]) % 2 == 0  # bars of every symbol cover an even number of modules


def test_known_encoding_with_checksum() -> None:
    # S M P - in set B, then the trailing digit run in set C: 00, 01.
    values = code128_values("SMP-0001")
    assert values == [104, 51, 45, 48, 13, 99, 0, 1, 16, 106]
    assert (104 + 1 * 51 + 2 * 45 + 3 * 48 + 4 * 13 + 5 * 99 + 6 * 0 + 7 * 1) % 103 == 16


@pytest.mark.parametrize(
    ("text", "start"),
    [("12345678", 105), ("1234", 105), ("123", 104), ("A12345678", 104), ("12345ABC", 105)],
)
def test_start_code_set(text: str, start: int) -> None:
    assert code128_values(text)[0] == start
    assert decode_widths(code128_widths(text)) == text


def test_set_c_shortens_digit_runs() -> None:
    text = "SMP123456789012"
    only_b = len(text) + 3  # start, one symbol per character, checksum, stop
    assert len(code128_values(text)) < only_b
    assert decode_widths(code128_widths(text)) == text


@pytest.mark.parametrize(
    "text",
    [
        "SMP-0001",
        "A",
        "0",
        "42",
        "~ !",
        "12345678",
        "1234567",
        "AB123456",
        "A1234B",
        "A123456B",
        "BB-2024-000123",
        "000000000000",
        "a1b2c3d4",
        "Hello World",
        "x" * 30,
        "99-ABC-123456-7",
        " leading space",
        "{|}~`^_[]\\",
    ],
)
def test_encoder_round_trips(text: str) -> None:
    assert decode_widths(code128_widths(text)) == text


@pytest.mark.parametrize(
    ("text", "position"),
    [("é", 1), ("AB\tC", 3), ("ABC\n", 4), ("snow☃", 5), ("\x7f", 1), ("Ω1", 1)],
)
def test_characters_outside_set_b_are_rejected(text: str, position: int) -> None:
    with pytest.raises(ValueError, match=f"at position {position} cannot be encoded in Code 128 set B"):
        code128_values(text)


def test_empty_barcode_is_rejected() -> None:
    with pytest.raises(ValueError, match="empty"):
        code128_values("")


# --------------------------------------------------------------------------------------------
# SVG sheets
# --------------------------------------------------------------------------------------------

BARCODES = ["SMP-0001", "BB-2024-000123", "12345678", "A1234B", "x", "Hello World", "2024030112345"]


def _labels(n: int) -> list[Label]:
    return [
        Label(BARCODES[i % len(BARCODES)], f"PID-{i:04d}", ("Serum", "2024-03-01", f"Box {i}")[: i % 4])
        for i in range(n)
    ]


def test_svg_bars_decode_to_the_barcode() -> None:
    labels = _labels(len(BARCODES))
    decoded = svg_labels(render_label_sheet(labels, fmt="svg"))
    assert len(decoded) == len(labels)
    for label, found in zip(labels, decoded, strict=True):
        module = found["module"]
        assert isinstance(module, float)
        bars = found["bars"]
        assert isinstance(bars, list)
        widths = widths_from_bars(bars, module)
        assert decode_widths(widths) == label.barcode == found["barcode"]
        texts = found["texts"]
        assert isinstance(texts, list)
        assert texts[:2] == [label.barcode, label.public_id]
        assert texts[2:] == list(label.lines)


def test_svg_bars_stay_inside_the_label_with_quiet_zones() -> None:
    layout = DEFAULT_LAYOUT
    for found in svg_labels(render_label_sheet(_labels(10), fmt="svg")):
        module = found["module"]
        bars = found["bars"]
        assert isinstance(module, float) and isinstance(bars, list)
        assert layout.min_module_mm <= module <= layout.max_module_mm
        left = min(x for x, _ in bars)
        right = max(x + w for x, w in bars)
        assert left - QUIET_ZONE_MODULES * module >= layout.padding_mm - 1e-3  # SVG keeps 4 decimals
        assert right + QUIET_ZONE_MODULES * module <= layout.label_width_mm - layout.padding_mm + 1e-3


@pytest.mark.parametrize(("count", "pages"), [(1, 1), (23, 1), (24, 1), (25, 2), (48, 2), (49, 3)])
def test_svg_page_count(count: int, pages: int) -> None:
    document = render_label_sheet(_labels(count), fmt="svg")
    root = parse_svg(document)
    page_groups = root.findall(f"{SVG}g")
    assert [g.attrib["id"] for g in page_groups] == [f"page-{n}" for n in range(1, pages + 1)]
    assert root.attrib["data-pages"] == str(pages)
    assert root.attrib["height"] == f"{297 * pages}mm"
    assert sum(len(g.findall(f"{SVG}g")) for g in page_groups) == count
    assert page_count(count) == pages
    # Each page group is shifted down by one A4 page.
    assert page_groups[-1].attrib["transform"] == f"translate(0 {297 * (pages - 1)})"


def test_svg_labels_fill_the_grid_row_by_row() -> None:
    found = svg_labels(render_label_sheet(_labels(5), fmt="svg"))
    assert [f["transform"] for f in found] == [
        "translate(0 0.5)",
        "translate(70 0.5)",
        "translate(140 0.5)",
        "translate(0 37.5)",
        "translate(70 37.5)",
    ]


def test_svg_escapes_text() -> None:
    label = Label("A&B<1>", 'P "1" & <2>', ("x < y & z",))
    document = render_label_sheet([label], fmt="svg")
    assert b"<1>" not in document and b"&amp;" in document
    found = svg_labels(document)[0]
    assert found["barcode"] == "A&B<1>"
    assert found["texts"] == ["A&B<1>", 'P "1" & <2>', "x < y & z"]
    bars, module = found["bars"], found["module"]
    assert isinstance(bars, list) and isinstance(module, float)
    assert decode_widths(widths_from_bars(bars, module)) == "A&B<1>"


def test_long_text_is_shrunk_then_cut_to_fit() -> None:
    long_line = "Plasma, double spun, EDTA, processed within two hours at room temperature"
    found = svg_labels(render_label_sheet([Label("S1", "P1", (long_line,))], fmt="svg"))[0]
    texts = found["texts"]
    assert isinstance(texts, list)
    assert texts[2].endswith("…") and long_line.startswith(texts[2][:-1].rstrip())
    root = parse_svg(render_label_sheet([Label("S1", "P1", (long_line,))], fmt="svg"))
    text = root.findall(f".//{SVG}text")[2]
    width_mm = stringWidth(text.text, "Helvetica", float(text.attrib["font-size"]) / MM_PER_PT) * MM_PER_PT
    assert width_mm <= DEFAULT_LAYOUT.inner_width_mm + 1e-6


def test_custom_layout_two_columns() -> None:
    layout = LabelLayout(
        label_width_mm=99.1,
        label_height_mm=38.1,
        columns=2,
        rows=7,
        margin_left_mm=4.65,
        margin_top_mm=15.15,
        gap_x_mm=2.5,
    )
    found = svg_labels(render_label_sheet(_labels(15), fmt="svg", layout=layout))
    assert [f["page"] for f in found].count("page-1") == 14
    assert found[1]["transform"] == "translate(106.25 15.15)"
    for f in found:
        bars, module = f["bars"], f["module"]
        assert isinstance(bars, list) and isinstance(module, float)
        assert decode_widths(widths_from_bars(bars, module)) == f["barcode"]


# --------------------------------------------------------------------------------------------
# PDF sheets
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("count", "pages"), [(1, 1), (24, 1), (25, 2), (49, 3)])
def test_pdf_page_count(count: int, pages: int) -> None:
    document = render_label_sheet(_labels(count))
    assert document.startswith(b"%PDF-")
    assert document.rstrip().endswith(b"%%EOF")
    assert pdf_page_count(document) == pages
    assert f"/Count {pages}".encode() in document


def test_pdf_contains_the_text_and_decodable_bars() -> None:
    labels = _labels(30)
    document = render_label_sheet(labels)
    streams = pdf_streams(document)
    assert len(streams) == 2
    for page_number, content in enumerate(streams):
        on_page = labels[page_number * 24 : (page_number + 1) * 24]
        texts = pdf_texts(content)
        bars = pdf_bars_by_label(content, DEFAULT_LAYOUT)
        assert sorted(bars) == list(range(len(on_page)))
        for index, label in enumerate(on_page):
            assert label.barcode in texts and label.public_id in texts
            for line in label.lines:
                assert line in texts
            label_bars = bars[index]
            module = min(width for _, width in label_bars)
            assert decode_widths(widths_from_bars(label_bars, module)) == label.barcode


def test_pdf_is_deterministic() -> None:
    labels = _labels(3)
    assert render_label_sheet(labels) == render_label_sheet(labels)


def test_pdf_and_svg_draw_the_same_symbols() -> None:
    labels = [Label("BB-2024-000123", "P1", ())]
    svg_found = svg_labels(render_label_sheet(labels, fmt="svg"))[0]
    content = pdf_streams(render_label_sheet(labels))[0]
    pdf_bars = pdf_bars_by_label(content, DEFAULT_LAYOUT)[0]
    svg_bars, module = svg_found["bars"], svg_found["module"]
    assert isinstance(svg_bars, list) and isinstance(module, float)
    assert widths_from_bars(pdf_bars, min(w for _, w in pdf_bars)) == widths_from_bars(svg_bars, module)


# --------------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["pdf", "svg"])
def test_empty_list_is_rejected(fmt: str) -> None:
    with pytest.raises(ValueError, match="empty"):
        render_label_sheet([], fmt=fmt)  # type: ignore[arg-type]


@pytest.mark.parametrize("fmt", ["pdf", "svg"])
def test_bad_barcode_names_the_label(fmt: str) -> None:
    labels = [Label("OK-1", "P1"), Label("BAD-é", "P2")]
    with pytest.raises(ValueError, match=r"label 2 \('P2'\): barcode 'BAD-é': character 'é' at position 5"):
        render_label_sheet(labels, fmt=fmt)  # type: ignore[arg-type]


def test_empty_barcode_names_the_label() -> None:
    with pytest.raises(ValueError, match=r"label 1 \('P1'\): the barcode value is empty"):
        render_label_sheet([Label("", "P1")])


def test_too_many_lines_are_rejected() -> None:
    with pytest.raises(ValueError, match="at most 3 extra lines"):
        render_label_sheet([Label("S1", "P1", ("a", "b", "c", "d"))])
    with pytest.raises(ValueError, match="not one string"):
        render_label_sheet([Label("S1", "P1", "Serum")])  # type: ignore[arg-type]


def test_control_characters_and_lone_surrogates_do_not_break_the_svg() -> None:
    document = render_label_sheet([Label("S1", "P\x001", ("line\nbreak", "bad \ud800 char"))], fmt="svg")
    texts = svg_labels(document)[0]["texts"]
    assert texts == ["S1", "P 1", "line break", "bad ? char"]


def test_barcode_too_long_for_the_label_is_rejected() -> None:
    with pytest.raises(ValueError, match=r"needs \d+ modules"):
        render_label_sheet([Label("X" * 40, "P1")], fmt="svg")


def test_unknown_format_is_rejected() -> None:
    with pytest.raises(ValueError, match="'png'"):
        render_label_sheet([Label("S1", "P1")], fmt="png")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"columns": 4},  # 4 × 70 mm is wider than A4
        {"rows": 9},
        {"columns": 0},
        {"label_height_mm": 10.0},  # no room for bars and text
        {"label_width_mm": -1.0},
        {"min_module_mm": 0.6},
    ],
)
def test_impossible_layouts_are_rejected(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        LabelLayout(**kwargs)  # type: ignore[arg-type]


def test_default_layout_is_a4_three_by_eight() -> None:
    assert (DEFAULT_LAYOUT.page_width_mm, DEFAULT_LAYOUT.page_height_mm) == (210.0, 297.0)
    assert DEFAULT_LAYOUT.per_page == 24
    assert math.isclose(DEFAULT_LAYOUT.bar_height_mm, 15.0)
