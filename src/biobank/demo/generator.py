"""A realistic synthetic consortium for demonstrations, deterministic for a given seed.

This node (Huangpu Union Hospital) with an oncology and a general biobank, two fictional peer
hospitals, MIABIS collections, donors with an oncology-heavy ICD-10 mix, specimens with aliquots
and DNA derivatives, times from collection through processing to freezing (SPREC derived), storage
built and filled box by box, QC results and demo users.

Specimens and donors go through the bulk importer (``specimens.importer.run_import``) in batches
of import rows, exactly as a file would, so a million specimens load in minutes; boxes and QC
results are bulk-inserted rows; everything else goes through the services.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from biobank import audit
from biobank.config import get_settings
from biobank.identity import service as identity
from biobank.identity.models import Role, UserKind
from biobank.identity.principal import Principal, system_principal
from biobank.institutions import service as institutions
from biobank.institutions.schemas import BiobankCreate, CollectionCreate
from biobank.kit.db import utcnow
from biobank.kit.ids import allocate, format_public_id
from biobank.specimens import importer, sprec
from biobank.specimens.import_lookups import donors_by, pseudonyms_for
from biobank.specimens.importer_io import (
    Table,
    TimeFormatter,
    bulk_insert,
    dialect_of,
    reserve_ids,
)
from biobank.storage import service as storage
from biobank.storage.models import LabelScheme, StorageUnit, UnitKind
from biobank.storage.schemas import PATH_SEPARATOR, UnitCreate

Say = Callable[[str], None]
CHINA = timezone(timedelta(hours=8))
BATCH = 50_000  # import rows per run_import call
BOX_ROWS = BOX_COLS = 9
RACKS_PER_UNIT = 10
BOXES_PER_RACK = 20
MINUS_80 = "−60 °C to −85 °C"
LN2_VAPOUR = "LN2 vapour phase"


@dataclass(frozen=True)
class DemoUser:
    """A demo login (the passwords are printed in development only)."""

    username: str
    password: str
    display_name: str
    what: str
    biobank: str | None = None
    role: Role | None = None
    is_admin: bool = False
    is_auditor: bool = False
    is_ethics_reviewer: bool = False
    kind: UserKind = UserKind.STAFF


DEMO_USERS: tuple[DemoUser, ...] = (
    DemoUser("admin", "demo-admin-2026", "Node administrator", "node administrator", is_admin=True),
    DemoUser("onc-manager", "demo-manager-2026", "Li Wei (oncology manager)", "manager, oncology biobank", "ONC",
             Role.MANAGER),
    DemoUser("onc-tech", "demo-tech-2026", "Zhang Min (oncology technician)", "technician, oncology biobank", "ONC",
             Role.TECHNICIAN),
    DemoUser("viewer", "demo-viewer-2026", "Chen Jie (viewer)", "viewer, oncology biobank", "ONC", Role.VIEWER),
    DemoUser("auditor", "demo-auditor-2026", "Wang Fang (auditor)", "auditor (reads the audit log)", is_auditor=True),
    DemoUser("gen-manager", "demo-general-2026", "Liu Yang (general biobank manager)", "manager, general biobank",
             "GEN", Role.MANAGER),
    DemoUser("ethics", "demo-ethics-2026", "Zhao Lin (ethics committee)", "ethics committee member (access requests)",
             is_ethics_reviewer=True),
    DemoUser("researcher", "demo-research-2026", "Sun Hui (researcher)", "researcher (makes access requests)",
             kind=UserKind.RESEARCHER),
)

PEERS = (
    {"code": "CN-JS-H02", "name": "Jiangsu Provincial People's Hospital (fictional)", "country": "CN",
     "city": "Nanjing", "node_url": "https://biobank.js-h02.example.org"},
    {"code": "CN-ZJ-H03", "name": "Zhejiang Lakeside Cancer Hospital (fictional)", "country": "CN",
     "city": "Hangzhou", "node_url": "https://biobank.zj-h03.example.org"},
)


@dataclass(frozen=True)
class Cohort:
    """A collection and the donors it recruits."""

    acronym: str
    name: str
    biobank: str
    weight: float
    diagnoses: tuple[str, ...]
    female_share: float
    born: tuple[int, int]
    cancer: bool = True
    comorbidities: tuple[str, ...] = ()


COHORTS: tuple[Cohort, ...] = (
    Cohort("LUNG", "Lung cancer cohort", "ONC", 0.25, ("C34.0", "C34.1", "C34.1", "C34.3", "C34.9"), 0.38,
           (1940, 1975)),
    Cohort("CRC", "Colorectal cancer cohort", "ONC", 0.20, ("C18.0", "C18.2", "C18.7", "C20"), 0.44, (1940, 1980)),
    Cohort("BRCA", "Breast cancer cohort", "ONC", 0.20, ("C50.2", "C50.4", "C50.9"), 0.99, (1945, 1985)),
    Cohort("GC", "Gastric cancer cohort", "ONC", 0.12, ("C16.0", "C16.3", "C16.9"), 0.35, (1940, 1975)),
    Cohort("HCC", "Liver cancer cohort", "ONC", 0.08, ("C22.0",), 0.25, (1945, 1975)),
    Cohort("CTRL", "Healthy controls", "GEN", 0.15, (), 0.5, (1950, 2000), cancer=False,
           comorbidities=("I10", "E11.9")),
)


@dataclass(frozen=True)
class DemoConfig:
    """How much to generate, and from which seed."""

    donors: int = 500
    specimens: int = 5_000
    seed: int = 2026
    access: bool = True  # consents and a handful of access requests in different states


@dataclass
class DemoSummary:
    """What was generated."""

    donors: int = 0
    specimens: int = 0
    boxes: int = 0
    qc_results: int = 0
    seconds: float = 0.0
    per_biobank: dict[str, int] = field(default_factory=dict)
    consents: int = 0
    access_requests: list[Any] = field(default_factory=list)  # demo.access.DemoRequest
    access_seconds: float = 0.0


# --------------------------------------------------------------------------------------------
# Storage: boxes created as they are needed and filled row-major, box after box
# --------------------------------------------------------------------------------------------


class BoxFiller:
    """Hands out free positions of one temperature class, creating racks, freezers and boxes as needed."""

    def __init__(self, session: Session, actor: Principal, biobank: Any, site: StorageUnit, *, kind: UnitKind,
                 prefix: str, temperature: str) -> None:
        self.session, self.actor, self.biobank, self.site = session, actor, biobank, site
        self.kind, self.prefix, self.temperature = kind, prefix, temperature
        self.boxes: list[str] = []  # public ids, in filling order
        self.used = 0  # positions handed out
        self.created_boxes = 0
        self.holder: StorageUnit | None = None
        self.rack: StorageUnit | None = None
        self.units = 0
        self.racks_in_unit = 0
        self.boxes_in_rack = 0
        self.pending: list[tuple[StorageUnit, str]] = []

    def positions(self, count: int) -> list[tuple[str, str]]:
        """The next `count` free (box public id, label) pairs, row-major, creating boxes first."""
        capacity = BOX_ROWS * BOX_COLS
        needed_boxes = -(-(self.used + count) // capacity) - len(self.boxes)
        if needed_boxes > 0:
            self._make_boxes(needed_boxes)
        out = []
        for k in range(self.used, self.used + count):
            box, slot = divmod(k, capacity)
            row, col = divmod(slot, BOX_COLS)
            out.append((self.boxes[box], f"{chr(65 + row)}{col + 1}"))
        self.used += count
        return out

    def _next_rack(self) -> StorageUnit:
        if self.rack is None or self.boxes_in_rack >= BOXES_PER_RACK:
            if self.holder is None or self.racks_in_unit >= RACKS_PER_UNIT:
                self.units += 1
                self.holder = storage.create_unit(
                    self.session, self.actor,
                    UnitCreate(kind=self.kind, name=f"{self.prefix}{self.units:02d}", parent=self.site.public_id,
                               temperature=self.temperature),
                )
                self.racks_in_unit = 0
            self.racks_in_unit += 1
            self.rack = storage.create_unit(
                self.session, self.actor,
                UnitCreate(kind=UnitKind.RACK, name=f"R{self.racks_in_unit:02d}", parent=self.holder.public_id),
            )
            self.boxes_in_rack = 0
        return self.rack

    def _make_boxes(self, count: int) -> None:
        """Bulk-insert `count` 9 × 9 boxes into racks (one audit entry for them all)."""
        planned: list[tuple[StorageUnit, str]] = []
        for _ in range(count):
            rack = self._next_rack()
            self.boxes_in_rack += 1
            planned.append((rack, f"B{self.boxes_in_rack:03d}"))
        ids = reserve_ids(self.session, "storage_units", count)
        institution = get_settings().institution_code
        public_ids = [format_public_id(institution, "BOX", n) for n in allocate(self.session, "BOX", count)]
        stamp = TimeFormatter(dialect_of(self.session))(utcnow())
        rows = [
            (row_id, public_id, self.biobank.id, rack.id, UnitKind.BOX.value, name, self.temperature, BOX_ROWS,
             BOX_COLS, LabelScheme.LETTER_NUMBER.value, 0, f"{rack.path}{PATH_SEPARATOR}{name}", stamp)
            for row_id, public_id, (rack, name) in zip(ids, public_ids, planned, strict=True)
        ]
        bulk_insert(
            self.session, "storage_units",
            ("id", "public_id", "biobank_id", "parent_id", "kind", "name", "temperature", "rows", "cols",
             "label_scheme", "occupied", "path", "created_at"),
            rows,
        )
        audit.record(self.session, self.actor, "storage.create", "storage_unit", [],
                     details={"kind": "box", "count": count, "biobank": self.biobank.code})
        self.boxes.extend(public_ids)
        self.created_boxes += count


# --------------------------------------------------------------------------------------------
# Rows
# --------------------------------------------------------------------------------------------


@dataclass
class _Donor:
    patient_id: str
    cohort: Cohort
    sex: str
    birth_year: int
    diagnosis: str | None
    comorbidity: str | None


def _iso(moment: datetime) -> str:
    return moment.astimezone(CHINA).isoformat(timespec="seconds")


class _Rows:
    """Import rows for donors' visits, in the importer's columns (text, as a file would hold them)."""

    def __init__(self, rng: random.Random, anchor: datetime, collections: dict[str, str]) -> None:
        self.rng = rng
        self.anchor = anchor
        self.collections = collections
        self.visits = 0

    def visit(self, donor: _Donor) -> list[dict[str, str]]:
        """The specimens of one visit: primaries first, then their aliquots and derivatives."""
        rng = self.rng
        self.visits += 1
        code = f"{self.visits:07d}"
        days_ago = rng.randint(40, 3 * 365)
        day = self.anchor - timedelta(days=days_ago)
        collected = day.replace(hour=rng.randint(8, 15), minute=rng.randint(0, 59), second=0, microsecond=0)
        arrival = rng.randint(10, 40)
        received = collected + timedelta(minutes=arrival)
        processed = collected + timedelta(minutes=rng.randint(max(30, arrival + 5), 360))
        frozen = processed + timedelta(minutes=rng.randint(15, 90))
        cohort = donor.cohort
        common = {
            "collection": self.collections[cohort.acronym],
            "diagnosis": donor.diagnosis or donor.comorbidity or "",
            "collected_at": _iso(collected),
            "received_at": _iso(received),
        }
        fluid = common | {"processed_at": _iso(processed), "frozen_at": _iso(frozen)}
        first = {"donor_patient_id": donor.patient_id, "donor_sex": donor.sex,
                 "donor_birth_year": str(donor.birth_year)}
        rows: list[dict[str, str]] = []
        serum, plasma, buffy = f"SER-{code}", f"PLA-{code}", f"BUF-{code}"
        rows.append(fluid | first | {"barcode": serum, "sample_type": "Serum", "container": "SST",
                                     "quantity": "5", "quantity_unit": "mL", "status": "processed"})
        rows.append(fluid | first | {"barcode": plasma, "sample_type": "Plasma", "container": "PED",
                                     "quantity": "4", "quantity_unit": "mL", "status": "processed"})
        rows.append(fluid | first | {"barcode": buffy, "sample_type": "Buffy coat", "container": "PED",
                                     "quantity": "0.5", "quantity_unit": "mL", "status": "processed"})
        if cohort.cancer:
            surgery = collected + timedelta(hours=rng.randint(1, 48))
            warm, cold = rng.randint(5, 45), rng.randint(10, 90)
            site = _topography(donor.diagnosis)
            tissue = common | first | {
                "collected_at": _iso(surgery), "received_at": _iso(surgery + timedelta(minutes=cold // 2)),
                "anatomical_site": site,
            }
            rows.append(tissue | {
                "barcode": f"TIF-{code}", "sample_type": "Tissue (Frozen)", "quantity": str(rng.randint(40, 250)),
                "quantity_unit": "mg", "frozen_at": _iso(surgery + timedelta(minutes=cold)),
                "sprec_code": sprec.derive_solid("TIS", "SRG", warm_ischemia_minutes=warm,
                                                 cold_ischemia_minutes=cold, fixation="SNP", storage="C"),
                "status": "stored", "_store": "LN2",
            })
            rows.append(tissue | {
                "barcode": f"FFP-{code}", "sample_type": "Tissue (FFPE)", "quantity": "1", "quantity_unit": "blocks",
                "processed_at": _iso(surgery + timedelta(hours=rng.randint(14, 40))),
                "sprec_code": sprec.derive_solid("TIS", "SRG", warm_ischemia_minutes=warm,
                                                 cold_ischemia_minutes=cold, fixation="NBF",
                                                 fixation_hours=rng.randint(12, 40), storage="P"),
                "storage_temperature": "RT", "status": "processed",
            })
        for n in range(1, 5):
            rows.append(fluid | {"barcode": f"{serum}-{n:02d}", "sample_type": "Serum", "parent_barcode": serum,
                                 "container": "SST", "quantity": "0.5", "quantity_unit": "mL", "_store": "-80"})
        for n in range(1, 4):
            rows.append(fluid | {"barcode": f"{plasma}-{n:02d}", "sample_type": "Plasma", "parent_barcode": plasma,
                                 "container": "PED", "quantity": "0.5", "quantity_unit": "mL", "_store": "-80"})
        micrograms = rng.randint(8, 60)
        rows.append(common | {
            "barcode": f"DNA-{code}", "sample_type": "DNA", "parent_barcode": buffy, "lineage": "derivative",
            "processed_at": _iso(frozen + timedelta(days=rng.randint(1, 30), minutes=rng.randint(0, 600))),
            "quantity": str(micrograms), "quantity_unit": "µg",
            "concentration": f"{rng.uniform(20, 150):.1f}", "concentration_unit": "ng/µL", "_store": "-80",
        })
        # A visit cut short (a donor's share of specimens is reached) keeps a bit of every kind.
        first_kept = [serum, plasma, buffy, f"DNA-{code}", f"TIF-{code}", f"FFP-{code}", f"{serum}-01", f"{plasma}-01"]
        rank = {barcode: k for k, barcode in enumerate(first_kept)}
        order = sorted(range(len(rows)), key=lambda k: rank.get(rows[k]["barcode"], 100 + k))
        return [rows[k] for k in order]


def _topography(diagnosis: str | None) -> str:
    if not diagnosis:
        return ""
    return diagnosis if "." in diagnosis else f"{diagnosis}.9"


def _donors(rng: random.Random, count: int) -> Iterator[_Donor]:
    weights = [c.weight for c in COHORTS]
    this_year = utcnow().year
    for n in range(1, count + 1):
        cohort = rng.choices(COHORTS, weights)[0]
        sex = "Female" if rng.random() < cohort.female_share else "Male"
        born = rng.randint(cohort.born[0], min(cohort.born[1], this_year - 18))
        diagnosis = rng.choice(cohort.diagnoses) if cohort.diagnoses else None
        comorbidity = None
        if cohort.comorbidities and rng.random() < 0.45:
            comorbidity = rng.choice(cohort.comorbidities)
        yield _Donor(f"HUH{n:08d}", cohort, sex, born, diagnosis, comorbidity)


# --------------------------------------------------------------------------------------------
# The consortium
# --------------------------------------------------------------------------------------------


def batches(
    config: DemoConfig, collections: dict[str, str], donors: list[_Donor] | None = None
) -> Iterator[tuple[str, list[dict[str, str]]]]:
    """The import rows, per biobank, in batches of about BATCH rows; a pure function of the seed and today.

    Each donor gets an equal share of the specimens (visits until the share is reached, the last one
    cut short); a visit is never split between batches, so parents and their aliquots stay together.
    `donors`, when given, receives the donors generated.
    """
    rng = random.Random(config.seed)
    anchor = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    rows = _Rows(rng, anchor, collections)
    people = list(_donors(rng, max(1, config.donors)))
    if donors is not None:
        donors.extend(people)
    pending: dict[str, list[dict[str, str]]] = {"ONC": [], "GEN": []}
    share, extra = divmod(config.specimens, len(people))
    for n, donor in enumerate(people):
        quota = share + (1 if n < extra else 0)
        code = donor.cohort.biobank
        while quota > 0:
            specimens = rows.visit(donor)[:quota]
            quota -= len(specimens)
            pending[code].extend(specimens)
        if len(pending[code]) >= BATCH:
            yield code, pending[code]
            pending[code] = []
    for code, batch in pending.items():
        if batch:
            yield code, batch


def has_data(session: Session) -> bool:
    """Whether the database already holds biobanks or users (a demo would mix with them)."""
    from biobank.identity.models import User
    from biobank.institutions.models import Biobank

    biobanks = session.execute(select(func.count()).select_from(Biobank)).scalar_one()
    users = session.execute(select(func.count()).select_from(User)).scalar_one()
    return bool(biobanks or users)


@dataclass
class Consortium:
    """The parts of a generated node that loading specimens needs."""

    actor: Principal
    collections: dict[str, str]  # cohort acronym -> collection public id
    fillers: dict[tuple[str, str], BoxFiller]  # (biobank code, "-80" | "LN2") -> box filler


def build_consortium(make_session: Callable[[], Session]) -> Consortium:
    """Institutions, biobanks, collections, demo users and the storage sites (one transaction each)."""
    actor = system_principal(get_settings().institution_code)
    with make_session() as session, session.begin():
        collections = _institutions(session, actor)
        _users(session, actor)
    with make_session() as session, session.begin():
        fillers = _storage(session, actor)
    return Consortium(actor, collections, fillers)


def place(session: Session, consortium: Consortium, code: str, batch: list[dict[str, str]]) -> None:
    """Give the rows that go into storage their box and position (boxes filled row-major, created as needed)."""
    for store in ("-80", "LN2"):
        wanted = [r for r in batch if r.get("_store") == store]
        filler = consortium.fillers[(code, store)]
        filler.session = session
        for r, (box, label) in zip(wanted, filler.positions(len(wanted)), strict=True):
            r["box"], r["position"] = box, label
            r["status"] = "stored"
    for r in batch:
        r.pop("_store", None)


def import_table(batch: list[dict[str, str]]) -> Table:
    """Rows of the generator as the importer reads a file."""
    return Table.from_dicts(batch, columns=_COLUMNS)


def generate(make_session: Callable[[], Session], config: DemoConfig, say: Say = print) -> DemoSummary:
    """Build the demo consortium; each batch is imported in its own transaction (progress survives)."""
    started = utcnow()
    summary = DemoSummary()
    consortium = build_consortium(make_session)
    say(f"institutions, biobanks, {len(consortium.collections)} collections and {len(DEMO_USERS)} users")
    donors: list[_Donor] = []
    for code, batch in batches(config, consortium.collections, donors):
        with make_session() as session, session.begin():
            place(session, consortium, code, batch)
            report = importer.run_import(
                session, consortium.actor, code, import_table(batch), dry_run=False, refresh_facts=False
            )
        summary.specimens += report.created
        summary.per_biobank[code] = summary.per_biobank.get(code, 0) + report.created
        say(f"imported {summary.specimens:,} of {config.specimens:,} specimens")
    with make_session() as session, session.begin():
        summary.qc_results = _qc(session, consortium.actor, random.Random(config.seed + 1))
        summary.donors = _diagnoses(session, donors)
        # Once for all batches (an import refreshes the facts of its collections; here that waits till the end).
        importer.refresh_collection_facts(session, [c.id for c in institutions.all_collections(session)])
    summary.boxes = sum(f.created_boxes for f in consortium.fillers.values())
    if config.access:
        from biobank.demo import access

        access_started = utcnow()
        passwords = {u.username: u.password for u in DEMO_USERS}
        summary.consents, summary.access_requests = access.build(
            make_session, consortium.actor, consortium.collections, config.seed + 2, passwords, say)
        summary.access_seconds = (utcnow() - access_started).total_seconds()
    summary.seconds = (utcnow() - started).total_seconds()
    return summary


def _institutions(session: Session, actor: Principal) -> dict[str, str]:
    """This node, its peers, the two biobanks and their collections; acronym -> collection public id."""
    institutions.ensure_local_institution(session)
    for peer in PEERS:
        institutions.add_peer_institution(session, actor, **peer)
    quality = ["ISO 20387"]
    institutions.create_biobank(session, actor, BiobankCreate(
        code="ONC", name="Huangpu Union Hospital Oncology Biobank", acronym="HUH-ONC", country="CN",
        juristic_person="Huangpu Union Hospital", contact_email="biobank@huh.example.org",
        description="Tumour tissue, blood fractions and DNA from surgical oncology patients.",
        bioprocessing_capabilities=["DNA extraction", "FFPE processing", "Cryopreservation"],
        quality_standards=quality,
    ))
    institutions.create_biobank(session, actor, BiobankCreate(
        code="GEN", name="Huangpu Union Hospital General Biobank", acronym="HUH-GEN", country="CN",
        juristic_person="Huangpu Union Hospital", contact_email="biobank@huh.example.org",
        description="Blood fractions from healthy volunteers and controls.", quality_standards=quality,
    ))
    out: dict[str, str] = {}
    for cohort in COHORTS:
        sample_types = ["Serum", "Plasma", "Buffy coat", "DNA"]
        temperatures = [MINUS_80]
        if cohort.cancer:
            sample_types += ["Tissue (Frozen)", "Tissue (FFPE)"]
            temperatures += [LN2_VAPOUR, "RT"]
        data = CollectionCreate(
            biobank=cohort.biobank, name=cohort.name, acronym=cohort.acronym,
            description=f"{cohort.name} of Huangpu Union Hospital (synthetic demonstration data).",
            sexes=["Female"] if cohort.female_share > 0.95 else ["Female", "Male"],
            age_low=18, age_high=90, dataset_types=["Clinical", "Biochemical", "Genomic"],
            sample_types=sample_types, storage_temperatures=temperatures,
            diseases=sorted({d for d in cohort.diagnoses}) or list(cohort.comorbidities),
            design=["Hospital-based cohort"] if cohort.cancer else ["Case-control (controls)"],
            use_access_conditions=["Specific research use", "Collaboration"],
            inclusion_criteria=["Written informed consent", "Age 18 or older"],
        )
        out[cohort.acronym] = institutions.create_collection(session, actor, data).public_id
    return out


def _users(session: Session, actor: Principal) -> None:
    for user in DEMO_USERS:
        created = identity.create_user(
            session, actor, user.username, user.password, display_name=user.display_name,
            is_admin=user.is_admin, is_auditor=user.is_auditor, kind=user.kind,
        )
        created.is_ethics_reviewer = user.is_ethics_reviewer
        if user.biobank and user.role:
            identity.grant_role(session, actor, created, institutions.get_biobank(session, user.biobank).id, user.role)


def _storage(session: Session, actor: Principal) -> dict[tuple[str, str], BoxFiller]:
    fillers: dict[tuple[str, str], BoxFiller] = {}
    for code, site_name in (("ONC", "Oncology biobank, building B"), ("GEN", "General biobank, building C")):
        biobank = institutions.get_biobank(session, code)
        site = storage.create_unit(session, actor, UnitCreate(kind=UnitKind.SITE, name=site_name, biobank=code))
        fillers[(code, "-80")] = BoxFiller(session, actor, biobank, site, kind=UnitKind.FREEZER, prefix="F",
                                           temperature=MINUS_80)
        fillers[(code, "LN2")] = BoxFiller(session, actor, biobank, site, kind=UnitKind.TANK, prefix="T",
                                           temperature=LN2_VAPOUR)
    return fillers


_COLUMNS = [c for c in importer.COLUMN_NAMES if c != "donor"]


def _qc(session: Session, actor: Principal, rng: random.Random) -> int:
    """QC results (RIN for frozen tissue, DIN for DNA, haemolysis for serum and plasma), ~92 % passing."""
    from biobank.specimens.models import Specimen

    stmt = (
        select(Specimen.id, Specimen.sample_type, Specimen.frozen_at, Specimen.processed_at)
        .where(
            (Specimen.sample_type.in_(["DNA", "Tissue (Frozen)"]))
            | ((Specimen.lineage == "primary") & Specimen.sample_type.in_(["Serum", "Plasma"]))
        )
        .order_by(Specimen.id)
    )
    fmt = TimeFormatter(dialect_of(session))
    rows = []
    for specimen_id, sample_type, frozen_at, processed_at in session.execute(stmt).all():
        passed = rng.random() < 0.92
        base = processed_at or frozen_at or utcnow()
        tested = min(base + timedelta(days=rng.randint(1, 20)), utcnow() - timedelta(hours=1))
        if sample_type == "DNA":
            test, method, unit = "DIN", "Agilent TapeStation genomic DNA", ""
            value = rng.uniform(7.0, 9.8) if passed else rng.uniform(3.5, 6.9)
        elif sample_type == "Tissue (Frozen)":
            test, method, unit = "RIN", "Agilent Bioanalyzer RNA 6000 Nano", ""
            value = rng.uniform(7.0, 9.6) if passed else rng.uniform(3.0, 6.9)
        else:
            test, method, unit = "haemolysis", "free haemoglobin, spectrophotometry", "g/L"
            value = rng.uniform(0.02, 0.49) if passed else rng.uniform(0.5, 2.5)
        rows.append((specimen_id, test, method, round(value, 2), "", unit, passed, fmt(tested), actor.public_id, ""))
    bulk_insert(
        session, "qc_results",
        ("specimen_id", "test", "method", "value", "value_text", "unit", "passed", "tested_at", "recorded_by", "notes"),
        rows,
    )
    audit.record(session, actor, "specimen.qc.import", "specimen", [], details={"results": len(rows)})
    return len(rows)


def _diagnoses(session: Session, donors: list[_Donor]) -> int:
    """Each registered donor's diagnoses (the cancer as primary, a comorbidity or a control's condition)."""
    from biobank.institutions.models import Biobank

    pseudonyms = pseudonyms_for(d.patient_id for d in donors)
    biobank_ids = {code: row_id for code, row_id in session.execute(select(Biobank.code, Biobank.id))}
    rows = []
    registered = 0
    for code in ("ONC", "GEN"):
        mine = [d for d in donors if d.cohort.biobank == code]
        found = donors_by(session, "pseudonym", [pseudonyms[d.patient_id] for d in mine], biobank_ids[code])
        for donor in mine:
            record = found.get(pseudonyms[donor.patient_id])
            if record is None:
                continue
            registered += 1
            if donor.diagnosis:
                rows.append((record.id, donor.diagnosis, None, True))
            if donor.comorbidity:
                rows.append((record.id, donor.comorbidity, None, donor.diagnosis is None))
    bulk_insert(session, "donor_diagnoses", ("donor_id", "icd10", "diagnosed_on", "is_primary"), rows)
    return registered
