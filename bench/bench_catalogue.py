"""Benchmark: the catalogue with 1,000,000 specimens in 100 collections.

1. Full recomputation of the collection facts (goal ≤ 30 s).
2. Faceted public search (goal p95 ≤ 100 ms): 200 searches mixing ICD-10 codes, blocks and chapters,
   materials, sexes, ages, temperatures, data available, access conditions and words.
3. Researchers' count query (goal p95 ≤ 100 ms): 200 queries of criteria and purposes, each restricted by
   consent, thresholded and audited, committed in its own session like a request.
4. Clinical import (goal ≥ 20,000 rows/s): a CSV with a mapping (ICD-10 through a code map, ICD-O-3,
   TNM, treatment, outcome, two observations with unit conversion), committed; then the same file again
   (idempotent: nothing written).
5. FHIR export (goal ≥ 5,000 resources/s): the Bundle of a collection (Organizations, Specimens, Patients,
   Conditions); validation with fhir.resources is measured separately on a sample.

The data (10 biobanks × 10 collections, 250,000 donors with consents, 1,000,000 specimens) is bulk
inserted into a freshly migrated database. SQLite always; PostgreSQL too when BIOBANK_BENCH_POSTGRES_URL
(an admin URL such as postgresql+psycopg://postgres@127.0.0.1:54333/postgres) is set.

Run: ``PYTHONPATH=src:. .venv/bin/python bench/bench_catalogue.py [--quick]`` or ``python -m bench catalogue``.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import insert, text

RESULTS = Path(__file__).parent / "results" / "catalogue.json"
GOALS = {"search_p95_ms": 100.0, "count_p95_ms": 100.0, "facts_seconds": 30.0, "import_rows_per_s": 20_000,
         "fhir_resources_per_s": 5_000}  # fmt: skip
SECRETS = {
    "secret_key": "bench-secret-" + "x" * 40,
    "vault_key": "bench-vault-" + "y" * 40,
    "pseudonym_key": "bench-pseudonym-" + "z" * 40,
}
BATCH = 20_000
START = datetime(2010, 1, 1, tzinfo=UTC)
MATERIALS = [("Serum", 25), ("Plasma", 25), ("Buffy coat", 10), ("DNA", 10), ("RNA", 5), ("Tissue (FFPE)", 10),
             ("Tissue (Frozen)", 10), ("Urine", 5)]  # fmt: skip
TEMPERATURES = {"Tissue (FFPE)": "RT", "Tissue (Frozen)": "LN2 vapour phase", "DNA": "−18 °C to −35 °C"}
FOCI = {
    "lung": ["C34.0", "C34.1", "C34.2", "C34.3", "C34.9", "C33", "D38.1", "J44.9", "J84.1"],
    "colorectal": ["C18.0", "C18.2", "C18.7", "C19", "C20", "D12.6", "K50.9", "K51.9"],
    "breast": ["C50.1", "C50.4", "C50.9", "D05.1", "N60.1", "D24"],
    "cardio": ["I10", "I21.0", "I21.4", "I25.1", "I48.0", "I50.0", "I63.9"],
    "metabolic": ["E11.9", "E10.9", "E66.0", "E78.0", "K76.0"],
    "neuro": ["G30.0", "G30.1", "G20", "G35", "F32.2", "F20.0"],
    "kidney": ["C64", "N18.5", "N04.1", "Q61.2"],
    "liver": ["C22.0", "K74.6", "B18.1", "B18.2"],
    "prostate": ["C61", "N40", "D40.0"],
    "blood": ["C91.0", "C92.0", "C90.0", "D46.9", "D61.9"],
}
OPTIONS: list[dict[str, Any]] = [
    {"code": "broad", "kind": "permission", "label_en": "Any research", "duo_permission": "GRU"},
    {"code": "health", "kind": "permission", "label_en": "Health research", "duo_permission": "HMB"},
    {"code": "cancer", "kind": "permission", "label_en": "Cancer only", "duo_permission": "DS",
     "diseases": ["C00-C97"]},
    {"code": "ethics", "kind": "condition", "label_en": "Ethics approval", "duo_modifiers": ["IRB"]},
    {"code": "commercial", "kind": "choice", "label_en": "Commercial use", "extra_choice": "commercial",
     "applies_when": "declined", "duo_modifiers": ["NPUNCU"]},
]  # fmt: skip


def _percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]


def _timings(samples: list[float]) -> dict[str, float]:
    ms = [s * 1000 for s in samples]
    return {
        "n": len(ms),
        "p50_ms": round(statistics.median(ms), 2),
        "p95_ms": round(_percentile(ms, 95), 2),
        "max_ms": round(max(ms), 2),
    }


# -- building the data -----------------------------------------------------------------------------------------


def _configure(url: str, data_dir: Path) -> Any:
    from biobank.catalogue.settings import configure_catalogue
    from biobank.config import Environment, Settings, configure

    settings = Settings(env=Environment.TEST, data_dir=data_dir, database_url=url, log_json=False, **SECRETS)
    configure(settings)
    configure_catalogue(None)
    return settings


def build(url: str, data_dir: Path, n_specimens: int, n_donors: int, n_collections: int) -> dict[str, Any]:
    """A migrated database with biobanks, collections, consenting donors and specimens (bulk inserted)."""
    from biobank.consent import forms
    from biobank.consent.models import ConsentOption, DonorConsent
    from biobank.consent.profiles import build_profile
    from biobank.consent.records import ensure_profile
    from biobank.consent.schemas import FormCreate, VersionCreate
    from biobank.donors.models import Donor
    from biobank.donors.service import pseudonyms_for
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
    n_biobanks = max(1, n_collections // 10)
    focus_names = list(FOCI)
    collections: list[dict[str, Any]] = []
    with unit_of_work(engine) as session:
        initialise_node(session, settings)
        versions = {}
        profiles: dict[int, list[str]] = {}
        for b in range(n_biobanks):
            code = f"BB{b:02d}"
            biobank = institutions.create_biobank(
                session,
                system,
                BiobankCreate(code=code, name=f"Biobank {b}", country="CN", description="Hospital biobank"),
            )
            form = forms.create_form(session, system, FormCreate(biobank=code, code="MAIN", title_en="Consent"))
            version = forms.add_version(
                session, system, form,
                VersionCreate.model_validate({"text_en": "Consent", "options": OPTIONS,
                                              "published_at": datetime(2015, 1, 1, tzinfo=UTC)}),
            )  # fmt: skip
            options = list(
                session.query(ConsentOption)
                .filter(ConsentOption.version_id == version.id)
                .order_by(ConsentOption.position)
            )
            keys = []
            for permission in ("broad", "health", "cancer"):
                for commercial in (True, False):
                    choices = {o: o == permission for o in ("broad", "health", "cancer")} | {"commercial": commercial}
                    keys.append(ensure_profile(session, build_profile(options, choices, home_country="CN")))
            versions[biobank.id] = version.id
            profiles[biobank.id] = keys
            for c in range(n_collections // n_biobanks):
                focus = focus_names[(b + c) % len(focus_names)]
                codes = FOCI[focus]
                materials = [m for m, _ in MATERIALS if rng.random() < 0.7] or ["Serum"]
                collection = institutions.create_collection(
                    session,
                    system,
                    CollectionCreate(
                        biobank=code,
                        name=f"{focus.title()} cohort {b}-{c}",
                        description=f"Specimens of patients with {focus} disease, collected at diagnosis and follow-up",
                        diseases=sorted({x.split(".")[0] for x in codes[:3]}),
                        sample_types=materials,
                        sexes=["Female", "Male"],
                        age_low=18,
                        age_high=90,
                        dataset_types=rng.sample(["Clinical", "Genomic", "Whole slide image", "Lifestyle"], 2),
                        use_access_conditions=rng.sample(
                            ["Commercial use", "Collaboration", "Specific research use", "Genetic data use"], 2
                        ),
                        storage_temperatures=["−60 °C to −85 °C"],
                    ),
                )
                collections.append({"id": collection.id, "biobank_id": biobank.id, "codes": codes,
                                    "public_id": collection.public_id})  # fmt: skip
    now = datetime.now(UTC)
    given = now - timedelta(days=100)
    patient_ids = [f"P{i:08d}" for i in range(1, n_donors + 1)]
    pseudonyms = pseudonyms_for(patient_ids)
    donor_collection: list[dict[str, Any]] = []
    with engine.begin() as conn:
        donors, consents = [], []
        for i in range(1, n_donors + 1):
            col = collections[rng.randrange(len(collections))]
            donor_collection.append(col)
            donors.append({
                "id": i, "public_id": f"CN-SH-H01:DON-{i:07d}", "biobank_id": col["biobank_id"],
                "pseudonym": pseudonyms[patient_ids[i - 1]], "sex": "Female" if rng.random() < 0.52 else "Male",
                "birth_year": rng.randint(1930, 2005), "created_at": now, "updated_at": now,
            })  # fmt: skip
            if rng.random() < 0.9:
                consents.append({
                    "public_id": f"CN-SH-H01:CNS-{i:07d}", "donor_id": i, "biobank_id": col["biobank_id"],
                    "form_version_id": versions[col["biobank_id"]], "version": 1, "choices": {},
                    "profile_key": rng.choice(profiles[col["biobank_id"]]), "method": "electronic",
                    "has_witness": False, "given_at": given, "valid_from": given, "status": "active",
                    "is_current": True, "channel": "staff", "recorded_by": "bench", "recorded_at": given,
                })  # fmt: skip
            if len(donors) >= BATCH:
                conn.execute(insert(Donor), donors)
                donors = []
                if consents:
                    conn.execute(insert(DonorConsent), consents)
                    consents = []
        if donors:
            conn.execute(insert(Donor), donors)
        if consents:
            conn.execute(insert(DonorConsent), consents)
        rows = []
        weights = [w for _, w in MATERIALS]
        names = [m for m, _ in MATERIALS]
        donor_dx = [None] * (n_donors + 1)
        for n in range(1, n_specimens + 1):
            donor = rng.randint(1, n_donors)
            col = donor_collection[donor - 1]
            if donor_dx[donor] is None:
                donor_dx[donor] = rng.choice(col["codes"])
            material = rng.choices(names, weights)[0]
            collected = datetime(2010, 1, 1, tzinfo=UTC) + timedelta(
                days=rng.randint(0, 5800), hours=rng.randint(7, 17)
            )
            rows.append({
                "public_id": f"CN-SH-H01:SPC-{n:07d}", "barcode": f"B{n:08d}", "biobank_id": col["biobank_id"],
                "collection_id": col["id"], "donor_id": donor, "lineage": "primary", "sample_type": material,
                "detailed_type": "", "diagnosis": donor_dx[donor] if rng.random() < 0.9 else None,
                "collected_at": collected, "freeze_thaw_count": 0,
                "storage_temperature": TEMPERATURES.get(material, "−60 °C to −85 °C"),
                "status": "stored" if rng.random() < 0.95 else "distributed", "notes": "",
                "created_at": now, "updated_at": now,
            })  # fmt: skip
            if len(rows) >= BATCH:
                conn.execute(insert(Specimen), rows)
                rows = []
        if rows:
            conn.execute(insert(Specimen), rows)
    if url.startswith("postgresql"):
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE"))
    else:
        with engine.begin() as conn:
            conn.exec_driver_sql("ANALYZE")
    return {
        "seconds": round(time.perf_counter() - started, 1),
        "collections": collections,
        "donor_biobanks": [c["biobank_id"] for c in donor_collection],
        "patient_ids": patient_ids,
        "donors": n_donors,
        "specimens": n_specimens,
    }


# -- the measurements ------------------------------------------------------------------------------------------


def bench_facts() -> dict[str, Any]:
    from biobank.catalogue import facts
    from biobank.kit.db import unit_of_work

    started = time.perf_counter()
    with unit_of_work() as session:
        report = facts.refresh_facts(session, None)
    seconds = time.perf_counter() - started
    return {"seconds": round(seconds, 2), "collections": report.collections, "cells": report.cells}


def _search_criteria(rng: random.Random) -> dict[str, Any]:
    values: dict[str, Any] = {}
    codes = [c for v in FOCI.values() for c in v]
    roll = rng.random()
    if roll < 0.35:
        values["diagnoses"] = [rng.choice(codes)]
    elif roll < 0.55:
        values["diagnoses"] = [rng.choice(codes).split(".")[0]]
    elif roll < 0.65:
        values["diagnoses"] = [rng.choice(["C00-C97", "II", "IX", "C30-C39", "E10-E14"])]
    if rng.random() < 0.5:
        values["materials"] = [rng.choice([m for m, _ in MATERIALS])]
    if rng.random() < 0.3:
        values["sexes"] = [rng.choice(["Female", "Male"])]
    if rng.random() < 0.3:
        low = rng.randint(18, 70)
        values["age_min"], values["age_max"] = low, low + rng.randint(5, 30)
    if rng.random() < 0.2:
        values["storage_temperatures"] = [rng.choice(["LN2 vapour phase", "−60 °C to −85 °C", "RT"])]
    if rng.random() < 0.2:
        values["data"] = [rng.choice(["clinical", "omics", "wsi"])]
    if rng.random() < 0.2:
        values["access"] = [rng.choice(["Commercial use", "Collaboration"])]
    if rng.random() < 0.2:
        values["q"] = rng.choice(["lung", "cohort", "follow-up", "cardio disease"])
    return values


def _measure(n: int, call: Callable[[int], None]) -> list[float]:
    samples = []
    for i in range(n):
        started = time.perf_counter()
        call(i)
        samples.append(time.perf_counter() - started)
    return samples


def bench_search(n: int) -> dict[str, Any]:
    from biobank.catalogue import search
    from biobank.catalogue.schemas import SearchCriteria
    from biobank.kit.db import session_factory

    rng = random.Random(5)
    criteria = [SearchCriteria.model_validate(_search_criteria(rng)) for _ in range(n)]
    factory = session_factory()
    found: list[int] = []

    def one(i: int) -> None:
        with factory() as session:
            found.append(search.search(session, criteria[i]).total)
            session.rollback()

    one(0)  # warm caches (ICD-10 tables, statement cache)
    result = _timings(_measure(n, one))
    result["mean_collections_found"] = round(statistics.mean(found), 1)
    return result


def bench_count(n: int) -> dict[str, Any]:
    from biobank.catalogue import counts
    from biobank.catalogue.schemas import CountRequest
    from biobank.identity.models import UserKind
    from biobank.identity.principal import Principal
    from biobank.kit.db import session_factory

    rng = random.Random(9)
    researcher = Principal(user_id=10**6, public_id="bench-researcher", username="researcher",
                           institution_code="CN-SH-H01", kind=UserKind.RESEARCHER, via="token")  # fmt: skip
    requests = []
    for _ in range(n):
        criteria = _search_criteria(rng)
        for key in ("data", "access", "q"):
            criteria.pop(key, None)
        if not criteria:
            criteria = {"diagnoses": [rng.choice([c for v in FOCI.values() for c in v])]}
        category = rng.choice(["GRU", "HMB", "DS"])
        purpose = {"category": category, "ethics_approval": True, "commercial": rng.random() < 0.3}
        if category == "DS":
            purpose["diseases"] = [rng.choice(["C34.1", "C50.9", "C18.7", "I21.0"])]
        requests.append(CountRequest.model_validate({"criteria": criteria, "purpose": purpose}))
    factory = session_factory()
    shown: list[str] = []

    def one(i: int) -> None:
        with factory() as session:
            shown.append(counts.count(session, researcher, requests[i]).specimens.display)
            session.commit()

    one(0)
    result = _timings(_measure(n, one))
    result["below_floor"] = sum(1 for s in shown if s.startswith("<"))
    result["zero"] = sum(1 for s in shown if s == "0")
    return result


MAPPING = {
    "format": "biobank-commons/clinical-mapping",
    "columns": [
        {"source": "patient", "target": "donor.patient_id"},
        {"source": "dx", "target": "diagnosis.icd10", "codes": "local"},
        {"source": "dx_date", "target": "diagnosis.date"},
        {"source": "site", "target": "diagnosis.topography"},
        {"source": "histology", "target": "diagnosis.morphology"},
        {"source": "t", "target": "diagnosis.tnm_t"},
        {"source": "n", "target": "diagnosis.tnm_n"},
        {"source": "m", "target": "diagnosis.tnm_m"},
        {"source": "therapy", "target": "treatment.kind"},
        {"source": "therapy_start", "target": "treatment.start"},
        {"source": "status", "target": "outcome.vital_status"},
        {"source": "last_seen", "target": "outcome.date"},
        {"source": "visit", "target": "observation.date"},
        {"source": "weight_lb", "target": "observation", "code": "29463-7", "unit": "lb", "to_unit": "kg"},
        {"source": "height_in", "target": "observation", "code": "8302-2", "unit": "in", "to_unit": "cm"},
    ],
    "codes": {"local": {"map": {"LUAD": "C34.1", "CRC": "C18.7", "BRCA": "C50.9"}, "unmapped": "keep"}},
}


def bench_import(patient_ids: list[str], biobank_of: Callable[[int], str], rows: int) -> dict[str, Any]:
    from biobank.clinical import service
    from biobank.config import get_settings
    from biobank.identity.principal import system_principal
    from biobank.kit.db import unit_of_work

    rng = random.Random(3)
    # One biobank's table, as a hospital exports it: its donors, one row each.
    code = biobank_of(0)
    eligible = [i for i in range(len(patient_ids)) if biobank_of(i) == code][:rows]
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow([c["source"] for c in MAPPING["columns"]])
    for i in eligible:
        dx = rng.choice(["LUAD", "CRC", "BRCA", "C25.0", "I21.0"])
        writer.writerow([
            patient_ids[i], dx, f"20{rng.randint(10, 24)}-0{rng.randint(1, 9)}-1{rng.randint(0, 9)}", "C34.1",
            "8140/3", "T2", "N0", "M0", rng.choice(["surgery", "chemotherapy", "radiotherapy"]), "2024-03-01",
            rng.choice(["alive", "deceased"]), "2025-06-01", "2024-02-01", rng.randint(90, 260), rng.randint(55, 78),
        ])  # fmt: skip
    data = buffer.getvalue().encode()
    mapping = json.dumps(MAPPING).encode()
    actor = system_principal(get_settings().institution_code)
    started = time.perf_counter()
    with unit_of_work() as session:
        report = service.import_table(
            session, actor, biobank=code, filename="bench.csv", data=data, mapping=mapping, dry_run=False
        )
    first = time.perf_counter() - started
    started = time.perf_counter()
    with unit_of_work() as session:
        again = service.import_table(
            session, actor, biobank=code, filename="bench.csv", data=data, mapping=mapping, dry_run=False
        )
    second = time.perf_counter() - started
    records = sum(c.create for c in report.records.values())
    bare = _bare_executemany()
    return {
        "rows": report.rows,
        "records_created": records,
        "errors": report.error_count,
        "seconds": round(first, 2),
        "rows_per_s": round(report.rows / first),
        "records_per_s": round(records / first),
        "bare_executemany_records": bare["records"],
        "bare_executemany_seconds": round(bare["seconds"], 2),
        "bare_executemany_records_per_s": round(bare["records"] / bare["seconds"]),
        "import_over_bare": round((records / first) / (bare["records"] / bare["seconds"]), 3),
        "reimport_seconds": round(second, 2),
        "reimport_rows_per_s": round(report.rows / second),
        "reimport_unchanged": sum(c.unchanged for c in again.records.values()),
    }


CLINICAL_TABLES = ("clinical_diagnoses", "clinical_treatments", "clinical_outcomes", "clinical_observations")


def _bare_executemany() -> dict[str, Any]:
    """The raw limit: the records the import wrote, inserted again by the bare driver's executemany.

    In one transaction that is rolled back: the tables are emptied (not timed), then the same rows are
    inserted with DBAPI `executemany` into the same tables and indexes (timed).
    """
    from biobank.kit.db import get_engine

    raw: Any = get_engine().raw_connection()
    try:
        cursor = raw.cursor()
        data: dict[str, tuple[list[str], list[tuple[Any, ...]]]] = {}
        for table in CLINICAL_TABLES:
            cursor.execute(f"SELECT * FROM {table}")
            names = [d[0] for d in cursor.description]
            data[table] = (names, [tuple(r) for r in cursor.fetchall()])
        raw.rollback()
        sqlite = get_engine().dialect.name == "sqlite"
        if sqlite:  # the engine runs pysqlite in autocommit mode and begins transactions itself
            cursor.execute("BEGIN IMMEDIATE")
        for table in CLINICAL_TABLES:
            cursor.execute(f"DELETE FROM {table}")
        marker = "?" if sqlite else "%s"
        started = time.perf_counter()
        for table, (names, rows) in data.items():
            placeholders = ", ".join([marker] * len(names))
            sql = f"INSERT INTO {table} ({', '.join(names)}) VALUES ({placeholders})"
            for i in range(0, len(rows), 10_000):
                cursor.executemany(sql, rows[i : i + 10_000])
        seconds = time.perf_counter() - started
        raw.rollback()
    finally:
        raw.close()
    return {"records": sum(len(rows) for _, rows in data.values()), "seconds": seconds}


def bench_fhir(collection_public_id: str, sample: int = 2000) -> dict[str, Any]:
    from biobank.config import get_settings
    from biobank.identity.principal import system_principal
    from biobank.interop import exports, fhir
    from biobank.kit.db import session_factory

    admin = system_principal(get_settings().institution_code)
    factory = session_factory()
    started = time.perf_counter()
    with factory() as session:
        resources: list[dict[str, Any]] = []
        for batch in exports.fhir_bundle_batches(session, admin, collection=collection_public_id):
            resources.extend(batch)
        body = json.dumps(fhir.bundle(resources, base_url="https://node.example/fhir"))
        session.rollback()
    seconds = time.perf_counter() - started
    subset = resources[:sample]
    started = time.perf_counter()
    for resource in subset:
        fhir.validate(resource)
    validation = time.perf_counter() - started
    kinds: dict[str, int] = {}
    for r in resources:
        kinds[r["resourceType"]] = kinds.get(r["resourceType"], 0) + 1
    return {
        "resources": len(resources),
        "by_type": kinds,
        "bytes": len(body),
        "seconds": round(seconds, 2),
        "resources_per_s": round(len(resources) / seconds),
        "validated_sample": len(subset),
        "validation_resources_per_s": round(len(subset) / validation),
    }


def run_on(
    url: str, *, specimens: int, donors: int, collections: int, queries: int, import_rows: int
) -> dict[str, Any]:
    """Build the data on one database and run every measurement."""
    with tempfile.TemporaryDirectory() as folder:
        data = build(url, Path(folder), specimens, donors, collections)
        from biobank.institutions import service as institutions
        from biobank.kit.db import session_factory

        with session_factory()() as session:
            codes = {b.id: b.code for b in institutions.list_biobanks(session)}
        donor_biobank = [codes[b] for b in data["donor_biobanks"]]
        out: dict[str, Any] = {"build_seconds": data["seconds"], "specimens": specimens, "donors": donors,
                               "collections": collections}  # fmt: skip
        out["facts"] = bench_facts()
        out["search"] = bench_search(queries)
        out["count"] = bench_count(queries)
        out["clinical_import"] = bench_import(data["patient_ids"], lambda i: donor_biobank[i], import_rows)
        biggest = data["collections"][0]["public_id"]
        out["fhir_export"] = bench_fhir(biggest)
        from biobank.kit.db import dispose_engines

        dispose_engines()
        return out


def _postgres_database(admin_url: str) -> tuple[str, Callable[[], None]]:
    from biobank.kit.db import make_engine

    name = f"biobank_bench_catalogue_{os.getpid()}"
    admin = make_engine(admin_url)
    with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    base, _, _ = admin_url.rpartition("/")

    def drop() -> None:
        with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    return f"{base}/{name}", drop


def _verdicts(result: dict[str, Any]) -> dict[str, bool]:
    return {
        "facts": result["facts"]["seconds"] <= GOALS["facts_seconds"],
        "search": result["search"]["p95_ms"] <= GOALS["search_p95_ms"],
        "count": result["count"]["p95_ms"] <= GOALS["count_p95_ms"],
        "clinical_import": result["clinical_import"]["rows_per_s"] >= GOALS["import_rows_per_s"],
        "fhir_export": result["fhir_export"]["resources_per_s"] >= GOALS["fhir_resources_per_s"],
    }


def run(
    specimens: int = 1_000_000,
    donors: int = 250_000,
    collections: int = 100,
    queries: int = 200,
    import_rows: int = 25_000,
    quick: bool = False,
) -> dict[str, Any]:
    """Run on SQLite (and PostgreSQL when configured); write bench/results/catalogue.json; print a table."""
    if quick:
        specimens, donors, queries, import_rows = 100_000, 25_000, 50, 2_000
    sizes = {"specimens": specimens, "donors": donors, "collections": collections, "queries": queries,
             "import_rows": import_rows}  # fmt: skip
    results: dict[str, Any] = {"goals": GOALS, "sizes": sizes, "databases": {}}
    with tempfile.TemporaryDirectory() as folder:
        sqlite_result = run_on(f"sqlite:///{folder}/bench.sqlite3", **sizes)
    sqlite_result["meets_goals"] = _verdicts(sqlite_result)
    results["databases"]["sqlite"] = sqlite_result
    pg_admin = os.environ.get("BIOBANK_BENCH_POSTGRES_URL")
    if pg_admin:
        url, drop = _postgres_database(pg_admin)
        try:
            pg_result = run_on(url, **sizes)
        finally:
            from biobank.kit.db import dispose_engines

            dispose_engines()
            drop()
        pg_result["meets_goals"] = _verdicts(pg_result)
        results["databases"]["postgresql"] = pg_result
    results["machine"] = {"python": sys.version.split()[0], "cpus": os.cpu_count()}
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    print(table(results))
    return results


def table(results: dict[str, Any]) -> str:
    """A Markdown table of the results."""
    lines = [
        "| database | facts (s) | search p50/p95 (ms) | count p50/p95 (ms) | import rows/s | import records/s | "
        "bare executemany records/s | re-import rows/s | FHIR resources/s (validated) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, r in results["databases"].items():
        lines.append(
            f"| {name} | {r['facts']['seconds']} | {r['search']['p50_ms']} / {r['search']['p95_ms']} | "
            f"{r['count']['p50_ms']} / {r['count']['p95_ms']} | {r['clinical_import']['rows_per_s']:,} | "
            f"{r['clinical_import']['records_per_s']:,} | {r['clinical_import']['bare_executemany_records_per_s']:,} | "
            f"{r['clinical_import']['reimport_rows_per_s']:,} | {r['fhir_export']['resources_per_s']:,} "
            f"({r['fhir_export']['validation_resources_per_s']:,}) |"
        )
    goals = results["goals"]
    lines.append(
        f"\nGoals: facts ≤ {goals['facts_seconds']} s, search and count p95 ≤ {goals['search_p95_ms']} ms, "
        f"import ≥ {goals['import_rows_per_s']:,} rows/s, FHIR ≥ {goals['fhir_resources_per_s']:,} resources/s. "
        f"Sizes: {results['sizes']}."
    )
    return "\n".join(lines)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--specimens", type=int, default=1_000_000)
    args = parser.parse_args()
    run(quick=args.quick) if args.quick else run(specimens=args.specimens)
