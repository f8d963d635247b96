"""Disclosure control of published counts: a floor for small counts and a pluggable rounding function.

Every number that leaves the catalogue (public search, collection pages, the researchers' count query,
the Beacon, Directory exports) goes through `disclose()`. Defaults (STANDARDS.md, Sample Locator):
counts 1–9 are reported as "< 10", larger counts are rounded to the nearest 10; zero stays zero.

The rounding function is looked up by name, so the federation can register a noisy one (Laplace noise
cached per query) without touching callers: `register_rounding("laplace", fn)` then set
BIOBANK_CATALOGUE_COUNT_ROUNDING=laplace.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from biobank.catalogue.settings import get_catalogue_settings

RoundingFunction = Callable[[int, int], int]


def round_nearest(n: int, step: int) -> int:
    """To the nearest multiple of step, halves up (15 → 20, 14 → 10)."""
    return (n + step // 2) // step * step


def round_up(n: int, step: int) -> int:
    """Up to the next multiple of step (11 → 20)."""
    return -(-n // step) * step


def round_down(n: int, step: int) -> int:
    """Down to a multiple of step (19 → 10)."""
    return (n // step) * step


_ROUNDINGS: dict[str, RoundingFunction] = {"nearest": round_nearest, "up": round_up, "down": round_down}


def register_rounding(name: str, function: RoundingFunction) -> None:
    """Make a rounding function available by name (e.g. a noisy one from the federation package)."""
    _ROUNDINGS[name] = function


def rounding_names() -> list[str]:
    """The registered rounding functions."""
    return sorted(_ROUNDINGS)


@dataclass(frozen=True)
class Policy:
    """The thresholds in force: what is published and how."""

    min_donors_per_cell: int
    floor: int
    step: int
    rounding: str

    def describe(self) -> dict[str, object]:
        """JSON-ready, for responses that must say how their numbers were made."""
        return {
            "min_donors_per_cell": self.min_donors_per_cell,
            "below_floor_reported_as": f"< {self.floor}",
            "floor": self.floor,
            "rounded_to": self.step,
            "rounding": self.rounding,
        }


def policy() -> Policy:
    """The current policy from the catalogue settings."""
    settings = get_catalogue_settings()
    if settings.count_rounding not in _ROUNDINGS:
        raise ValueError(f"unknown rounding {settings.count_rounding!r}; registered: {', '.join(rounding_names())}")
    return Policy(
        min_donors_per_cell=settings.min_donors_per_cell,
        floor=settings.count_floor,
        step=settings.count_step,
        rounding=settings.count_rounding,
    )


@dataclass(frozen=True)
class Disclosed:
    """A count as it may be published: `value` is None when it is below the floor."""

    value: int | None
    display: str
    suppressed: bool
    # The integer a protocol that needs one reports (Beacon): the floor for suppressed counts.
    reported: int
    min_range: int
    max_range: int

    def as_dict(self) -> dict[str, object]:
        """JSON-ready."""
        return {"value": self.value, "display": self.display, "suppressed": self.suppressed}


def disclose(n: int, current: Policy | None = None) -> Disclosed:
    """Floor and round one count by the policy."""
    current = current or policy()
    if n <= 0:
        return Disclosed(0, "0", False, 0, 0, 0)
    if n < current.floor:
        return Disclosed(None, f"< {current.floor}", True, current.floor, 1, current.floor - 1)
    rounded = max(_ROUNDINGS[current.rounding](n, current.step), current.floor)
    low, high = _range(rounded, current)
    return Disclosed(rounded, str(rounded), False, rounded, low, high)


def _range(rounded: int, current: Policy) -> tuple[int, int]:
    """The true counts a rounded one may stand for (exact bounds for the built-in roundings)."""
    step = current.step
    if current.rounding == "nearest":
        low, high = rounded - step // 2, rounded + (step - 1) // 2
    elif current.rounding == "up":
        low, high = rounded - step + 1, rounded
    elif current.rounding == "down":
        low, high = rounded, rounded + step - 1
    else:
        low, high = rounded, rounded
    return max(low, current.floor), high


def cell_published(donors: int, current: Policy | None = None) -> bool:
    """Whether a facts cell with this many donors may be shown."""
    current = current or policy()
    return donors >= current.min_donors_per_cell
