"""The demo's consents and access requests: a few requests in different states, made through the access
services by the demo users, so /access and /ledger show real content (the server's ledger thread then
publishes the queued chain writes to the embedded chain).

Donors of each collection (a few dozen) get an electronic consent on a bilingual form of their biobank (most
broad, some for health research only without commercial use, some none), so eligibility, reservations and
data grants have something to decide.
"""

from __future__ import annotations

import random
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from biobank.access import agreements, grants, providers, reservations, results, review, service, shipments
from biobank.access.fulfilment_schemas import (
    AgreementCreate,
    AgreementSign,
    GrantCreate,
    ReservationCreate,
    ResultsCreate,
    ShipmentCreate,
    ShipmentReceive,
)
from biobank.access.models import AccessRequest
from biobank.access.schemas import AccessRequestCreate, EthicsDecisionIn, ProviderStateChange
from biobank.consent import forms, records
from biobank.consent.schemas import ConsentRecordCreate, FormCreate, VersionCreate
from biobank.identity import service as identity
from biobank.identity.models import User
from biobank.identity.principal import Principal
from biobank.kit.db import utcnow

Say = Callable[[str], None]

ETHICS_PDF = b"%PDF-1.4\n% Huangpu Union Hospital ethics committee approval (synthetic demo document)\n%%EOF\n"
CONSENT_OPTIONS: list[dict[str, Any]] = [
    {"code": "broad", "kind": "permission", "label_en": "Any research", "label_zh": "任何研究",
     "duo_permission": "GRU"},
    {"code": "health", "kind": "permission", "label_en": "Health and medical research only",
     "label_zh": "仅限健康和医学研究", "duo_permission": "HMB"},
    {"code": "ethics", "kind": "condition", "label_en": "Every study needs ethics approval",
     "label_zh": "每项研究都需要伦理批准", "duo_modifiers": ["IRB"]},
    {"code": "commercial", "kind": "choice", "label_en": "Companies may use my samples",
     "label_zh": "企业可以使用我的样本", "extra_choice": "commercial", "applies_when": "declined",
     "duo_modifiers": ["NPUNCU"], "default": True},
    {"code": "genetic", "kind": "choice", "label_en": "Genetic research", "label_zh": "遗传学研究",
     "extra_choice": "genetic", "default": True},
    {"code": "abroad", "kind": "choice", "label_en": "Sharing with researchers abroad",
     "label_zh": "与境外研究人员共享", "extra_choice": "cross_border", "default": True},
]
BROAD = {"broad": True, "health": False, "commercial": True, "genetic": True, "abroad": True}
HEALTH_NO_COMMERCIAL = BROAD | {"broad": False, "health": True, "commercial": False}
CONSENTS_PER_COLLECTION = 20


@dataclass(frozen=True)
class DemoRequest:
    """One demo request: its public id, where it stands and who to log in as to see it move."""

    public_id: str
    status: str
    title: str
    next_step: str


def purpose(**overrides: Any) -> dict[str, Any]:
    """Non-commercial health research that promises publication."""
    return {
        "category": "HMB", "commercial": False, "non_profit": True, "collaboration": True,
        "methods_development": False, "genetic": False, "data_linkage": False, "publication": True,
        "return_data": False,
    } | overrides


def consents(session: Session, actor: Principal, seed: int, per_collection: int = CONSENTS_PER_COLLECTION) -> int:
    """A consent form per biobank and electronic consents of up to `per_collection` donors of each collection
    (most broad, some health research only without commercial use); returns how many were recorded.

    Not every donor: recording a consent is a full service call (profile, vault, audit), and a few dozen per
    collection are enough for eligibility counts, reservations and grants to show every answer."""
    from biobank.donors.models import Donor
    from biobank.institutions.models import Biobank, Collection
    from biobank.specimens.models import Specimen

    rng = random.Random(seed)
    given = 0
    published = utcnow() - timedelta(days=4 * 365)
    for biobank in session.scalars(select(Biobank).order_by(Biobank.id)):
        form = forms.create_form(session, actor, FormCreate(
            biobank=biobank.code, code="MAIN", title_en=f"{biobank.name}: consent to donate samples and data",
            title_zh="生物样本库知情同意书"))
        version = forms.add_version(session, actor, form, VersionCreate.model_validate({
            "text_en": "You are asked to give samples and data for research. Your choices are below.",
            "text_zh": "我们邀请您为研究捐献样本和数据。您的选择如下。",
            "options": CONSENT_OPTIONS, "published_at": published}))
        collections = session.scalars(
            select(Collection.id).where(Collection.biobank_id == biobank.id).order_by(Collection.id)).all()
        chosen: list[int] = []
        for collection_id in collections:
            donor_ids = session.scalars(select(Specimen.donor_id).where(
                Specimen.collection_id == collection_id, Specimen.donor_id.is_not(None)).distinct()
                .order_by(Specimen.donor_id).limit(per_collection)).all()
            chosen += [d for d in donor_ids if d is not None and d not in chosen]
        for donor in session.scalars(select(Donor).where(Donor.id.in_(chosen)).order_by(Donor.id)):
            draw = rng.random()
            if draw < 0.1:
                continue  # no consent on file: not eligible for anything
            choices = HEALTH_NO_COMMERCIAL if draw < 0.25 else BROAD
            records.record_consent(session, actor, donor, ConsentRecordCreate(
                version=version.public_id, choices=choices, method="electronic",
                given_at=utcnow() - timedelta(days=rng.randint(30, 3 * 365)), signed_name="(electronic signature)"),
                channel="portal")
            given += 1
    return given


