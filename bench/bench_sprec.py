"""Benchmark: SPREC v3 parsing throughput, as a bulk import sees it.

Parses 100,000 codes drawn from a realistic mix (mostly repeated codes, as in a real import, plus a
share of distinct ones that miss the cache) and reports codes per second with a cold cache, a warm
cache and no cache at all.
"""

from __future__ import annotations

import random
import time
from typing import Any

from biobank.specimens import sprec

N_CODES = 100_000


def _codes(n: int, seed: int = 20240301) -> list[str]:
    rng = random.Random(seed)
    fluid_types = list(sprec.SPREC_FLUID_TYPES)
    containers = list(sprec.PRIMARY_CONTAINERS)
    pre = list(sprec.PRE_CENTRIFUGATION_DELAYS)
    spins = list(sprec.CENTRIFUGATIONS)
    second = list(sprec.SECOND_CENTRIFUGATIONS)
    post = list(sprec.POST_CENTRIFUGATION_DELAYS)
    storage = list(sprec.LONG_TERM_STORAGE)
    solid_types = [t for t in sprec.SPREC_SOLID_TYPES if t not in sprec.SPREC_FLUID_TYPES]
    collections = list(sprec.COLLECTION_TYPES)
    ischemia = list(sprec.WARM_ISCHEMIA_TIMES)
    fixations = list(sprec.FIXATION_TYPES)
    fixation_times = list(sprec.FIXATION_TIMES)
    common = ["SER-SST-A-B-N-B-A", "PL1-PED-B-D-N-A-D", "PL2-PED-A-B-J-B-S", "TIS-SRG-B-D-NBF-E-P"]
    codes: list[str] = []
    for _ in range(n):
        roll = rng.random()
        if roll < 0.7:
            codes.append(rng.choice(common))
        elif roll < 0.9:
            parts = [rng.choice(t) for t in (fluid_types, containers, pre, spins, second, post, storage)]
            codes.append("-".join(parts))
        else:
            parts = [
                rng.choice(t)
                for t in (solid_types, collections, ischemia, ischemia, fixations, fixation_times, storage)
            ]
            codes.append("-".join(parts))
    return codes


def _time_parse(codes: list[str], parse: Any = sprec.parse) -> float:
    start = time.perf_counter()
    for code in codes:
        parse(code)
    return time.perf_counter() - start


def run() -> dict[str, Any]:
    """Time parse() over 100,000 codes; returns codes per second (cold, warm and no cache)."""
    codes = _codes(N_CODES)
    sprec._parse_cached.cache_clear()
    cold = _time_parse(codes)
    warm = _time_parse(codes)
    # Every call misses the cache: the worst case, all codes distinct.
    uncached = _time_parse(codes, sprec._parse_cached.__wrapped__)
    distinct = len(set(codes))
    return {
        "name": "sprec_parse",
        "codes": len(codes),
        "distinct_codes": distinct,
        "cold_seconds": round(cold, 4),
        "warm_seconds": round(warm, 4),
        "cold_codes_per_second": round(len(codes) / cold),
        "warm_codes_per_second": round(len(codes) / warm),
        "uncached_codes_per_second": round(len(codes) / uncached),
    }


if __name__ == "__main__":
    result = run()
    print(
        f"SPREC parse: {result['codes']:,} codes ({result['distinct_codes']:,} distinct): "
        f"{result['cold_codes_per_second']:,} codes/s cold cache, "
        f"{result['warm_codes_per_second']:,} codes/s warm cache, "
        f"{result['uncached_codes_per_second']:,} codes/s with no cache"
    )
