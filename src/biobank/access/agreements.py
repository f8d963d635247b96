"""Step 5: the agreement (MTA for specimens, DTA for data only) between the requester's institution and
one provider institution: generated from a template, frozen, hashed, signed in the app by both parties.

terms_hash = keccak256 of the canonical bytes of the rendered text (NFC, LF line ends, no trailing
blanks, one final newline, UTF-8). Each party confirms by re-entering their password; the app then
signs terms_hash (EIP-191) with the party's institution role account: RESEARCHER for the requester,
BIOBANK_OPERATOR for the provider. When both have signed, `request.agreement` and `revenue.fee` go to
the outbox in the same transaction.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

from eth_utils.crypto import keccak
from jinja2 import Environment, FileSystemLoader, StrictUndefined
from sqlalchemy.orm import Session

from biobank import audit
from biobank.access import fulfilment_common as common
from biobank.access.fulfilment_models import AccessAgreement, AgreementKind, AgreementStatus
from biobank.access.fulfilment_schemas import AgreementCreate, AgreementSign, Party
from biobank.access.models import AccessRequest, ItemKind
from biobank.config import get_settings
from biobank.identity.principal import Principal
from biobank.kit.db import flush_or_conflict, utcnow
from biobank.kit.errors import Conflict, FieldError, Invalid, NotFound, NotPermitted
from biobank.kit.ids import new_public_ids
from biobank.ledger import keys
from biobank.ledger.outbox import enqueue
from biobank.ledger.refs import digest_bytes, institution_ref, object_ref

TEMPLATE_DIR = Path(__file__).parent / "agreement_templates"
TEMPLATES = {AgreementKind.MTA: "mta-v1", AgreementKind.DTA: "dta-v1"}
UNIQUE_AGREEMENT = {
    "uq_access_agreement_provider": ("AgreementExists", "an agreement with this provider institution exists"),
    "access_agreements.request_id, access_agreements.provider_institution": (
        "AgreementExists",
        "an agreement with this provider institution exists",
    ),
}


class WrongPassword(Invalid):
    """The password re-entered to sign is wrong; the refusal itself is kept in the audit log."""

    def __init__(self) -> None:
        super().__init__([FieldError(["password"], "the password is not correct")], name="WrongPassword")
        self.keep_changes = True


@lru_cache(maxsize=1)
def _environment() -> Environment:
    return Environment(
        loader=FileSystemLoader(str(TEMPLATE_DIR)),
        autoescape=False,  # noqa: S701 - plain-text terms, never rendered as HTML
        undefined=StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=False,
    )


def canonical_terms(text: str) -> bytes:
    """The canonical bytes of a terms text: NFC, LF line ends, trailing blanks removed, one final newline."""
    normalised = unicodedata.normalize("NFC", text).replace("\r\n", "\n").replace("\r", "\n")
    lines = [line.rstrip() for line in normalised.split("\n")]
    while lines and not lines[-1]:
        lines.pop()
    return ("\n".join(lines) + "\n").encode("utf-8")


def terms_hash(text: str) -> str:
    """0x keccak256 of the canonical bytes of a terms text."""
    return "0x" + keccak(canonical_terms(text)).hex()


def render_terms(template: str, parameters: dict[str, Any]) -> str:
    """The terms text of a template version with its parameters, in canonical form."""
    raw = _environment().get_template(f"{template}.txt.j2").render(**parameters)
    return canonical_terms(raw).decode("utf-8")


def fee_weights(institutions: Sequence[str]) -> list[int]:
    """Basis points per provider institution (sum 10,000): an equal split, the rounding remainder to the first.

    The seam for the valuation issue, which will weigh institutions by their contribution.
    """
    if not institutions:
        return []
    share, rest = divmod(10_000, len(institutions))
    return [share + (rest if i == 0 else 0) for i in range(len(institutions))]


def _item_lines(session: Session, request: AccessRequest, biobank_ids: set[int]) -> tuple[list[str], list[str]]:
    """Human lines of the request's items for these biobanks: (material lines, data lines)."""
    from biobank.institutions import service as institutions
    from biobank.specimens import service as specimens

    items = [i for i in common.items_of(session, request) if i.biobank_id in biobank_ids]
    collections = institutions.collections_by_ids(session, sorted({i.collection_id for i in items}))
    named = specimens.public_ids_of(session, sorted({i.specimen_id for i in items if i.specimen_id}))
    material: list[str] = []
    data: list[str] = []
    for item in items:
        col = collections[item.collection_id]
        where = f"collection {col.name} ({col.public_id})"
        if item.kind == ItemKind.SPECIMEN and item.specimen_id:
            material.append(f"specimen {named.get(item.specimen_id, '?')} of {where}")
        elif item.kind == ItemKind.DATA:
            data.append(f"{item.data_category or 'data'} data of {where}, up to {item.quantity} records")
        else:
            amount = f", {item.amount:g} {item.amount_unit} each" if item.amount else ""
            material.append(f"{item.quantity} × {item.sample_type or 'any material'}{amount} from {where}")
    return material, data