class _Cast:
    """The demo users as principals, with their passwords (agreements are signed with them)."""

    def __init__(self, session: Session, passwords: dict[str, str]) -> None:
        self.session = session
        self.passwords = passwords

    def __call__(self, username: str) -> Principal:
        user = self.session.scalars(select(User).where(User.username == username)).one()
        return identity.principal_for(self.session, user, via="session", csrf_token="demo")  # noqa: S106

    def viewer(self, username: str) -> service.Viewer:
        return service.Viewer.of(self.session, self(username))

    def sign(self, username: str, request: AccessRequest, agreement: Any) -> None:
        agreements.sign(self.session, self(username), request, agreement,
                        AgreementSign(password=self.passwords[username]))


def _create(cast: _Cast, title: str, summary: str, items: list[dict[str, Any]], *, submit: bool = True,
            **purpose_overrides: Any) -> AccessRequest:
    researcher = cast("researcher")
    data = AccessRequestCreate.model_validate({
        "project_title": title, "project_summary": summary, "purpose": purpose(**purpose_overrides),
        "ethics_reference": f"HUH-EC-2026-{zlib.crc32(title.encode()) % 900 + 100}", "shipment_country": "CN",
        "items": items})
    request = service.create_request(cast.session, researcher, data)
    service.attach_document(cast.session, researcher, request, ETHICS_PDF, "application/pdf", "ethics-approval.pdf")
    if submit:
        service.submit(cast.session, researcher, request)
    return request


def _move(cast: _Cast, request: AccessRequest, biobank: str, manager: str, *states: str, note: str = "") -> None:
    for state in states:
        track = providers.get_track(cast.session, request, biobank)
        change = ProviderStateChange(state=state, note=note if state == "conditions_indicated" else "")
        providers.change_state(cast.session, cast.viewer(manager), request, track, change)


def _approve(cast: _Cast, request: AccessRequest, comments: str) -> None:
    review.decide(cast.session, cast.viewer("ethics"), request, EthicsDecisionIn(approved=True, comments=comments))


def _agree(cast: _Cast, request: AccessRequest, *, fee: int, data: bool) -> Any:
    agreement = agreements.generate(cast.session, cast("onc-manager"), request, AgreementCreate(
        fee_amount=fee, data=data, data_access_days=90 if data else None))
    cast.sign("researcher", request, agreement)
    cast.sign("onc-manager", request, agreement)
    return agreement


def _eligible(session: Session, request: AccessRequest, count: int) -> list[str]:
    """Stored specimens of the request's first collection line (of its material) whose donors' consent fits."""
    from biobank.access import fulfilment_common as common
    from biobank.consent.eligibility import eligible_specimen_filter
    from biobank.specimens.models import Specimen

    line = next(i for i in common.items_of(session, request) if i.collection_id and not i.data_category)
    stmt = select(Specimen.public_id).where(
        Specimen.collection_id == line.collection_id, Specimen.status == "stored", Specimen.checked_out_at.is_(None),
        eligible_specimen_filter(session, common.purpose_of(request)))
    if line.sample_type:
        stmt = stmt.where(Specimen.sample_type == line.sample_type)
    return list(session.scalars(stmt.order_by(Specimen.id).limit(count)))


def _reserve_and_ship(cast: _Cast, request: AccessRequest, count: int, tracking: str) -> Any:
    picked = _eligible(cast.session, request, count)
    if not picked:
        return None
    reservations.reserve(cast.session, cast("onc-tech"), request, ReservationCreate(biobank="ONC", specimens=picked))
    return shipments.dispatch(cast.session, cast("onc-tech"), request, ShipmentCreate(
        courier="SF Express (cold chain)", tracking_number=tracking, temperature_logger="TL-0042",
        dispatched_at=utcnow() - timedelta(hours=6)))


