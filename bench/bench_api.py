"""Benchmark: API latency with a million specimens loaded, and the demo's load time.

Loads the demo consortium with the generator's bulk path (1,000,000 specimens from 100,000 donors;
100,000 with --quick) on SQLite and, when BIOBANK_BENCH_POSTGRES_URL names a server, on PostgreSQL,
then measures in-process with FastAPI's TestClient and a bearer token of the oncology manager,
~300 requests each (after a warm-up):

- GET /api/v1/specimens/{public id} and GET /api/v1/specimens/{barcode}: goal p50 ≤ 5 ms;
- GET /api/v1/specimens?collection=&sample_type=&status= (a filtered page of 50): goal p95 ≤ 50 ms.
- GET /healthz, the floor in the same run: the app stack, the session and one transaction
  (SQLite: BEGIN IMMEDIATE, SELECT 1, COMMIT), no principal and no audit entry.

Every GET also writes its audit entry and commits, so this is the real path. The default demo
(500 donors, 5,000 specimens) is loaded once too, for its load time.
Run: ``python -m bench api [--quick]``.
"""

from __future__ import annotations

import random
import statistics
import sys
import time
from typing import Any
from urllib.parse import quote, urlencode

from bench.bench_import import dialects, scratch_node
from sqlalchemy import select

N_FULL = 1_000_000
N_QUICK = 100_000
REQUESTS_FULL = 300
REQUESTS_QUICK = 100
WARM_UP = 30


def _load(node: Any, specimens: int) -> dict[str, Any]:
    from biobank.demo.generator import DemoConfig, generate

    started = time.perf_counter()
    config = DemoConfig(donors=max(1, specimens // 10), specimens=specimens)
    summary = generate(node.make_session, config, lambda _: None)
    seconds = time.perf_counter() - started
    return {"specimens": summary.specimens, "donors": summary.donors, "boxes": summary.boxes, "seconds": seconds}


def _token(node: Any) -> str:
    from biobank.config import get_settings
    from biobank.identity import repository, service
    from biobank.identity.principal import system_principal

    with node.make_session() as session, session.begin():
        user = repository.user_by_username(session, "onc-manager")
        assert user is not None
        secret, _ = service.create_token(session, system_principal(get_settings().institution_code), user, "bench")
    return secret


def _targets(node: Any, count: int, rng: random.Random) -> tuple[list[str], list[str], list[str]]:
    """Random specimens of the oncology biobank, and filtered-list URLs over its collections."""
    from biobank.institutions.models import Biobank, Collection
    from biobank.specimens.models import Specimen

    with node.make_session() as session:
        onc = session.execute(select(Biobank.id).where(Biobank.code == "ONC")).scalar_one()
        newest = select(Specimen.id).where(Specimen.biobank_id == onc).order_by(Specimen.id.desc())
        top = session.execute(newest).first()
        assert top is not None
        ids = rng.sample(range(1, top[0] + 1), min(top[0], count * 3))
        rows = session.execute(
            select(Specimen.public_id, Specimen.barcode).where(Specimen.id.in_(ids), Specimen.biobank_id == onc)
        ).all()[:count]
        collections = list(session.scalars(select(Collection.public_id).where(Collection.biobank_id == onc)))
        session.rollback()
    types = ["Serum", "Plasma", "DNA", "Tissue (Frozen)"]
    pages = [
        "/api/v1/specimens?"
        + urlencode(
            {"collection": rng.choice(collections), "sample_type": rng.choice(types), "status": "stored",
             "page": rng.randint(1, 3)}
        )
        for _ in range(count)
    ]
    return [r.public_id for r in rows], [r.barcode for r in rows], pages


def _timed(client: Any, headers: dict[str, str], urls: list[str]) -> dict[str, float]:
    for url in urls[:WARM_UP]:
        client.get(url, headers=headers)
    samples = []
    for url in urls:
        started = time.perf_counter()
        response = client.get(url, headers=headers)
        samples.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, (url, response.status_code, response.text[:200])
    samples.sort()
    return {
        "requests": len(samples),
        "p50 ms": round(statistics.median(samples), 2),
        "p95 ms": round(samples[int(0.95 * (len(samples) - 1))], 2),
        "p99 ms": round(samples[int(0.99 * (len(samples) - 1))], 2),
        "mean ms": round(statistics.fmean(samples), 2),
    }


def measure(dialect: str, n: int, requests: int) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Load n specimens, then time the three kinds of requests."""
    from fastapi.testclient import TestClient

    from biobank.app import create_app
    from biobank.config import get_settings

    rng = random.Random(5)
    with scratch_node(dialect, "api") as node:
        load = _load(node, n)
        token = _token(node)
        public_ids, barcodes, pages = _targets(node, requests, rng)
        headers = {"Authorization": f"Bearer {token}"}
        rows = []
        with TestClient(create_app(get_settings())) as client:
            for what, urls in (
                ("GET /healthz (floor: app stack + one transaction)", ["/healthz"] * len(public_ids)),
                ("GET specimen by public id", [f"/api/v1/specimens/{quote(p)}" for p in public_ids]),
                ("GET specimen by barcode", [f"/api/v1/specimens/{quote(b)}" for b in barcodes]),
                ("GET filtered page (collection + sample_type + status)", pages),
            ):
                rows.append({"database": dialect, "request": what, **_timed(client, headers, urls)})
    loaded = {
        "database": dialect,
        "demo specimens": load["specimens"],
        "donors": load["donors"],
        "boxes": load["boxes"],
        "load s": round(load["seconds"], 1),
        "specimens /s": round(load["specimens"] / load["seconds"]),
    }
    return loaded, rows


def default_demo(dialect: str) -> dict[str, Any]:
    """The load time of the default demo (500 donors, 5,000 specimens)."""
    with scratch_node(dialect, "demo") as node:
        load = _load(node, 5_000)
    return {
        "database": dialect,
        "demo specimens": load["specimens"],
        "donors": load["donors"],
        "boxes": load["boxes"],
        "load s": round(load["seconds"], 1),
        "specimens /s": round(load["specimens"] / load["seconds"]),
    }


def run(quick: bool = False) -> dict[str, Any]:
    """API latency on each configured database with 1,000,000 specimens (100,000 with quick)."""
    n = N_QUICK if quick else N_FULL
    requests = REQUESTS_QUICK if quick else REQUESTS_FULL
    loads: list[dict[str, Any]] = []
    latency: list[dict[str, Any]] = []
    for dialect in dialects():
        loads.append(default_demo(dialect))
        loaded, rows = measure(dialect, n, requests)
        loads.append(loaded)
        latency.extend(rows)
    singles = [r for r in latency if r["request"].startswith("GET specimen by")]
    pages = [r for r in latency if "filtered" in r["request"]]
    return {
        "name": "api",
        "description": f"Demo load times, then API latency (TestClient, bearer token) with {n:,} specimens.",
        "loads": loads,
        "latency": latency,
        "goal_single_p50_5ms": all(r["p50 ms"] <= 5 for r in singles),
        "goal_page_p95_50ms": all(r["p95 ms"] <= 50 for r in pages),
    }


if __name__ == "__main__":
    outcome = run(quick="--quick" in sys.argv)
    for line in outcome["loads"] + outcome["latency"]:
        print(line)