def _provider(session: Session, request: AccessRequest, principal: Principal, code: str | None) -> Any:
    providers = common.provider_institutions(session, request)
    if code is not None:
        provider = providers.get(code)
        if provider is None:
            raise Invalid.field("provider", "not a provider institution of this request", value=code)
        if not any(principal.can_manage(b.id) for b in provider.biobanks):
            raise NotPermitted("only a manager of a provider biobank generates its agreement", name="NotProvider")
        return provider
    mine = [p for p in providers.values() if any(principal.can_manage(b.id) for b in p.biobanks)]
    if not mine:
        raise NotPermitted("only a manager of a provider biobank generates its agreement", name="NotProvider")
    if len(mine) > 1:
        raise Invalid.field("provider", "you manage biobanks of several provider institutions: name one")
    return mine[0]


def generate(session: Session, principal: Principal, request: AccessRequest, data: AgreementCreate) -> AccessAgreement:
    """Generate the agreement with one provider institution from its template; the text is frozen here."""
    provider = _provider(session, request, principal, data.provider)
    common.require_status(request, common.FULFILLING, "generate an agreement")
    for existing in common.agreements_of(session, request):
        if existing.provider_institution == provider.code:
            raise Conflict(
                f"agreement {existing.public_id} with {provider.code} exists ({existing.status})",
                name="AgreementExists",
            )
    ready = [t for t in provider.tracks if t.state in common.READY_PROVIDER_STATES]
    if not ready:
        states = ", ".join(sorted({str(t.state) for t in provider.tracks}))
        raise Conflict(
            f"cannot generate an agreement: the provider's track is {states} (it must be available, "
            "conditions met or made available)",
            name="WrongProviderState",
        )
    biobanks = [b for b in provider.biobanks if any(t.biobank_id == b.id for t in ready)]
    material, data_lines = _item_lines(session, request, {b.id for b in biobanks})
    includes_specimens = data.specimens if data.specimens is not None else (bool(material) or not data_lines)
    includes_data = data.data if data.data is not None else (bool(data_lines) or data.data_access_days is not None)
    if not includes_specimens and not includes_data:
        raise Invalid.field("specimens", "an agreement covers specimens, data or both")
    if includes_data and data.data_access_days is None:
        raise Invalid.field("data_access_days", "say for how many days data access is granted")
    kind = AgreementKind.MTA if includes_specimens else AgreementKind.DTA
    settings = get_settings()
    (public_id,) = new_public_ids(session, settings.institution_code, "AGR")
    purpose = dict(request.purpose or {})
    parameters: dict[str, Any] = {
        "agreement_id": public_id,
        "request_id": request.public_id,
        "template": TEMPLATES[kind],
        "generated_on": utcnow().date().isoformat(),
        "provider": {
            "code": provider.code,
            "name": provider.name,
            "biobanks": [{"code": b.code, "name": b.name} for b in biobanks],
        },
        "recipient": {
            "code": request.requester_institution,
            "name": common.institution_name(session, request.requester_institution),
            "scientist": _requester_public_id(session, request),
        },
        "project": {"title": request.project_title, "ethics_reference": request.ethics_reference},
        "purpose": {"category": str(purpose.get("category", "")), "diseases": sorted(purpose.get("diseases") or [])},
        "items": material if includes_specimens else [],
        "shipment_country": request.shipment_country,
        "fee": data.fee_amount,
        "data": {"days": data.data_access_days, "categories": data_lines} if includes_data else None,
        "n": {"fee": 6 if includes_data else 5, "obligations": 7 if includes_data else 6},
    }
    parameters["n"]["law"] = parameters["n"]["obligations"] + 1
    text = render_terms(TEMPLATES[kind], parameters)
    agreement = AccessAgreement(
        public_id=public_id,
        request_id=request.id,
        provider_institution=provider.code,
        biobank_ids=[b.id for b in biobanks],
        kind=kind,
        includes_specimens=includes_specimens,
        includes_data=includes_data,
        data_access_days=data.data_access_days if includes_data else None,
        fee_amount=data.fee_amount,
        template=TEMPLATES[kind],
        parameters=parameters,
        terms_text=text,
        terms_hash=terms_hash(text),
        status=AgreementStatus.PENDING,
        created_by=principal.public_id,
    )
    session.add(agreement)
    flush_or_conflict(session, UNIQUE_AGREEMENT)
    audit.record(
        session,
        principal,
        "access.agreement.generate",
        "access_request",
        [request.public_id, public_id],
        purpose=request.public_id,
        details={"kind": kind.value, "provider": provider.code, "fee": data.fee_amount},
    )
    return agreement


