"""AccessAgreements: every transition for the right party in the right state, and every other
(party, state) refused with its reason. Requester A; providers B and C; ethics committee of C."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import boa
import pytest
from eth_account.messages import _hash_eip191_message, encode_defunct

from tests.ledger.contracts.conftest import World, as_, events, h, inst_id, sign, who

REQ = h("request-1")
TERMS = h("terms-B")
DAY = 86400
SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
ZERO32 = b"\x00" * 32

SUBMITTED, APPROVED, REJECTED, CLOSED, EXPIRED = 1, 2, 3, 4, 5
PENDING, AVAILABLE, UNAVAILABLE, AGREED, REVOKED = 1, 2, 3, 4, 5


def now() -> int:
    return int(boa.env.evm.patch.timestamp)


def submit(w: World, request: bytes = REQ) -> None:
    with as_(w.a.researcher):
        w.agreements.submit(request, h("commitment"), [w.b.id, w.c.id], w.c.id)


def sigs(w: World, terms: bytes = TERMS) -> tuple[bytes, bytes]:
    return sign(w.a.researcher, terms), sign(w.b.operator, terms)


def past_deadline(w: World) -> None:
    boa.env.time_travel(seconds=w.agreements.requests(REQ).deadline - now() + 1)


STAGES: dict[str, list[str]] = {
    "submitted": ["submit"],
    "rejected": ["submit", "reject"],
    "approved": ["submit", "approve"],
    "available": ["submit", "approve", "available"],
    "unavailable": ["submit", "approve", "unavailable"],
    "agreed": ["submit", "approve", "available", "agree"],
    "dispatched": ["submit", "approve", "available", "agree", "dispatch"],
    "received": ["submit", "approve", "available", "agree", "dispatch", "receive"],
    "revoked": ["submit", "approve", "available", "agree", "revoke"],
    "closed": ["submit", "approve", "available", "agree", "close"],
    "expired": ["submit", "approve", "expire"],
}

STEPS: dict[str, Callable[[World], None]] = {}


def step(name: str) -> Callable[[Callable[[World], None]], Callable[[World], None]]:
    def register(fn: Callable[[World], None]) -> Callable[[World], None]:
        STEPS[name] = fn
        return fn

    return register


@step("submit")
def _submit(w: World) -> None:
    submit(w)


@step("approve")
def _approve(w: World) -> None:
    with as_(w.c.reviewer):
        w.agreements.decide_ethics(REQ, True, h("decision"))


@step("reject")
def _reject(w: World) -> None:
    with as_(w.c.reviewer):
        w.agreements.decide_ethics(REQ, False, h("decision"))


@step("available")
def _available(w: World) -> None:
    with as_(w.b.operator):
        w.agreements.decide_provider(REQ, w.b.id, True)


@step("unavailable")
def _unavailable(w: World) -> None:
    with as_(w.b.operator):
        w.agreements.decide_provider(REQ, w.b.id, False)


@step("agree")
def _agree(w: World) -> None:
    with as_(w.a.researcher):
        w.agreements.record_agreement(REQ, w.b.id, TERMS, *sigs(w))


@step("dispatch")
def _dispatch(w: World) -> None:
    with as_(w.b.operator):
        w.agreements.dispatch(REQ, w.b.id, h("shipment"))


@step("receive")
def _receive(w: World) -> None:
    with as_(w.a.researcher):
        w.agreements.receive(REQ, w.b.id, h("condition"))


@step("grant")
def _grant(w: World) -> None:
    with as_(w.b.operator):
        w.agreements.grant_data_access(REQ, w.b.id, now() + 30 * DAY)


@step("results")
def _results(w: World) -> None:
    with as_(w.a.researcher):
        w.agreements.return_results(REQ, h("results"))


@step("close")
def _close(w: World) -> None:
    with as_(w.a.researcher):
        w.agreements.close(REQ)


@step("revoke")
def _revoke(w: World) -> None:
    with as_(w.b.operator):
        w.agreements.revoke(REQ, w.b.id, h("consent withdrawn"))


@step("expire")
def _expire(w: World) -> None:
    past_deadline(w)
    with as_(w.outsider):
        w.agreements.expire(REQ)


def reach(w: World, stage: str) -> None:
    for name in STAGES[stage]:
        STEPS[name](w)


# ------------------------------------------------------------------ the state machine, exhaustively

# transition -> {stage: expected revert reason}; stages not listed are allowed
REFUSED: dict[str, dict[str, str]] = {
    "approve": {s: "bad state" for s in STAGES if s != "submitted"},
    "available": {s: "bad state" for s in STAGES if s != "approved"},
    "agree": {s: "bad state" for s in STAGES if s != "available"},
    "dispatch": {
        **{s: "bad state" for s in STAGES if s not in ("agreed", "dispatched", "received")},
        "dispatched": "already dispatched",
        "received": "already dispatched",
    },
    "receive": {
        **{s: "bad state" for s in STAGES if s not in ("agreed", "dispatched", "received")},
        "agreed": "not dispatched",
        "received": "already received",
    },
    "grant": {s: "bad state" for s in STAGES if s not in ("agreed", "dispatched", "received")},
    "results": {
        **{s: "bad state" for s in ("submitted", "rejected", "closed", "expired")},
        **{s: "no agreement" for s in ("approved", "available", "unavailable")},
    },
    "close": {s: "bad state" for s in ("rejected", "closed", "expired")},
    "revoke": {s: "bad state" for s in ("submitted", "rejected", "approved", "unavailable", "revoked", "expired")},
    "expire": {
        **{s: "bad state" for s in ("rejected", "closed", "expired")},
        **{s: "has agreement" for s in ("agreed", "dispatched", "received", "revoked")},
    },
}
MATRIX = [(t, s) for t in REFUSED for s in STAGES]


@pytest.mark.parametrize(("transition", "stage"), MATRIX, ids=[f"{t}-from-{s}" for t, s in MATRIX])
def test_state_machine(world: World, transition: str, stage: str) -> None:
    reach(world, stage)
    reason = REFUSED[transition].get(stage)
    if reason is None:
        STEPS[transition](world)
    else:
        with boa.reverts(reason):
            STEPS[transition](world)


# ------------------------------------------------------------------ the happy path, with events and views


def test_full_walk(world: World) -> None:
    ag = world.agreements
    submit(world)
    logged = events(ag, "Submitted")[0]
    assert (logged.request, logged.requester, logged.ethics, logged.commitment) == (
        REQ,
        world.a.id,
        world.c.id,
        h("commitment"),
    )
    assert list(logged.providers) == [world.b.id, world.c.id]
    assert logged.deadline == now() + ag.expiry_window() and logged.account == world.a.researcher.address
    req = ag.requests(REQ)
    assert (req.requester, req.ethics, req.state, req.submitted_by, req.agreements) == (
        world.a.id,
        world.c.id,
        SUBMITTED,
        world.a.researcher.address,
        0,
    )
    assert list(ag.providers_of(REQ)) == [world.b.id, world.c.id]
    assert ag.provider_state(REQ, world.b.id) == PENDING and ag.provider_state(REQ, world.a.id) == 0

    STEPS["approve"](world)
    logged = events(ag, "EthicsDecided")[0]
    assert (logged.ethics, logged.approved, logged.decision_hash) == (world.c.id, True, h("decision"))
    assert ag.request_state(REQ) == APPROVED and ag.requests(REQ).decision_hash == h("decision")

    STEPS["available"](world)
    assert events(ag, "ProviderDecided")[0].available is True
    with as_(world.c.operator):
        ag.decide_provider(REQ, world.c.id, False)
    assert ag.provider_state(REQ, world.b.id) == AVAILABLE
    assert ag.provider_state(REQ, world.c.id) == UNAVAILABLE

    STEPS["agree"](world)
    logged = events(ag, "AgreementRecorded")[0]
    assert (logged.provider, logged.terms_hash, logged.requester_signer, logged.provider_signer) == (
        world.b.id,
        TERMS,
        world.a.researcher.address,
        world.b.operator.address,
    )
    track = ag.tracks(REQ, world.b.id)
    assert (track.state, track.terms_hash, track.requester_signer, track.provider_signer) == (
        AGREED,
        TERMS,
        world.a.researcher.address,
        world.b.operator.address,
    )
    assert ag.requests(REQ).agreements == 1

    STEPS["dispatch"](world)
    assert events(ag, "Dispatched")[0].shipment_hash == h("shipment")
    STEPS["receive"](world)
    assert events(ag, "Received")[0].condition_hash == h("condition")
    track = ag.tracks(REQ, world.b.id)
    assert (track.shipment_hash, track.condition_hash) == (h("shipment"), h("condition"))
    assert track.dispatched_at > 0 and track.received_at > 0

    assert not ag.data_access_valid(REQ, world.b.id)
    STEPS["grant"](world)
    assert events(ag, "DataAccessGranted")[0].until == now() + 30 * DAY
    assert ag.data_access_valid(REQ, world.b.id)

    STEPS["results"](world)
    with as_(world.a.researcher):
        ag.return_results(REQ, h("results-2"))
    logged = events(ag, "ResultsReturned")[0]
    assert (logged.results_hash, logged.index) == (h("results-2"), 1)
    assert (ag.requests(REQ).results_count, ag.requests(REQ).results_hash) == (2, h("results-2"))

    STEPS["close"](world)
    assert events(ag, "Closed")[0].account == world.a.researcher.address
    assert ag.request_state(REQ) == CLOSED

    # consent withdrawn after closing: the provider still revokes what it gave
    STEPS["revoke"](world)
    assert events(ag, "Revoked")[0].reason_hash == h("consent withdrawn")
    assert ag.provider_state(REQ, world.b.id) == REVOKED
    assert ag.tracks(REQ, world.b.id).reason_hash == h("consent withdrawn")
    assert not ag.data_access_valid(REQ, world.b.id)


def test_ethics_rejection(world: World) -> None:
    reach(world, "rejected")
    assert events(world.agreements, "EthicsDecided")[0].approved is False
    assert world.agreements.request_state(REQ) == REJECTED


def test_provider_may_record_the_agreement(world: World) -> None:
    reach(world, "available")
    with as_(world.b.operator):
        world.agreements.record_agreement(REQ, world.b.id, TERMS, *sigs(world))
    assert events(world.agreements, "AgreementRecorded")[0].account == world.b.operator.address
    assert world.agreements.provider_state(REQ, world.b.id) == AGREED


def test_signature_with_v_0_or_1_is_accepted(world: World) -> None:
    reach(world, "available")
    requester_sig, provider_sig = sigs(world)
    requester_sig = requester_sig[:64] + bytes([requester_sig[64] - 27])
    with as_(world.a.researcher):
        world.agreements.record_agreement(REQ, world.b.id, TERMS, requester_sig, provider_sig)
    assert world.agreements.provider_state(REQ, world.b.id) == AGREED


def test_other_signer_of_the_same_institution_is_accepted(world: World) -> None:
    """Any researcher of the requester institution may sign, not only the submitter."""
    from tests.ledger.contracts.conftest import key_account

    second = key_account("A/second-researcher")
    with as_(world.a.admin):
        world.registry.grant_role(world.a.id, second.address, 8)
    reach(world, "available")
    with as_(world.a.researcher):
        world.agreements.record_agreement(REQ, world.b.id, TERMS, sign(second, TERMS), sigs(world)[1])
    assert world.agreements.tracks(REQ, world.b.id).requester_signer == second.address


def test_data_access_grant_can_change_and_runs_out(world: World) -> None:
    ag = world.agreements
    reach(world, "agreed")
    STEPS["grant"](world)
    with as_(world.b.operator):
        ag.grant_data_access(REQ, world.b.id, now() + DAY)
    assert ag.tracks(REQ, world.b.id).data_until == now() + DAY
    boa.env.time_travel(seconds=DAY - 1)
    assert ag.data_access_valid(REQ, world.b.id)
    boa.env.time_travel(seconds=1)
    assert not ag.data_access_valid(REQ, world.b.id)


def test_closing_the_request_ends_data_access(world: World) -> None:
    ag = world.agreements
    reach(world, "agreed")
    STEPS["grant"](world)
    with as_(world.b.operator):
        ag.grant_data_access(REQ, world.b.id, now() + DAY)
    assert ag.data_access_valid(REQ, world.b.id)
    with as_(world.a.researcher):
        ag.close(REQ)
    assert not ag.data_access_valid(REQ, world.b.id)


@pytest.mark.parametrize("stage", ["submitted", "approved", "available", "unavailable"])
def test_expire_by_anyone_after_deadline(world: World, stage: str) -> None:
    reach(world, stage)
    past_deadline(world)
    with as_(world.outsider):
        world.agreements.expire(REQ)
    assert events(world.agreements, "Expired")[0].account == world.outsider.address
    assert world.agreements.request_state(REQ) == EXPIRED


def test_expire_not_due_before_deadline(world: World) -> None:
    submit(world)
    boa.env.time_travel(seconds=world.agreements.requests(REQ).deadline - now() - 1)
    with boa.reverts("not due"):
        world.agreements.expire(REQ)
    boa.env.time_travel(seconds=1)
    world.agreements.expire(REQ)


@pytest.mark.parametrize(
    ("stage", "transition"), [("submitted", "approve"), ("approved", "available"), ("available", "agree")]
)
def test_pre_agreement_transitions_stop_at_deadline(world: World, stage: str, transition: str) -> None:
    reach(world, stage)
    past_deadline(world)
    with boa.reverts("past deadline"):
        STEPS[transition](world)


def test_fulfilment_continues_after_deadline(world: World) -> None:
    reach(world, "agreed")
    past_deadline(world)
    for name in ("dispatch", "receive", "grant", "results", "close"):
        STEPS[name](world)


def test_expiry_window_set_by_consortium_admin(world: World) -> None:
    ag = world.agreements
    assert ag.expiry_window() == 180 * DAY
    ag.set_expiry_window(7 * DAY)
    assert events(ag, "ExpiryWindowSet")[0].seconds == 7 * DAY
    submit(world)
    assert ag.requests(REQ).deadline == now() + 7 * DAY


@pytest.mark.parametrize("caller", ["outsider", "a.admin", "c.reviewer", "b.operator"])
def test_expiry_window_refused_to_others(world: World, caller: str) -> None:
    with as_(who(world, caller)), boa.reverts("not consortium admin"):
        world.agreements.set_expiry_window(DAY)


def test_expiry_window_must_be_positive(world: World) -> None:
    with boa.reverts("bad window"):
        world.agreements.set_expiry_window(0)


def test_eip191_digest_matches_eth_account(world: World) -> None:
    assert world.agreements.eip191_digest(TERMS) == _hash_eip191_message(encode_defunct(primitive=TERMS))


# ------------------------------------------------------------------ submit refusals


@pytest.mark.parametrize("caller", ["outsider", "deployer", "a.admin", "a.operator", "a.reviewer", "a.anchorer"])
def test_submit_only_by_researcher(world: World, caller: str) -> None:
    with as_(who(world, caller)), boa.reverts("not researcher"):
        world.agreements.submit(REQ, h("commitment"), [world.b.id], world.c.id)


def test_submit_refused_while_suspended(world: World) -> None:
    world.registry.suspend(world.a.id)
    with boa.reverts("institution suspended"):
        submit(world)


@pytest.mark.parametrize(
    ("request_id", "commitment", "providers", "ethics", "message"),
    [
        (ZERO32, "commitment", ["b"], "c", "empty request"),
        (REQ, None, ["b"], "c", "empty commitment"),
        (REQ, "commitment", [], "c", "no providers"),
        (REQ, "commitment", ["b"], "nowhere", "ethics institution not active"),
        (REQ, "commitment", ["b"], "suspended", "ethics institution not active"),
        (REQ, "commitment", ["b", "nowhere"], "c", "provider not active"),
        (REQ, "commitment", ["suspended"], "b", "provider not active"),
        (REQ, "commitment", ["b", "c", "b"], "c", "duplicate provider"),
    ],
    ids=lambda value: value if isinstance(value, str) else None,
)
def test_submit_refusals(
    world: World, request_id: bytes, commitment: str | None, providers: list[str], ethics: str, message: str
) -> None:
    world.registry.suspend(world.c.id) if "suspended" in (ethics, *providers) else None

    def ref(name: str) -> bytes:
        return {"nowhere": inst_id("nowhere"), "suspended": world.c.id}.get(name) or getattr(world, name).id

    with as_(world.a.researcher), boa.reverts(message):
        world.agreements.submit(
            request_id, h(commitment) if commitment else ZERO32, [ref(p) for p in providers], ref(ethics)
        )


def test_submit_twice_refused(world: World) -> None:
    submit(world)
    with boa.reverts("request exists"):
        submit(world)


# ------------------------------------------------------------------ wrong parties

# transition -> (stage where it is allowed, callers that must be refused, reason)
WRONG_PARTY: dict[str, tuple[str, list[str], str]] = {
    "approve": (
        "submitted",
        ["outsider", "deployer", "a.reviewer", "b.reviewer", "c.admin", "c.operator", "c.researcher", "c.anchorer"],
        "not ethics reviewer",
    ),
    "available": (
        "approved",
        ["outsider", "deployer", "a.operator", "c.operator", "b.admin", "b.researcher", "b.reviewer", "b.anchorer"],
        "not provider operator",
    ),
    "agree": (
        "available",
        ["outsider", "deployer", "a.operator", "a.admin", "b.researcher", "b.admin", "c.operator", "c.researcher"],
        "not a party",
    ),
    "dispatch": (
        "agreed",
        ["outsider", "deployer", "a.researcher", "a.operator", "c.operator", "b.admin", "b.researcher"],
        "not provider operator",
    ),
    "receive": (
        "dispatched",
        ["outsider", "deployer", "a.operator", "a.admin", "b.researcher", "b.operator", "c.researcher"],
        "not requester researcher",
    ),
    "grant": (
        "agreed",
        ["outsider", "deployer", "a.researcher", "a.operator", "c.operator", "b.admin", "b.researcher"],
        "not provider operator",
    ),
    "results": (
        "agreed",
        ["outsider", "deployer", "a.operator", "a.admin", "b.researcher", "b.operator", "c.researcher"],
        "not requester researcher",
    ),
    "close": (
        "approved",
        ["outsider", "deployer", "a.operator", "a.admin", "a.reviewer", "b.researcher", "c.reviewer"],
        "not requester researcher",
    ),
    "revoke": (
        "agreed",
        ["outsider", "deployer", "a.researcher", "a.operator", "c.operator", "b.admin", "b.researcher"],
        "not provider operator",
    ),
}
PARTY_CASES = [(t, c) for t, (_, callers, _) in WRONG_PARTY.items() for c in callers]


def call_as(w: World, transition: str, caller: str) -> None:
    """Run a transition's call with its normal arguments but from `caller`."""
    ag = w.agreements
    calls: dict[str, Callable[[], Any]] = {
        "approve": lambda: ag.decide_ethics(REQ, True, h("decision")),
        "available": lambda: ag.decide_provider(REQ, w.b.id, True),
        "agree": lambda: ag.record_agreement(REQ, w.b.id, TERMS, *sigs(w)),
        "dispatch": lambda: ag.dispatch(REQ, w.b.id, h("shipment")),
        "receive": lambda: ag.receive(REQ, w.b.id, h("condition")),
        "grant": lambda: ag.grant_data_access(REQ, w.b.id, now() + DAY),
        "results": lambda: ag.return_results(REQ, h("results")),
        "close": lambda: ag.close(REQ),
        "revoke": lambda: ag.revoke(REQ, w.b.id, h("reason")),
    }
    with as_(who(w, caller)):
        calls[transition]()


