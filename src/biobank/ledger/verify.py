"""`biobank ledger verify`: do the local agreements, shipments, grants and anchors match the chain?

Local facts come from providers registered by domain packages (the access package registers
`access.ledger_facts.expected_chain_facts`), in outbox vocabulary: `{"kind", "payload", "label"}`.
Each fact is looked up among the chain's decoded events by its identifying fields (request, provider,
agreement, size ...); every other field the event carries must be equal. Anchors are checked against
both the local anchor table and the audit log itself. Every difference is named.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from biobank.config import Settings
from biobank.kit.plugins import optional_import
from biobank.ledger.models import LedgerAnchor, LedgerOutbox, OutboxStatus
from biobank.ledger.operations import OPERATIONS
from biobank.ledger.service import Ledger

# kind -> the event the contract emits for it
EVENT_OF_KIND = {
    "request.submit": "Submitted",
    "request.ethics": "EthicsDecided",
    "request.provider": "ProviderDecided",
    "request.agreement": "AgreementRecorded",
    "request.dispatch": "Dispatched",
    "request.receive": "Received",
    "request.grant": "DataAccessGranted",
    "request.results": "ResultsReturned",
    "request.close": "Closed",
    "request.revoke": "Revoked",
    "request.expire": "Expired",
    "revenue.fee": "FeeRecorded",
    "revenue.withdraw": "Withdrawn",
    "resource.publish": "Published",
    "audit.anchor": "Anchored",
}
# fields that identify which event a fact is about (the others must then be equal)
IDENTIFYING = ("request", "provider", "agreement", "resource", "size", "results_hash")

FactsProvider = Callable[[Session, Settings], list[dict[str, Any]]]
FACT_MODULES = ("biobank.access.ledger_facts", "biobank.catalogue.commitments")
_providers: dict[str, FactsProvider] = {}


def register_facts_provider(name: str, provider: FactsProvider) -> None:
    """Plug in a source of local facts that should be on chain."""
    _providers[name] = provider


def _local_facts(session: Session, settings: Settings) -> list[dict[str, Any]]:
    for module_name in FACT_MODULES:
        module = optional_import(module_name)
        if module is not None and hasattr(module, "expected_chain_facts"):
            _providers.setdefault(module_name, module.expected_chain_facts)
    facts: list[dict[str, Any]] = []
    for provider in _providers.values():
        facts.extend(provider(session, settings))
    return facts


@dataclass
class LedgerReport:
    """What verification found: checked facts, and every difference in words."""

    checked: int = 0
    pending: int = 0
    differences: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when nothing differs."""
        return not self.differences

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {"ok": self.ok, "checked": self.checked, "pending": self.pending, "differences": self.differences}


def normalise(value: Any) -> Any:
    """One comparable form for chain and local values: lowercase 0x-hex for bytes, ints, lists."""
    if isinstance(value, bytes | bytearray):
        return "0x" + bytes(value).hex()
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, list | tuple):
        return [normalise(v) for v in value]
    if isinstance(value, str):
        text = value.lower()
        if text.startswith("0x"):
            return text
        if text.isdigit():
            return int(text)
        return value
    return value


def _normalised_payload(kind: str, payload: Mapping[str, Any]) -> dict[str, Any]:
    out = {key: normalise(value) for key, value in payload.items()}
    op = OPERATIONS.get(kind)
    if op is not None:  # booleans and ints through the operation's own conversions
        for key, convert in op.args:
            if key in payload and convert in (bool, int):
                out[key] = convert(payload[key])
    return out


def chain_events(ledger: Ledger) -> dict[str, list[dict[str, Any]]]:
    """Every decoded event of the consortium contracts, by event name (args normalised, plus block)."""
    by_name: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for name in ledger.addresses:
        for event_name, args, entry in ledger.handle(name).events(from_block=0):
            row = {key: normalise(value) for key, value in args.items()}
            row["_block"] = entry.block_number
            by_name[event_name].append(row)
    return by_name


