"""Unit conversion for observations: UCUM codes (and the spellings people type) within one dimension.

A value converts only between units of the same dimension (mass, length, volume, temperature, mass
concentration, time, ...); anything else is an error naming the two units, never a silent guess.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Unit:
    code: str  # UCUM
    dimension: str
    factor: float  # to the dimension's base unit
    offset: float = 0.0  # for temperatures: base = value * factor + offset


_UNITS = [
    Unit("kg", "mass", 1.0),
    Unit("g", "mass", 1e-3),
    Unit("mg", "mass", 1e-6),
    Unit("ug", "mass", 1e-9),
    Unit("[lb_av]", "mass", 0.45359237),
    Unit("[oz_av]", "mass", 0.028349523125),
    Unit("m", "length", 1.0),
    Unit("cm", "length", 1e-2),
    Unit("mm", "length", 1e-3),
    Unit("[in_i]", "length", 0.0254),
    Unit("[ft_i]", "length", 0.3048),
    Unit("L", "volume", 1.0),
    Unit("dL", "volume", 0.1),
    Unit("mL", "volume", 1e-3),
    Unit("uL", "volume", 1e-6),
    Unit("Cel", "temperature", 1.0),
    Unit("K", "temperature", 1.0, -273.15),
    Unit("[degF]", "temperature", 5 / 9, -32 * 5 / 9),
    Unit("g/L", "mass concentration", 1.0),
    Unit("g/dL", "mass concentration", 10.0),
    Unit("mg/dL", "mass concentration", 1e-2),
    Unit("mg/L", "mass concentration", 1e-3),
    Unit("ug/L", "mass concentration", 1e-6),
    Unit("ng/mL", "mass concentration", 1e-6),
    Unit("mmol/L", "substance concentration", 1.0),
    Unit("umol/L", "substance concentration", 1e-3),
    Unit("mol/L", "substance concentration", 1e3),
    Unit("a", "time", 365.25),
    Unit("mo", "time", 30.4375),
    Unit("wk", "time", 7.0),
    Unit("d", "time", 1.0),
    Unit("h", "time", 1 / 24),
    Unit("kg/m2", "body mass index", 1.0),
    Unit("mm[Hg]", "pressure", 1.0),
    Unit("kPa", "pressure", 7.50061683),
    Unit("/min", "rate", 1.0),
    Unit("%", "fraction", 1.0),
    Unit("1", "fraction", 100.0),
    Unit("10*9/L", "cell count", 1.0),
    Unit("/nL", "cell count", 1.0),
    Unit("10*3/uL", "cell count", 1.0),
    Unit("U/L", "catalytic concentration", 1.0),
]
UNITS: dict[str, Unit] = {u.code: u for u in _UNITS}

ALIASES = {
    "lb": "[lb_av]",
    "lbs": "[lb_av]",
    "pound": "[lb_av]",
    "pounds": "[lb_av]",
    "oz": "[oz_av]",
    "in": "[in_i]",
    "inch": "[in_i]",
    "inches": "[in_i]",
    "ft": "[ft_i]",
    "feet": "[ft_i]",
    "l": "L",
    "dl": "dL",
    "ml": "mL",
    "µl": "uL",
    "ul": "uL",
    "µg": "ug",
    "mcg": "ug",
    "°c": "Cel",
    "c": "Cel",
    "celsius": "Cel",
    "degc": "Cel",
    "°f": "[degF]",
    "f": "[degF]",
    "fahrenheit": "[degF]",
    "degf": "[degF]",
    "kelvin": "K",
    "k": "K",
    "g/l": "g/L",
    "g/dl": "g/dL",
    "mg/dl": "mg/dL",
    "mg/l": "mg/L",
    "µg/l": "ug/L",
    "ng/ml": "ng/mL",
    "mmol/l": "mmol/L",
    "µmol/l": "umol/L",
    "umol/l": "umol/L",
    "years": "a",
    "year": "a",
    "yr": "a",
    "months": "mo",
    "weeks": "wk",
    "days": "d",
    "day": "d",
    "hours": "h",
    "kg/m²": "kg/m2",
    "mmhg": "mm[Hg]",
    "kpa": "kPa",
    "bpm": "/min",
    "percent": "%",
    "x10^9/l": "10*9/L",
    "10^9/l": "10*9/L",
    "u/l": "U/L",
    "iu/l": "U/L",
}


class UnitError(ValueError):
    """A unit that is unknown, or two units that cannot be converted into each other."""


def canonical(text: str) -> str:
    """The UCUM code of a typed unit ("lb" → "[lb_av]"), or UnitError."""
    cleaned = text.strip()
    if cleaned in UNITS:
        return cleaned
    alias = ALIASES.get(cleaned.casefold())
    if alias is not None:
        return alias
    for code in UNITS:
        if code.casefold() == cleaned.casefold():
            return code
    raise UnitError(f"unknown unit {text!r}")


def converter(source: str, target: str) -> Callable[[float], float]:
    """A function converting values from `source` to `target` (UCUM or typed spellings), or UnitError."""
    a, b = UNITS[canonical(source)], UNITS[canonical(target)]
    if a.dimension != b.dimension:
        raise UnitError(f"cannot convert {a.code} ({a.dimension}) to {b.code} ({b.dimension})")
    if a.code == b.code:
        return lambda value: value
    scale = a.factor / b.factor
    shift = (a.offset - b.offset) / b.factor
    return lambda value: value * scale + shift


def convert(value: float, source: str, target: str) -> float:
    """Convert one value."""
    return converter(source, target)(value)