@pytest.mark.parametrize(("transition", "caller"), PARTY_CASES, ids=[f"{t}-by-{c}" for t, c in PARTY_CASES])
def test_wrong_party_refused(world: World, transition: str, caller: str) -> None:
    stage, _, reason = WRONG_PARTY[transition]
    reach(world, stage)
    with boa.reverts(reason):
        call_as(world, transition, caller)


# the acting party's own institution suspended
SUSPENDED_SELF = [
    ("approve", "c", "c.reviewer"),
    ("available", "b", "b.operator"),
    ("dispatch", "b", "b.operator"),
    ("receive", "a", "a.researcher"),
    ("grant", "b", "b.operator"),
    ("results", "a", "a.researcher"),
    ("close", "a", "a.researcher"),
    ("revoke", "b", "b.operator"),
]


@pytest.mark.parametrize(("transition", "inst", "caller"), SUSPENDED_SELF)
def test_suspended_party_refused(world: World, transition: str, inst: str, caller: str) -> None:
    reach(world, WRONG_PARTY[transition][0])
    world.registry.suspend(getattr(world, inst).id)
    with boa.reverts("institution suspended"):
        call_as(world, transition, caller)


# the counterparty's institution suspended
@pytest.mark.parametrize(
    ("transition", "suspended", "caller", "reason"),
    [
        ("agree", "a", "b.operator", "requester suspended"),
        ("agree", "b", "a.researcher", "provider suspended"),
        ("dispatch", "a", "b.operator", "requester suspended"),
        ("grant", "a", "b.operator", "requester suspended"),
    ],
)
def test_suspended_counterparty_refused(
    world: World, transition: str, suspended: str, caller: str, reason: str
) -> None:
    reach(world, WRONG_PARTY[transition][0])
    world.registry.suspend(getattr(world, suspended).id)
    with boa.reverts(reason):
        call_as(world, transition, caller)


