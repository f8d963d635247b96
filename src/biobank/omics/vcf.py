"""VCF header checks: the meta-information lines and the #CHROM line of VCF 4.x (plain or gzip/BGZF).

Only the header is read (decompression stops at the first data line), so a header extracted with
`bcftools view -h` and a full multi-gigabyte file are checked the same way. Each problem names its
line (1-based) and, on the #CHROM line, the column.
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass, field

from biobank.kit.errors import FieldError, Invalid

FIXED = ("#CHROM", "POS", "ID", "REF", "ALT", "QUAL", "FILTER", "INFO")
FILEFORMAT = re.compile(r"^##fileformat=VCFv4\.[0-5]$")
META = re.compile(r"^##([A-Za-z0-9_.\-]+)=(.*)$")
STRUCTURED = ("INFO", "FORMAT", "FILTER", "contig", "ALT", "SAMPLE", "PEDIGREE", "META")
MAX_HEADER_BYTES = 64 * 1024 * 1024


@dataclass
class VcfHeader:
    fileformat: str
    samples: list[str]
    contigs: int = 0
    info: list[str] = field(default_factory=list)
    formats: list[str] = field(default_factory=list)
    reference: str = ""
    header_line: int = 0  # line number of #CHROM


def _header_text(content: bytes) -> str:
    if content[:2] == b"\x1f\x8b":
        decompressor = zlib.decompressobj(16 + zlib.MAX_WBITS)
        out = bytearray()
        data = content
        while data and len(out) < MAX_HEADER_BYTES:
            out += decompressor.decompress(data, 1 << 20)
            if b"\n#CHROM" in out or out.startswith(b"#CHROM"):
                end = out.find(b"\n", out.find(b"#CHROM"))
                if end != -1:
                    return out[:end].decode("utf-8", errors="replace")
            data = decompressor.unconsumed_tail
            if not data and decompressor.unused_data:  # BGZF: the next gzip member
                data = decompressor.unused_data
                decompressor = zlib.decompressobj(16 + zlib.MAX_WBITS)
        return out.decode("utf-8", errors="replace")
    head = content[:MAX_HEADER_BYTES]
    position = head.find(b"#CHROM")
    if position != -1:
        end = head.find(b"\n", position)
        head = head[: end if end != -1 else len(head)]
    return head.decode("utf-8", errors="replace")


def _loc(line: int, column: int | None = None) -> list[str | int]:
    return ["vcf", "line", line] if column is None else ["vcf", "line", line, "column", column]


def parse_header(content: bytes) -> VcfHeader:
    """Check a VCF header; Invalid lists every problem by line (and column on the #CHROM line)."""
    try:
        text = _header_text(content)
    except zlib.error as exc:
        raise Invalid([FieldError(["vcf"], f"the gzip stream is broken: {exc}")], name="InvalidVcf") from None
    lines = text.replace("\r\n", "\n").split("\n")
    errors: list[FieldError] = []
    if not lines or not FILEFORMAT.match(lines[0].strip()):
        errors.append(
            FieldError(_loc(1), "the first line must be ##fileformat=VCFv4.x", value=lines[0][:80] if lines else "")
        )
    header = VcfHeader(fileformat=lines[0].strip().partition("=")[2] if lines else "", samples=[])
    chrom_line = None
    for number, line in enumerate(lines, start=1):
        if not line:
            continue
        if line.startswith("##"):
            match = META.match(line)
            if not match:
                errors.append(FieldError(_loc(number), "a meta line is ##key=value", value=line[:80]))
                continue
            key, value = match.groups()
            if key in STRUCTURED and value.startswith("<"):
                if not value.endswith(">"):
                    errors.append(FieldError(_loc(number), f"##{key}=<...> is not closed with >", value=line[:80]))
                    continue
                fields = value[1:-1]
                ident = re.search(r"(?:^|,)ID=([^,>]+)", fields)
                if not ident:
                    errors.append(FieldError(_loc(number), f"##{key} needs an ID", value=line[:80]))
                    continue
                if key == "contig":
                    header.contigs += 1
                elif key == "INFO":
                    header.info.append(ident.group(1))
                elif key == "FORMAT":
                    header.formats.append(ident.group(1))
            elif key == "reference":
                header.reference = value
            continue
        if line.startswith("#CHROM"):
            chrom_line = number
            columns = line.split("\t")
            for i, expected in enumerate(FIXED):
                if i >= len(columns) or columns[i] != expected:
                    got = columns[i] if i < len(columns) else "(missing)"
                    errors.append(
                        FieldError(_loc(number, i + 1), f"expected {expected} (tab-separated)", value=got[:80])
                    )
                    break
            else:
                if len(columns) > len(FIXED):
                    if columns[8] != "FORMAT":
                        errors.append(
                            FieldError(_loc(number, 9), "sample columns follow a FORMAT column", value=columns[8][:80])
                        )
                    samples = columns[9:]
                    seen: dict[str, int] = {}
                    for j, name in enumerate(samples, start=10):
                        if not name.strip():
                            errors.append(FieldError(_loc(number, j), "empty sample name"))
                        elif name in seen:
                            errors.append(
                                FieldError(_loc(number, j), f"sample name repeats column {seen[name]}", value=name)
                            )
                        seen.setdefault(name, j)
                    header.samples = samples
            break
        errors.append(FieldError(_loc(number), "a data line before the #CHROM header line", value=line[:80]))
        break
    if chrom_line is None and not errors:
        errors.append(FieldError(["vcf"], "no #CHROM header line"))
    header.header_line = chrom_line or 0
    if errors:
        raise Invalid(errors, name="InvalidVcf")
    return header