def access_requests(make_session: Callable[[], Session], collections: dict[str, str],
                    passwords: dict[str, str]) -> list[DemoRequest]:
    """Five requests: a draft, one awaiting ethics, one with providers working, one agreed and shipped, one
    closed with results — each step through the services as the user who does it, one transaction each."""
    out: list[DemoRequest] = []

    def step(fn: Callable[[_Cast], Any]) -> Any:
        with make_session() as session, session.begin():
            return fn(_Cast(session, passwords))

    def collection(acronym: str, quantity: int, sample_type: str | None = None) -> dict[str, Any]:
        item: dict[str, Any] = {"kind": "collection", "collection": collections[acronym], "quantity": quantity}
        if sample_type:
            item["sample_type"] = sample_type
        return item

    def data(acronym: str, category: str = "Clinical") -> dict[str, Any]:
        return {"kind": "data", "collection": collections[acronym], "data_category": category, "quantity": 200}

    def load(session: Session, public_id: str) -> AccessRequest:
        return session.scalars(select(AccessRequest).where(AccessRequest.public_id == public_id)).one()

    # 1. a draft the researcher is still writing
    draft = step(lambda c: _create(
        c, "Circulating tumour DNA in early gastric cancer", "Feasibility of ctDNA detection before surgery.",
        [collection("GC", 40, "Plasma")], submit=False).public_id)
    out.append(DemoRequest(draft, "draft", "ctDNA in early gastric cancer", "researcher: submit it"))

    # 2. submitted, waiting for the ethics committee
    waiting = step(lambda c: _create(
        c, "Inflammatory markers in colorectal cancer recurrence", "Serum cytokine panel at diagnosis vs. relapse.",
        [collection("CRC", 60, "Serum")]).public_id)
    out.append(DemoRequest(waiting, "submitted", "Inflammatory markers in CRC", "ethics: review it"))

    # 3. approved; the oncology biobank is checking, the general biobank set conditions
    working = step(lambda c: _create(
        c, "Metabolomic signatures of hepatocellular carcinoma", "Untargeted plasma metabolomics, cases vs. controls.",
        [collection("HCC", 30, "Plasma"), collection("CTRL", 30, "Plasma")]).public_id)

    def providers_working(c: _Cast) -> None:
        request = load(c.session, working)
        _approve(c, request, "Approved: the consent of the donors covers health research; no commercial use.")
        _move(c, request, "ONC", "onc-manager", "checking_availability")
        _move(c, request, "GEN", "gen-manager", "available", "conditions_indicated",
              note="Co-authorship for the general biobank and return of the metabolite table.")

    step(providers_working)
    out.append(DemoRequest(working, "ethics_approved", "Metabolomics of HCC", "onc-manager / gen-manager: answer"))

    # 4. agreed, specimens reserved and on their way
    shipped = step(lambda c: _create(
        c, "Serum proteomics of non-small-cell lung cancer", "Proteomic profiling of pre-treatment serum.",
        [collection("LUNG", 8, "Serum")]).public_id)

    def agree_and_ship(c: _Cast) -> None:
        request = load(c.session, shipped)
        _approve(c, request, "Approved.")
        _move(c, request, "ONC", "onc-manager", "available")
        _agree(c, request, fee=1_200, data=False)
        _reserve_and_ship(c, request, 6, "SF7001002003")

    step(agree_and_ship)
    out.append(DemoRequest(shipped, "agreed", "Serum proteomics of NSCLC", "researcher: record receipt"))

    # 5. the whole walk: shipped, received, data granted, results returned, closed
    closed = step(lambda c: _create(
        c, "Germline variants and breast cancer subtypes", "Targeted sequencing of DNA with clinical subtypes.",
        [collection("BRCA", 6, "DNA"), data("BRCA")], genetic=True).public_id)

    def whole_walk(c: _Cast) -> None:
        request = load(c.session, closed)
        _approve(c, request, "Approved; genetic research is covered by the donors' choices.")
        _move(c, request, "ONC", "onc-manager", "checking_availability", "available")
        _agree(c, request, fee=2_000, data=True)
        shipment = _reserve_and_ship(c, request, 6, "SF7001002999")
        if shipment is not None:
            shipments.receive(c.session, c("researcher"), request, shipment.public_id, ShipmentReceive(
                received_at=utcnow() - timedelta(hours=1), condition="good"))
        grants.grant(c.session, c("onc-manager"), request, GrantCreate(until=(utcnow() + timedelta(days=60)).date()))
        results.return_results(c.session, c("researcher"), request, ResultsCreate.model_validate({
            "publications": [{"doi": "10.5555/demo.brca.2026", "title": "Germline variants by subtype (demo)"}],
            "datasets": [{"url": "https://data.example.org/huh/brca-variants",
                          "description": "Variant calls per project pseudonym"}]}))
        results.close(c.session, c("researcher"), request)

    step(whole_walk)
    out.append(DemoRequest(closed, "closed", "Germline variants in breast cancer", "auditor: /ledger"))
    with make_session() as session:
        statuses = {r.public_id: str(r.status) for r in session.scalars(select(AccessRequest))}
    return [DemoRequest(r.public_id, statuses.get(r.public_id, r.status), r.title, r.next_step) for r in out]


def build(make_session: Callable[[], Session], actor: Principal, collections: dict[str, str], seed: int,
          passwords: dict[str, str], say: Say) -> tuple[int, list[DemoRequest]]:
    """Consents, then the access requests; returns (consents given, requests)."""
    with make_session() as session, session.begin():
        given = consents(session, actor, seed)
    say(f"{given:,} donor consents")
    made = access_requests(make_session, collections, passwords)
    say(f"{len(made)} access requests ({', '.join(r.status for r in made)})")
    return given, made