@pytest.mark.parametrize(
    "transition", ["approve", "available", "agree", "dispatch", "receive", "grant", "results", "close", "revoke"]
)
def test_unknown_request(world: World, transition: str) -> None:
    party = {"approve": "c.reviewer", "receive": "a.researcher", "results": "a.researcher", "close": "a.researcher"}
    with boa.reverts("unknown request"):
        call_as(world, transition, party.get(transition, "b.operator"))
    with boa.reverts("unknown request"):
        world.agreements.expire(REQ)


@pytest.mark.parametrize("transition", ["available", "agree", "dispatch", "receive", "grant", "revoke"])
def test_institution_not_a_provider(world: World, transition: str) -> None:
    reach(world, "approved")
    ag = world.agreements
    calls: dict[str, Callable[[], Any]] = {
        "available": lambda: ag.decide_provider(REQ, world.a.id, True),
        "agree": lambda: ag.record_agreement(REQ, world.a.id, TERMS, *sigs(world)),
        "dispatch": lambda: ag.dispatch(REQ, world.a.id, h("shipment")),
        "receive": lambda: ag.receive(REQ, world.a.id, h("condition")),
        "grant": lambda: ag.grant_data_access(REQ, world.a.id, now() + DAY),
        "revoke": lambda: ag.revoke(REQ, world.a.id, h("reason")),
    }
    with as_(world.a.operator), boa.reverts("not a provider"):
        calls[transition]()