def _requester_public_id(session: Session, request: AccessRequest) -> str:
    from biobank.identity import repository as identity_repo

    user = identity_repo.user_by_id(session, request.requester_user_id)
    return user.public_id if user else "unknown"


def get(session: Session, principal: Principal, request: AccessRequest, public_id: str) -> AccessAgreement:
    """One agreement of a request (its text included); the read is audited."""
    for agreement in common.agreements_of(session, request):
        if agreement.public_id == public_id:
            audit.record(
                session,
                principal,
                "access.agreement.read",
                "access_request",
                [request.public_id, agreement.public_id],
                purpose=request.public_id,
            )
            return agreement
    raise NotFound(f"no agreement {public_id!r} in this request", name="AgreementNotFound")


def list_for(session: Session, principal: Principal, request: AccessRequest) -> list[AccessAgreement]:
    """A request's agreements; the read is audited."""
    rows = common.agreements_of(session, request)
    audit.record(
        session,
        principal,
        "access.agreement.list",
        "access_request",
        [request.public_id],
        purpose=request.public_id,
        details={"agreements": len(rows)},
    )
    return rows


def parties_of(principal: Principal, request: AccessRequest, agreement: AccessAgreement) -> set[Party]:
    """Which sides of the agreement this principal may sign for."""
    out: set[Party] = set()
    if common.is_requester(principal, request):
        out.add(Party.REQUESTER)
    if any(principal.can_manage(b) for b in agreement.biobank_ids or []):
        out.add(Party.PROVIDER)
    return out


def _check_password(session: Session, principal: Principal, request: AccessRequest, password: str) -> None:
    from biobank.identity import repository as identity_repo
    from biobank.identity.passwords import verify_password

    user = identity_repo.user_by_id(session, principal.user_id)
    if not verify_password(user.password_hash if user is not None and user.is_active else None, password):
        audit.record(
            session,
            principal,
            "access.agreement.sign",
            "access_request",
            [request.public_id],
            purpose=request.public_id,
            outcome="failure",
            details={"reason": "wrong_password"},
        )
        raise WrongPassword()


def _sign_for(institution: str, role: keys.Role, digest: bytes) -> tuple[str, str]:
    settings = get_settings()
    if institution != settings.institution_code:
        raise Conflict(
            f"institution {institution} signs on its own node, not on {settings.institution_code}",
            name="RemoteParty",
        )
    account = keys.role_account(settings, role, institution)
    return "0x" + keys.sign_digest(account, digest).hex(), account.address