def _match(fact_payload: Mapping[str, Any], events: Iterable[dict[str, Any]]) -> tuple[dict[str, Any] | None, int]:
    """The event with the fact's identifying fields (and how many such events); prefer a full match."""
    keys = [k for k in IDENTIFYING if k in fact_payload]
    candidates = [e for e in events if all(k in e and e[k] == fact_payload[k] for k in keys)]
    for event in candidates:
        if all(event[k] == v for k, v in fact_payload.items() if k in event):
            return event, len(candidates)
    return (candidates[0] if candidates else None), len(candidates)


def _differences(fact_payload: Mapping[str, Any], event: Mapping[str, Any]) -> list[str]:
    return [
        f"{key}: chain {event[key]} ≠ local {value}"
        for key, value in fact_payload.items()
        if key in event and event[key] != value
    ]


def verify_ledger(session: Session, ledger: Ledger) -> LedgerReport:
    """Compare local facts, sent outbox rows and anchors with the chain."""
    report = LedgerReport()
    events = chain_events(ledger)
    pending_keys = _unsent_payload_keys(session)
    facts = _local_facts(session, ledger.settings) + _anchor_facts(session)
    for fact in facts:
        kind, label = fact["kind"], fact.get("label", fact["kind"])
        payload = _normalised_payload(kind, fact["payload"])
        event_name = EVENT_OF_KIND.get(kind)
        if event_name is None:
            report.differences.append(f"{label}: no chain event is known for {kind}")
            continue
        event, _count = _match(payload, events.get(event_name, []))
        if event is None:
            if (kind, _identity(payload)) in pending_keys:
                report.pending += 1
            else:
                report.differences.append(f"{label}: not on chain ({event_name} missing)")
            continue
        report.checked += 1
        for difference in _differences(payload, event):
            report.differences.append(f"{label}: {difference}")
    report.differences.extend(_unknown_anchors(session, ledger, events))
    report.differences.extend(_failed_rows(session))
    return report


def _identity(payload: Mapping[str, Any]) -> tuple[Any, ...]:
    return tuple((k, str(payload[k])) for k in IDENTIFYING if k in payload)


def _unsent_payload_keys(session: Session) -> set[tuple[str, tuple[Any, ...]]]:
    rows = session.scalars(
        select(LedgerOutbox).where(LedgerOutbox.status.in_([OutboxStatus.PENDING, OutboxStatus.SENDING]))
    ).all()
    return {(row.kind, _identity(_normalised_payload(row.kind, row.payload))) for row in rows}


def _anchor_facts(session: Session) -> list[dict[str, Any]]:
    anchors = session.scalars(select(LedgerAnchor).order_by(LedgerAnchor.tree_size)).all()
    return [
        {"kind": "audit.anchor", "payload": {"size": a.tree_size, "root": "0x" + a.root_hash},
         "label": f"audit anchor at size {a.tree_size}"}
        for a in anchors
    ]


def _unknown_anchors(session: Session, ledger: Ledger, events: Mapping[str, list[dict[str, Any]]]) -> list[str]:
    """Anchors on chain for this institution that the node does not know of."""
    known = set(session.scalars(select(LedgerAnchor.tree_size)).all())
    own = ledger.institution.lower()
    return [
        f"audit anchor at size {e['size']} (block {e['_block']}) is on chain but not in the local anchor table"
        for e in events.get("Anchored", [])
        if str(e.get("inst", e.get("institution", ""))).lower() == own and e.get("size") not in known
    ]


def _failed_rows(session: Session) -> list[str]:
    rows = session.scalars(select(LedgerOutbox).where(LedgerOutbox.status == OutboxStatus.FAILED)).all()
    return [f"ledger write #{row.id} ({row.kind}) was rejected by the chain: {row.last_error}" for row in rows]