# ------------------------------------------------------------------ empty hashes and bad values


@pytest.mark.parametrize(
    ("transition", "stage", "caller", "message"),
    [
        ("approve", "submitted", "c.reviewer", "empty decision"),
        ("agree", "available", "a.researcher", "empty terms"),
        ("dispatch", "agreed", "b.operator", "empty shipment"),
        ("receive", "dispatched", "a.researcher", "empty condition"),
        ("results", "agreed", "a.researcher", "empty results"),
        ("revoke", "agreed", "b.operator", "empty reason"),
    ],
)
def test_empty_hash_refused(world: World, transition: str, stage: str, caller: str, message: str) -> None:
    reach(world, stage)
    ag = world.agreements
    calls: dict[str, Callable[[], Any]] = {
        "approve": lambda: ag.decide_ethics(REQ, True, ZERO32),
        "agree": lambda: ag.record_agreement(REQ, world.b.id, ZERO32, *sigs(world, ZERO32)),
        "dispatch": lambda: ag.dispatch(REQ, world.b.id, ZERO32),
        "receive": lambda: ag.receive(REQ, world.b.id, ZERO32),
        "results": lambda: ag.return_results(REQ, ZERO32),
        "revoke": lambda: ag.revoke(REQ, world.b.id, ZERO32),
    }
    with as_(who(world, caller)), boa.reverts(message):
        calls[transition]()