def sign(
    session: Session, principal: Principal, request: AccessRequest, agreement: AccessAgreement, data: AgreementSign
) -> AccessAgreement:
    """One party signs the frozen terms after re-entering their password; both signed → on chain."""
    parties = parties_of(principal, request, agreement)
    if not parties:
        raise NotPermitted(
            "only the requester or a manager of a provider biobank of this agreement signs it", name="NotAParty"
        )
    if data.party is not None and data.party not in parties:
        raise NotPermitted(f"you may not sign as the {data.party.value}", name="NotAParty")
    if data.party is None and len(parties) > 1:
        raise Invalid.field("party", "you are both requester and provider: say which side you sign for")
    party = data.party or next(iter(parties))
    if AgreementStatus(agreement.status) is not AgreementStatus.PENDING:
        raise Conflict(
            f"cannot sign: agreement {agreement.public_id} is {agreement.status} (it must be pending)",
            name="WrongAgreementStatus",
        )
    common.require_status(request, common.FULFILLING, "sign an agreement")
    already = agreement.requester_signature if party is Party.REQUESTER else agreement.provider_signature
    if already:
        raise Conflict(f"the {party.value} has already signed agreement {agreement.public_id}", name="AlreadySigned")
    if terms_hash(agreement.terms_text) != agreement.terms_hash:
        raise Conflict("the stored terms no longer match their hash; do not sign", name="TermsChanged")
    _check_password(session, principal, request, data.password)
    digest = digest_bytes(agreement.terms_hash)
    now = utcnow()
    if party is Party.REQUESTER:
        signature, signer = _sign_for(request.requester_institution, keys.Role.RESEARCHER, digest)
        agreement.requester_signature, agreement.requester_signer = signature, signer
        agreement.requester_signed_by, agreement.requester_signed_at = principal.public_id, now
    else:
        signature, signer = _sign_for(agreement.provider_institution, keys.Role.BIOBANK_OPERATOR, digest)
        agreement.provider_signature, agreement.provider_signer = signature, signer
        agreement.provider_signed_by, agreement.provider_signed_at = principal.public_id, now
    complete = bool(agreement.requester_signature and agreement.provider_signature)
    if complete:
        agreement.status = AgreementStatus.SIGNED
        agreement.signed_at = now
        common.mark_agreed(request)
    session.flush()
    if complete:
        _enqueue_signed(session, request, agreement)
    audit.record(
        session,
        principal,
        "access.agreement.sign",
        "access_request",
        [request.public_id, agreement.public_id],
        purpose=request.public_id,
        details={"party": party.value, "complete": complete, "signer": signer},
    )
    return agreement


def agreement_payload(request: AccessRequest, agreement: AccessAgreement) -> dict[str, Any]:
    """The `request.agreement` outbox payload (also what ledger verify expects on chain)."""
    return {
        "request": request.chain_id,
        "provider": institution_ref(agreement.provider_institution),
        "terms_hash": agreement.terms_hash,
        "requester_sig": agreement.requester_signature,
        "provider_sig": agreement.provider_signature,
    }


def fee_payload(agreement: AccessAgreement) -> dict[str, Any]:
    """The `revenue.fee` outbox payload: the fee split among the agreement's provider institutions."""
    institutions = [institution_ref(agreement.provider_institution)]
    return {
        "agreement": object_ref(get_settings(), "agreement", agreement.public_id),
        "amount": int(agreement.fee_amount),
        "institutions": institutions,
        "bps": fee_weights(institutions),
        "remainder_to": institutions[0],
    }


def _enqueue_signed(session: Session, request: AccessRequest, agreement: AccessAgreement) -> None:
    enqueue(
        session,
        "request.agreement",
        agreement_payload(request, agreement),
        dedupe_key=f"request.agreement:{agreement.public_id}",
    )
    if agreement.fee_amount > 0:
        enqueue(session, "revenue.fee", fee_payload(agreement), dedupe_key=f"revenue.fee:{agreement.public_id}")
