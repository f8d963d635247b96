"""GA4GH Data Use Ontology (DUO) codes, exactly as STANDARDS.md lists them.

Codes are addressed by their shorthand (GRU, NPU, ...) in the API and by their DUO id in reasons and
exports. The NPOA IRI is misspelled in some DUO releases, so nothing here matches by IRI: always by id.
"""

from __future__ import annotations

from enum import StrEnum


class Permission(StrEnum):
    """Data use permissions: exactly one per consent."""

    NRES = "NRES"
    GRU = "GRU"
    HMB = "HMB"
    DS = "DS"
    POA = "POA"


class Modifier(StrEnum):
    """Data use modifiers: restrictions and obligations added to a permission."""

    NMDS = "NMDS"
    GSO = "GSO"
    NPUNCU = "NPUNCU"
    NPU = "NPU"
    NCU = "NCU"
    PUB = "PUB"
    COL = "COL"
    IRB = "IRB"
    GS = "GS"
    MOR = "MOR"
    TS = "TS"
    US = "US"
    PS = "PS"
    IS = "IS"
    RTN = "RTN"
    RS = "RS"
    CC = "CC"
    NPOA = "NPOA"


class PurposeCategory(StrEnum):
    """What a research purpose is, stated at its most specific level."""

    GRU = "GRU"
    HMB = "HMB"
    DS = "DS"
    POA = "POA"
    CC = "CC"


DUO_IDS: dict[str, str] = {
    "NRES": "DUO:0000004",
    "GRU": "DUO:0000042",
    "HMB": "DUO:0000006",
    "DS": "DUO:0000007",
    "POA": "DUO:0000011",
    "NMDS": "DUO:0000015",
    "GSO": "DUO:0000016",
    "NPUNCU": "DUO:0000018",
    "NPU": "DUO:0000045",
    "NCU": "DUO:0000046",
    "PUB": "DUO:0000019",
    "COL": "DUO:0000020",
    "IRB": "DUO:0000021",
    "GS": "DUO:0000022",
    "MOR": "DUO:0000024",
    "TS": "DUO:0000025",
    "US": "DUO:0000026",
    "PS": "DUO:0000027",
    "IS": "DUO:0000028",
    "RTN": "DUO:0000029",
    "RS": "DUO:0000012",
    "CC": "DUO:0000043",
    "NPOA": "DUO:0000044",
}

LABELS: dict[str, str] = {
    "NRES": "no restriction",
    "GRU": "general research use",
    "HMB": "health or medical or biomedical research",
    "DS": "disease specific research",
    "POA": "population origins or ancestry research only",
    "NMDS": "no general methods research",
    "GSO": "genetic studies only",
    "NPUNCU": "not-for-profit, non-commercial use only",
    "NPU": "not-for-profit organisation use only",
    "NCU": "non-commercial use only",
    "PUB": "publication required",
    "COL": "collaboration required",
    "IRB": "ethics approval required",
    "GS": "geographical restriction",
    "MOR": "publication moratorium",
    "TS": "time limit on use",
    "US": "user specific restriction",
    "PS": "project specific restriction",
    "IS": "institution specific restriction",
    "RTN": "return to database or resource",
    "RS": "research specific restrictions",
    "CC": "clinical care use",
    "NPOA": "no population or ancestry research",
}

# Plain-language sentences for donors (English, Chinese), shown in the portal.
PLAIN: dict[str, tuple[str, str]] = {
    "NRES": ("Your samples and data may be used without restriction.", "您的样本和数据可不受限制地使用。"),
    "GRU": ("Your samples and data may be used for any kind of research.", "您的样本和数据可用于任何类型的研究。"),
    "HMB": (
        "Your samples and data may be used for health, medical and biomedical research.",
        "您的样本和数据可用于健康、医学和生物医学研究。",
    ),
    "DS": (
        "Your samples and data may be used only for research on these diseases: {diseases}.",
        "您的样本和数据仅可用于以下疾病的研究：{diseases}。",
    ),
    "POA": (
        "Your samples and data may be used only to study population origins or ancestry.",
        "您的样本和数据仅可用于人群起源或祖源研究。",
    ),
    "NMDS": (
        "They may not be used to develop general research methods unrelated to the diseases above.",
        "不得用于与上述疾病无关的通用研究方法开发。",
    ),
    "GSO": ("They may be used only for genetic studies.", "仅可用于遗传学研究。"),
    "NPUNCU": (
        "Only non-profit organisations may use them, and never for commercial purposes.",
        "仅限非营利机构使用，且不得用于商业目的。",
    ),
    "NPU": ("Only non-profit organisations may use them.", "仅限非营利机构使用。"),
    "NCU": ("They may not be used for commercial purposes.", "不得用于商业目的。"),
    "PUB": ("Researchers must publish their results.", "研究人员必须公开发表研究结果。"),
    "COL": ("Researchers must work together with this biobank.", "研究人员必须与本生物样本库合作。"),
    "IRB": ("Every study must be approved by an ethics committee.", "每项研究都必须经过伦理委员会批准。"),
    "GS": ("They may be used only in these countries: {countries}.", "仅可在以下国家/地区使用：{countries}。"),
    "MOR": ("Results may not be published before {moratorium}.", "{moratorium}之前不得发表研究结果。"),
    "TS": ("Each use is limited to {months} months.", "每次使用期限不超过{months}个月。"),
    "US": ("Only approved researchers may use them.", "仅限获批准的研究人员使用。"),
    "PS": ("They may be used only in approved projects.", "仅可用于获批准的项目。"),
    "IS": ("Only approved institutions may use them.", "仅限获批准的机构使用。"),
    "RTN": ("Researchers must return the data they derive.", "研究人员必须返还所产生的数据。"),
    "RS": ("Further research restrictions apply.", "另有其他研究限制。"),
    "CC": ("They may also be used for clinical care.", "也可用于临床诊疗。"),
    "NPOA": ("They may not be used to study population origins or ancestry.", "不得用于人群起源或祖源研究。"),
}

OBO = "http://purl.obolibrary.org/obo/"
DUO_SYSTEM = "http://purl.obolibrary.org/obo/duo.owl"


def duo_id(code: str) -> str:
    """The DUO id of a shorthand (GRU → DUO:0000042)."""
    return DUO_IDS[code]


def duo_iri(code: str) -> str:
    """The OBO IRI of a shorthand (GRU → http://purl.obolibrary.org/obo/DUO_0000042)."""
    return OBO + DUO_IDS[code].replace(":", "_")


def is_permission(code: str) -> bool:
    """Whether the shorthand is a DUO permission."""
    return code in Permission.__members__


def is_modifier(code: str) -> bool:
    """Whether the shorthand is a DUO modifier."""
    return code in Modifier.__members__
