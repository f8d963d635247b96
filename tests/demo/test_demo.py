"""The demo: counts, determinism, storage consistency (unique slots, occupancy counters), logins."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from biobank.config import Environment, Settings, configure
from biobank.demo.generator import DEMO_USERS, DemoConfig, batches, generate, has_data
from biobank.donors.models import Donor, DonorDiagnosis
from biobank.institutions.models import Biobank, Collection, Institution
from biobank.kit.db import session_factory
from biobank.specimens.models import QCResult, Specimen
from biobank.storage.models import StorageUnit, UnitKind

SMALL = DemoConfig(donors=30, specimens=200, seed=7)


@pytest.fixture
def demo(db: Session, engine: Engine) -> Any:
    """A small demo loaded into the test node."""
    messages: list[str] = []
    summary = generate(session_factory(engine), SMALL, messages.append)
    db.rollback()
    return summary, messages


def test_counts(db: Session, demo: Any) -> None:
    summary, messages = demo
    assert summary.specimens == 200 and summary.donors == 30
    assert db.execute(select(func.count()).select_from(Specimen)).scalar_one() == 200
    assert db.execute(select(func.count()).select_from(Donor)).scalar_one() == 30
    assert db.execute(select(func.count()).select_from(Institution)).scalar_one() == 3
    assert set(db.scalars(select(Biobank.code))) == {"ONC", "GEN"}
    assert set(db.scalars(select(Collection.acronym))) == {"LUNG", "CRC", "BRCA", "GC", "HCC", "CTRL"}
    types = set(db.scalars(select(Specimen.sample_type)))
    assert {"Serum", "Plasma", "Buffy coat", "DNA", "Tissue (Frozen)", "Tissue (FFPE)"} <= types
    assert db.execute(select(func.count()).where(Specimen.parent_id.is_not(None))).scalar_one() > 25
    assert db.execute(select(func.count()).where(Specimen.sprec_code.like("SER-SST-%"))).scalar_one() > 0
    qc = db.scalars(select(QCResult.passed)).all()
    assert qc and 0.75 < sum(qc) / len(qc) < 1.0
    assert db.execute(select(func.count()).select_from(DonorDiagnosis)).scalar_one() >= 25
    assert summary.qc_results == len(qc) and "imported 200 of 200 specimens" in messages


@pytest.fixture
def demo_storage(db: Session, engine: Engine) -> Any:
    """The small demo without access requests: storage exactly as the generator filled it (no specimen
    reserved or shipped out of its box)."""
    summary = generate(session_factory(engine), replace(SMALL, access=False), lambda _: None)
    db.rollback()
    return summary


def test_times_follow_the_handling_order(db: Session, demo: Any) -> None:
    rows = db.execute(select(Specimen.collected_at, Specimen.processed_at, Specimen.frozen_at)).all()
    for collected, processed, frozen in rows:
        if collected and processed and frozen and processed < frozen:
            assert 0.5 * 3600 <= (processed - collected).total_seconds() <= 6 * 3600


def test_same_seed_same_barcodes() -> None:
    collections = {c: f"X:{c}" for c in ("LUNG", "CRC", "BRCA", "GC", "HCC", "CTRL")}

    def barcodes(config: DemoConfig) -> list[str]:
        return [r["barcode"] for _, batch in batches(config, collections) for r in batch]

    first = barcodes(SMALL)
    assert len(first) == 200 and len(set(first)) == 200
    assert first == barcodes(SMALL)
    assert first != barcodes(DemoConfig(donors=30, specimens=200, seed=8))


def test_database_holds_the_generated_barcodes(db: Session, demo: Any) -> None:
    collections = {c.acronym: c.public_id for c in db.scalars(select(Collection))}
    expected = {r["barcode"] for _, batch in batches(SMALL, collections) for r in batch}
    assert set(db.scalars(select(Specimen.barcode))) == expected


def test_every_placed_specimen_has_its_own_slot_and_counters_match(db: Session, demo_storage: Any) -> None:
    placed = db.execute(select(Specimen.box_id, Specimen.row, Specimen.col).where(Specimen.box_id.is_not(None))).all()
    assert placed and len(placed) == len(set(placed))
    assert all(1 <= row <= 9 and 1 <= col <= 9 for _, row, col in placed)
    actual = dict(
        db.execute(
            select(Specimen.box_id, func.count()).where(Specimen.box_id.is_not(None)).group_by(Specimen.box_id)
        ).all()
    )
    boxes = db.scalars(select(StorageUnit).where(StorageUnit.kind == UnitKind.BOX)).all()
    assert {b.id: b.occupied for b in boxes if b.occupied} == actual
    stored = db.execute(select(func.count()).where(Specimen.status == "stored")).scalar_one()
    assert stored == len(placed)
    # Filled box by box, row-major: every box but the last of each kind is full, positions contiguous.
    by_box: dict[int, list[tuple[int, int]]] = {}
    for box_id, row, col in placed:
        by_box.setdefault(box_id, []).append((row, col))
    for positions in by_box.values():
        order = sorted((r - 1) * 9 + (c - 1) for r, c in positions)
        assert order == list(range(len(order)))


def test_demo_users_can_log_in(demo: Any, client: TestClient) -> None:
    for user in DEMO_USERS:
        response = client.post(
            "/login", data={"username": user.username, "password": user.password}, follow_redirects=False
        )
        assert response.status_code == 303, user.username


def test_cli_refuses_a_second_run_and_production(db: Session, settings: Settings, tmp_path: Any) -> None:
    from typer.testing import CliRunner

    import biobank.cli

    runner = CliRunner()
    app = biobank.cli.app
    if not any(command.name == "demo" for command in app.registered_commands):
        biobank.cli._register_subcommands()
    result = runner.invoke(app, ["demo", "--donors", "5", "--specimens", "20", "--no-serve"])
    assert result.exit_code == 0, result.output
    assert "20 specimens" in result.output and "onc-manager" in result.output
    assert "demo-manager-2026" not in result.output  # passwords are printed in development only
    assert has_data(db)
    db.rollback()
    again = runner.invoke(app, ["demo", "--no-serve"])
    assert again.exit_code == 2 and "--reset" in again.output
    production = Settings(
        env=Environment.PRODUCTION,
        data_dir=tmp_path / "prod",
        database_url=settings.database_url,
        secret_key="p" * 40,
        vault_key="q" * 40,
        pseudonym_key="r" * 40,
    )
    configure(production)
    try:
        refused = runner.invoke(app, ["demo", "--no-serve"])
    finally:
        configure(settings)
    assert refused.exit_code == 2 and "production" in refused.output
