"""The provider transitions table: every allowed move works, every forbidden one is a Conflict naming both."""

from __future__ import annotations

import itertools

import pytest
from sqlalchemy.orm import Session

from biobank.access import providers
from biobank.access.models import ALLOWED_TRANSITIONS, MANAGER_TARGETS, ProviderState, can_transition
from biobank.access.schemas import ProviderStateChange
from biobank.kit.errors import Conflict, Invalid
from tests.access.conftest import AccessWorld
from tests.access.factories import approve_ethics, make_access_request, viewer_of

S = ProviderState
PAIRS = list(itertools.product(ProviderState, ProviderState))
FORBIDDEN = [(a, b) for a, b in PAIRS if b not in ALLOWED_TRANSITIONS[a]]
ALLOWED = [(a, b) for a, b in PAIRS if b in ALLOWED_TRANSITIONS[a]]


def test_the_table_is_the_negotiator_track() -> None:
    assert set(ALLOWED_TRANSITIONS) == set(ProviderState)
    assert ALLOWED_TRANSITIONS[S.CONTACTED] == {S.CHECKING_AVAILABILITY, S.AVAILABLE, S.UNAVAILABLE}
    assert ALLOWED_TRANSITIONS[S.CHECKING_AVAILABILITY] == {S.AVAILABLE, S.UNAVAILABLE}
    assert ALLOWED_TRANSITIONS[S.CONDITIONS_INDICATED] >= {S.CONDITIONS_MET}
    assert ALLOWED_TRANSITIONS[S.CONDITIONS_MET] >= {S.MADE_AVAILABLE}
    assert ALLOWED_TRANSITIONS[S.UNAVAILABLE] == set()
    assert ALLOWED_TRANSITIONS[S.REVOKED] == set()
    assert all(a not in ALLOWED_TRANSITIONS[a] for a in ProviderState), "no self-loops"
    assert S.REVOKED not in MANAGER_TARGETS


@pytest.mark.parametrize(("current", "target"), FORBIDDEN, ids=[f"{a}->{b}" for a, b in FORBIDDEN])
def test_forbidden_transition(current: ProviderState, target: ProviderState) -> None:
    assert not can_transition(current, target)


@pytest.mark.parametrize(("current", "target"), ALLOWED, ids=[f"{a}->{b}" for a, b in ALLOWED])
def test_allowed_transition(current: ProviderState, target: ProviderState) -> None:
    assert can_transition(current, target)


def test_the_service_refuses_every_forbidden_transition(aw: AccessWorld, db: Session) -> None:
    """Through change_state: each forbidden (state, manager target) is a Conflict naming both; nothing moves."""
    request = make_access_request(db, aw.users["researcher"], collections=[aw.collection_a], submit=True)
    approve_ethics(db, request, aw.users["ethics"])
    viewer = viewer_of(db, aw.users["owner"])
    track = providers.get_track(db, request, aw.biobank_a)
    checked = 0
    for current, target in FORBIDDEN:
        track.state = current
        db.flush()
        change = ProviderStateChange(state=target, note="conditions")
        if target not in MANAGER_TARGETS:
            with pytest.raises(Invalid):
                providers.change_state(db, viewer, request, track, change)
            continue
        with pytest.raises(Conflict) as caught:
            providers.change_state(db, viewer, request, track, change)
        assert current.value in str(caught.value.detail) and target.value in str(caught.value.detail)
        assert track.state == current
        checked += 1
    assert checked == len([p for p in FORBIDDEN if p[1] in MANAGER_TARGETS])
    for current, target in ALLOWED:
        if target not in MANAGER_TARGETS:
            continue
        track.state = current
        db.flush()
        providers.change_state(db, viewer, request, track, ProviderStateChange(state=target, note="conditions"))
        assert track.state == target
    db.rollback()