@pytest.mark.parametrize("offset", [0, -1])
def test_grant_until_must_be_in_future(world: World, offset: int) -> None:
    reach(world, "agreed")
    with as_(world.b.operator), boa.reverts("until not in future"):
        world.agreements.grant_data_access(REQ, world.b.id, now() + offset)


# ------------------------------------------------------------------ signatures


def high_s(sig: bytes) -> bytes:
    """The malleable twin of a signature (same signer, s' = n - s)."""
    s = int.from_bytes(sig[32:64], "big")
    return sig[:32] + (SECP256K1_N - s).to_bytes(32, "big") + bytes([55 - sig[64]])


def _sig(world: World, kind: str, good_signer: str) -> bytes:
    if kind == "short":
        return sign(world.a.researcher, TERMS)[:64]
    if kind == "garbage":
        return b"\x01" * 65
    if kind == "bad-v":
        good = sign(_account(world, good_signer), TERMS)
        return good[:64] + bytes([29])
    if kind == "high-s":
        return high_s(sign(_account(world, good_signer), TERMS))
    if kind == "other-terms":
        return sign(_account(world, good_signer), h("other terms"))
    return sign(_account(world, kind), TERMS)


def _account(world: World, spec: str) -> Any:
    if spec == "outsider":
        return world.outsider
    inst, attr = spec.split(".")
    return getattr(getattr(world, inst), attr)


BAD_SIGNERS = ["outsider", "b.researcher", "c.researcher", "a.operator", "a.admin", "b.operator"]
BAD_FORMS = ["short", "garbage", "bad-v", "high-s", "other-terms"]
BAD_PROVIDER_SIGNERS = ["outsider", "c.operator", "a.operator", "b.researcher", "b.admin", "a.researcher"]


@pytest.mark.parametrize("kind", [*BAD_SIGNERS, *BAD_FORMS])
def test_bad_requester_signature(world: World, kind: str) -> None:
    reach(world, "available")
    with as_(world.a.researcher), boa.reverts("bad requester signature"):
        world.agreements.record_agreement(
            REQ, world.b.id, TERMS, _sig(world, kind, "a.researcher"), sign(world.b.operator, TERMS)
        )


@pytest.mark.parametrize("kind", [*BAD_PROVIDER_SIGNERS, *BAD_FORMS])
def test_bad_provider_signature(world: World, kind: str) -> None:
    reach(world, "available")
    with as_(world.b.operator), boa.reverts("bad provider signature"):
        world.agreements.record_agreement(
            REQ, world.b.id, TERMS, sign(world.a.researcher, TERMS), _sig(world, kind, "b.operator")
        )
