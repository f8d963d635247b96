"""Benchmark: consent matching and eligibility.

1. Matcher decisions per second on one core (goal ≥ 200,000): a mix of realistic profiles and purposes,
   every pair distinct in the cycle, no result cache.
2. Eligibility of 1,000,000 specimens for one purpose (goal ≤ 2 s) on SQLite, and on PostgreSQL when
   BIOBANK_BENCH_POSTGRES_URL (an admin URL, e.g. postgresql+psycopg://postgres@127.0.0.1:54332/postgres)
   is set. The data (100,000 donors with consents, 1,000,000 specimens in 10 collections) is built with
   plain bulk inserts into a freshly migrated database.
3. Time from a withdrawal to its specimens leaving a count (goal: the very next request): withdraw one
   donor, commit, run the next count and check the donor's specimens are gone.

Run: .venv/bin/python bench/bench_consent.py — prints a Markdown table and writes bench/results/consent.json.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import insert, text

N_DONORS = 100_000
N_SPECIMENS = 1_000_000
N_COLLECTIONS = 10
MATCHER_DECISIONS = 600_000
BATCH = 20_000
RESULTS = Path(__file__).parent / "results" / "consent.json"
SECRETS = {
    "secret_key": "bench-secret-" + "x" * 40,
    "vault_key": "bench-vault-" + "y" * 40,
    "pseudonym_key": "bench-pseudonym-" + "z" * 40,
}

OPTIONS: list[dict[str, Any]] = [
    {"code": "broad", "kind": "permission", "label_en": "Any research", "duo_permission": "GRU"},
    {"code": "health", "kind": "permission", "label_en": "Health research", "duo_permission": "HMB"},
    {"code": "lung", "kind": "permission", "label_en": "Lung cancer only", "duo_permission": "DS", "diseases": ["C34"]},
    {
        "code": "cancer",
        "kind": "permission",
        "label_en": "Cancer only",
        "duo_permission": "DS",
        "diseases": ["C00-C97"],
        "duo_modifiers": ["NMDS"],
    },
    {"code": "ethics", "kind": "condition", "label_en": "Ethics approval", "duo_modifiers": ["IRB"]},
    {
        "code": "commercial",
        "kind": "choice",
        "label_en": "Commercial use",
        "extra_choice": "commercial",
        "applies_when": "declined",
        "duo_modifiers": ["NPUNCU"],
    },
    {"code": "genetic", "kind": "choice", "label_en": "Genetic research", "extra_choice": "genetic"},
    {"code": "abroad", "kind": "choice", "label_en": "Sharing abroad", "extra_choice": "cross_border"},
    {"code": "publish", "kind": "choice", "label_en": "Results must be published", "duo_modifiers": ["PUB"]},
]


# -- 1. the matcher ---------------------------------------------------------------------------------------------


def _matcher_inputs() -> tuple[list[Any], list[Any]]:
    from biobank.consent.matcher import ConsentProfile, Purpose

    profiles = []
    for permission, diseases in [
        ("GRU", ()),
        ("HMB", ()),
        ("DS", ("C34",)),
        ("DS", ("C00-C97",)),
        ("DS", ("C50", "C18")),
        ("POA", ()),
        ("NRES", ()),
    ]:
        for modifiers in [
            (),
            ("IRB",),
            ("IRB", "NPUNCU"),
            ("IRB", "GS", "PUB"),
            ("NMDS", "NPOA", "TS"),
            ("COL", "RTN", "MOR"),
        ]:
            profiles.append(
                ConsentProfile.of(
                    permission,
                    diseases=diseases,
                    modifiers=modifiers,
                    countries=["CN"],
                    months=12,
                    moratorium_until=date(2027, 1, 1),
                )
            )
    purposes = []
    for category, diseases in [
        ("GRU", ()),
        ("HMB", ()),
        ("DS", ("C34.1",)),
        ("DS", ("C50.9", "C18.0")),
        ("POA", ()),
        ("CC", ("I10",)),
    ]:
        for commercial, country, ethics in itertools.product((False, True), ("CN", "US"), (True, None)):
            purposes.append(
                Purpose(
                    category=category,
                    diseases=frozenset(diseases),
                    commercial=commercial,
                    non_profit=not commercial,
                    country=country,
                    ethics_approval=ethics,
                    collaboration=False,
                    methods_development=False,
                )
            )
    return profiles, purposes


def bench_matcher(n: int = MATCHER_DECISIONS) -> dict[str, Any]:
    """Decisions per second of match() on one core (one process, one thread)."""
    from biobank.consent.matcher import match

    profiles, purposes = _matcher_inputs()
    pairs = list(itertools.product(profiles, purposes))
    random.Random(7).shuffle(pairs)
    work = list(itertools.islice(itertools.cycle(pairs), n))
    on = date(2026, 6, 1)
    for consent, purpose in pairs:  # warm the ICD-10 ancestor cache, as a running node has it
        match(consent, purpose, on=on)
    start = time.perf_counter()
    for consent, purpose in work:
        match(consent, purpose, on=on)
    seconds = time.perf_counter() - start
    return {
        "decisions": n,
        "distinct_pairs": len(pairs),
        "seconds": round(seconds, 3),
        "decisions_per_second": round(n / seconds),
    }


# -- 2. eligibility over 1,000,000 specimens -------------------------------------------------------------------


def _configure(url: str, data_dir: Path) -> Any:
    from biobank.config import Environment, Settings, configure

    settings = Settings(env=Environment.TEST, data_dir=data_dir, database_url=url, log_json=False, **SECRETS)
    configure(settings)
    return settings


def _build(url: str, data_dir: Path, n_donors: int, n_specimens: int) -> dict[str, Any]:
    """A migrated database with a biobank, 10 collections, 100,000 consenting donors and 1,000,000 specimens."""
    from biobank.consent import forms
    from biobank.consent.models import ConsentOption, DonorConsent
    from biobank.consent.profiles import build_profile
    from biobank.consent.records import ensure_profile
    from biobank.consent.schemas import FormCreate, VersionCreate
    from biobank.donors.models import Donor
    from biobank.identity.principal import system_principal
    from biobank.institutions import service as institutions
    from biobank.institutions.schemas import BiobankCreate, CollectionCreate
    from biobank.kit.db import get_engine, unit_of_work
    from biobank.kit.migrate import upgrade
    from biobank.node import initialise_node
    from biobank.specimens.models import Specimen

    settings = _configure(url, data_dir)
    engine = get_engine(url)
    upgrade(engine)
    system = system_principal(settings.institution_code)
    rng = random.Random(20261121)
    started = time.perf_counter()
    with unit_of_work(engine) as session:
        initialise_node(session, settings)
        biobank = institutions.create_biobank(session, system, BiobankCreate(code="BEN", name="Bench", country="CN"))
        collections = [
            institutions.create_collection(session, system, CollectionCreate(biobank="BEN", name=f"Cohort {i}"))
            for i in range(N_COLLECTIONS)
        ]
        form = forms.create_form(session, system, FormCreate(biobank="BEN", code="MAIN", title_en="Consent"))
        version = forms.add_version(
            session,
            system,
            form,
            VersionCreate.model_validate(
                {"text_en": "Consent", "options": OPTIONS, "published_at": datetime(2020, 1, 1, tzinfo=UTC)}
            ),
        )
        options = list(
            session.query(ConsentOption).filter(ConsentOption.version_id == version.id).order_by(ConsentOption.position)
        )
        combos = []
        for permission in ("broad", "health", "lung", "cancer"):
            for answers in itertools.product((True, False), repeat=4):
                choices = {o: o == permission for o in ("broad", "health", "lung", "cancer")}
                choices |= dict(zip(("commercial", "genetic", "abroad", "publish"), answers, strict=True))
                key = ensure_profile(session, build_profile(options, choices, home_country="CN"))
                combos.append((choices, key))
        biobank_id, version_id = biobank.id, version.id
        collection_ids = [c.id for c in collections]
    now = datetime.now(UTC)
    given = now - timedelta(days=100)
    with engine.begin() as conn:
        for start in range(0, n_donors, BATCH):
            conn.execute(
                insert(Donor),
                [
                    {
                        "id": i,
                        "public_id": f"CN-SH-H01:DON-{i:07d}",
                        "biobank_id": biobank_id,
                        "pseudonym": f"{i:032x}",
                        "sex": "Female" if i % 2 else "Male",
                        "birth_year": 1940 + i % 60,
                        "created_at": now,
                        "updated_at": now,
                    }
                    for i in range(start + 1, min(start + BATCH, n_donors) + 1)
                ],
            )
        consents = []
        for i in range(1, n_donors + 1):
            roll = rng.random()
            if roll < 0.03:
                continue  # no consent recorded
            choices, key = combos[min(int(rng.paretovariate(1.2)) - 1, len(combos) - 1)]
            consents.append(
                {
                    "public_id": f"CN-SH-H01:CNS-{i:07d}",
                    "donor_id": i,
                    "biobank_id": biobank_id,
                    "form_version_id": version_id,
                    "version": 1,
                    "supersedes_id": None,
                    "choices": choices,
                    "profile_key": key,
                    "method": "electronic",
                    "attestation_sealed": None,
                    "signed_at": given,
                    "has_witness": False,
                    "scan_id": None,
                    "given_at": given,
                    "valid_from": given,
                    "valid_until": None,
                    "status": "withdrawn" if roll < 0.05 else "active",
                    "is_current": True,
                    "channel": "staff",
                    "recorded_by": "bench",
                    "recorded_at": given,
                }
            )
        for start in range(0, len(consents), BATCH):
            conn.execute(insert(DonorConsent), consents[start : start + BATCH])
        types = ["Serum", "Plasma", "DNA", "Tissue (FFPE)", "Buffy coat"]
        diagnoses = ["C34.1", "C34.9", "C50.9", "C18.0", "I10", None]
        for start in range(0, n_specimens, BATCH):
            conn.execute(
                insert(Specimen),
                [
                    {
                        "id": n,
                        "public_id": f"CN-SH-H01:SPC-{n:07d}",
                        "barcode": f"B{n:09d}",
                        "biobank_id": biobank_id,
                        "collection_id": collection_ids[n % N_COLLECTIONS],
                        "donor_id": rng.randint(1, n_donors),
                        "parent_id": None,
                        "lineage": "primary",
                        "sample_type": types[n % len(types)],
                        "detailed_type": "",
                        "diagnosis": diagnoses[n % len(diagnoses)],
                        "status": "processed",
                        "freeze_thaw_count": 0,
                        "notes": "",
                        "created_at": now,
                        "updated_at": now,
                    }
                    for n in range(start + 1, min(start + BATCH, n_specimens) + 1)
                ],
            )
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("ANALYZE"))
        if engine.dialect.name == "postgresql":  # a production node's autovacuum keeps the visibility map fresh
            conn.execute(text("VACUUM ANALYZE specimens"))
            conn.execute(text("VACUUM ANALYZE donor_consents"))
    return {
        "build_seconds": round(time.perf_counter() - started, 1),
        "profiles": len({k for _, k in combos}),
        "consents": len(consents),
        "collections": collection_ids,
    }


def _timed(fn: Any, repeat: int = 5) -> tuple[float, float, Any]:
    times = []
    result = None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return min(times), statistics.median(times), result


def bench_eligibility(
    url: str, data_dir: Path, n_donors: int = N_DONORS, n_specimens: int = N_SPECIMENS
) -> dict[str, Any]:
    """Time eligibility of 1,000,000 specimens for one purpose, then withdrawal → next count."""
    from biobank.consent import eligibility, withdrawal
    from biobank.consent.matcher import Purpose, Verdict
    from biobank.consent.schemas import EligibilityRequest, WithdrawalCreate
    from biobank.donors import service as donors
    from biobank.identity.principal import system_principal
    from biobank.kit.db import get_engine, session_factory, unit_of_work
    from biobank.specimens import service as specimens

    built = _build(url, data_dir, n_donors, n_specimens)
    settings = _configure(url, data_dir)
    engine = get_engine(url)
    system = system_principal(settings.institution_code)
    purpose = Purpose(
        category="DS",
        diseases=frozenset({"C34.1"}),
        commercial=False,
        non_profit=True,
        country="CN",
        ethics_approval=True,
        collaboration=False,
        methods_development=False,
        publication=True,
    )
    factory = session_factory(engine)

    def count_all() -> dict[Verdict, int]:
        with factory() as session:
            result, _ = eligibility.evaluate(session, purpose, specimens.consent_scope())
            session.rollback()
            return result.counts

    def service_call() -> Any:
        with factory() as session:
            request = EligibilityRequest.model_validate(
                {
                    "purpose": {
                        "category": "DS",
                        "diseases": ["C34.1"],
                        "commercial": False,
                        "non_profit": True,
                        "country": "CN",
                        "ethics_approval": True,
                        "collaboration": False,
                        "methods_development": False,
                    },
                    "limit": 100,
                }
            )
            out = eligibility.eligibility(session, system, request)
            session.rollback()
            return out

    def three_collections() -> dict[Verdict, int]:
        with factory() as session:
            scope = specimens.consent_scope(collection_ids=built["collections"][:3])
            result, _ = eligibility.evaluate(session, purpose, scope)
            session.rollback()
            return result.counts

    def per_collection() -> dict[Verdict, int]:
        with factory() as session:
            result, _ = eligibility.evaluate(session, purpose, specimens.consent_scope(), by_collection=True)
            session.rollback()
            return result.counts

    best, median, counts = _timed(count_all)
    by_collection_seconds, _, by_collection_counts = _timed(per_collection, repeat=1)
    assert by_collection_counts == counts
    _, svc_median, svc = _timed(service_call, repeat=3)
    _, sub_median, _ = _timed(three_collections)
    total = sum(counts.values())
    assert total == n_specimens, total

    # 3. withdrawal → the very next count.
    donor_id = next(i for i in range(1, n_donors) if _approved_specimens(factory, purpose, i) > 0)
    own = _approved_specimens(factory, purpose, donor_id)
    before = count_all()[Verdict.APPROVE]
    start = time.perf_counter()
    with unit_of_work(engine) as session:
        donor = donors.by_id(session, donor_id)
        assert donor is not None
        withdrawal.withdraw(session, system, donor, WithdrawalCreate(kind="no_further_use"), channel="staff")
    committed = time.perf_counter()
    after = count_all()[Verdict.APPROVE]
    counted = time.perf_counter()
    return {
        "database": engine.dialect.name,
        "specimens": total,
        "donors": n_donors,
        "consents": built["consents"],
        "distinct_profiles": built["profiles"],
        "build_seconds": built["build_seconds"],
        "eligibility_seconds_best": round(best, 3),
        "eligibility_seconds_median": round(median, 3),
        "service_with_100_listed_seconds_median": round(svc_median, 3),
        "three_collections_seconds_median": round(sub_median, 3),
        "by_collection_seconds": round(by_collection_seconds, 3),
        "counts": {v.value: n for v, n in counts.items()},
        "profiles_decided": svc.profiles,
        "withdrawal": {
            "donor_specimens_approved_before": own,
            "approve_before": before,
            "approve_after": after,
            "excluded_on_next_count": before - after == own,
            "withdraw_commit_seconds": round(committed - start, 3),
            "next_count_seconds": round(counted - committed, 3),
        },
    }


def _approved_specimens(factory: Any, purpose: Any, donor_id: int) -> int:
    from sqlalchemy import func, select

    from biobank.consent.eligibility import eligible_specimen_filter
    from biobank.specimens.models import Specimen

    with factory() as session:
        n = session.execute(
            select(func.count())
            .select_from(Specimen)
            .where(Specimen.donor_id == donor_id, eligible_specimen_filter(session, purpose))
        ).scalar_one()
        session.rollback()
        return int(n)


def _pg_database(admin_url: str) -> tuple[str, Any]:
    from biobank.kit.db import make_engine

    name = f"biobank_bench_consent_{os.getpid()}"
    engine = make_engine(admin_url)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))

    def drop() -> None:
        from biobank.kit.db import dispose_engines

        dispose_engines()
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        engine.dispose()

    return admin_url.rsplit("/", 1)[0] + "/" + name, drop


def run(quick: bool = False) -> dict[str, Any]:
    """Run every part (quick: 50,000 specimens); PostgreSQL only when BIOBANK_BENCH_POSTGRES_URL is set."""
    from biobank.kit.db import dispose_engines

    donors, specimens = (5_000, 50_000) if quick else (N_DONORS, N_SPECIMENS)
    result: dict[str, Any] = {
        "name": "consent",
        "description": f"DUO matcher throughput; eligibility of {specimens:,} specimens ({donors:,} donors) for "
        "one purpose; withdrawal → next count.",
        "matcher": bench_matcher(100_000 if quick else MATCHER_DECISIONS),
    }
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        runs.append(bench_eligibility(f"sqlite:///{tmp}/bench.sqlite3", Path(tmp) / "data", donors, specimens))
        dispose_engines()
    admin = os.environ.get("BIOBANK_BENCH_POSTGRES_URL")
    if admin:
        url, drop = _pg_database(admin)
        try:
            with tempfile.TemporaryDirectory() as tmp:
                runs.append(bench_eligibility(url, Path(tmp), donors, specimens))
        finally:
            drop()
    for one in runs:
        result[one["database"]] = one
    result["table"] = rows(result["matcher"], runs)
    return result


def rows(matcher: dict[str, Any], runs: list[dict[str, Any]]) -> list[dict[str, str]]:
    """The figures against their goals, one row each."""
    out = [
        {
            "measure": f"matcher decisions per second (one core, {matcher['distinct_pairs']:,} distinct pairs)",
            "database": "–",
            "result": f"{matcher['decisions_per_second']:,}",
            "goal": "≥ 200,000",
        }
    ]
    for e in runs:
        w = e["withdrawal"]
        db = e["database"]
        out += [
            {
                "measure": f"eligibility of {e['specimens']:,} specimens, one purpose (median of 5)",
                "database": db,
                "result": f"{e['eligibility_seconds_median']} s ({e['distinct_profiles']} profiles)",
                "goal": "≤ 2 s",
            },
            {
                "measure": "the same through the API service, 100 specimens listed with reasons",
                "database": db,
                "result": f"{e['service_with_100_listed_seconds_median']} s",
                "goal": "≤ 2 s",
            },
            {
                "measure": "counts per collection as well (by_collection; not a goal)",
                "database": db,
                "result": f"{e['by_collection_seconds']} s",
                "goal": "–",
            },
            {
                "measure": "withdrawal → excluded from the next count",
                "database": db,
                "result": f"{'yes' if w['excluded_on_next_count'] else 'NO'} "
                f"(withdraw {w['withdraw_commit_seconds']} s, next count {w['next_count_seconds']} s)",
                "goal": "the next request",
            },
        ]
    return out


def table(result: dict[str, Any]) -> str:
    """The results as a Markdown table."""
    lines = ["| measure | database | result | goal |", "|---|---|---|---|"]
    lines += [f"| {r['measure']} | {r['database']} | {r['result']} | {r['goal']} |" for r in result["table"]]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    outcome = run(quick="--quick" in sys.argv)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(outcome, indent=2) + "\n")
    print(table(outcome))
