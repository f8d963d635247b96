"""AuditAnchors: growing anchors per institution, history, cosigning by other institutions."""

from __future__ import annotations

import boa
import pytest

from tests.ledger.contracts.conftest import World, as_, events, h, inst_id, who

ZERO32 = b"\x00" * 32


def test_anchor_and_history(world: World) -> None:
    anchors = world.anchors
    assert anchors.latest(world.a.id) == (0, ZERO32, 0, 0)
    with as_(world.a.anchorer):
        anchors.anchor(10, h("root-10"))
        logged = events(anchors, "Anchored")[0]
        assert (logged.inst, logged.size, logged.root, logged.index, logged.account) == (
            world.a.id,
            10,
            h("root-10"),
            0,
            world.a.anchorer.address,
        )
        boa.env.time_travel(seconds=60)
        anchors.anchor(25, h("root-25"))
    assert anchors.anchor_count(world.a.id) == 2
    size, root, block, timestamp = anchors.latest(world.a.id)
    assert (size, root) == (25, h("root-25"))
    assert block == boa.env.evm.patch.block_number and timestamp == boa.env.evm.patch.timestamp
    first = anchors.anchor_at(world.a.id, 0)
    assert (first.size, first.root) == (10, h("root-10")) and first.timestamp < timestamp
    assert anchors.root_at_size(world.a.id, 10) == h("root-10")
    assert anchors.root_at_size(world.a.id, 11) == ZERO32
    assert anchors.anchor_count(world.b.id) == 0  # per institution


def test_cosign(world: World) -> None:
    anchors = world.anchors
    with as_(world.a.anchorer):
        anchors.anchor(10, h("root-10"))
    with as_(world.b.anchorer):
        anchors.cosign(world.a.id, 10, h("root-10"))
        logged = events(anchors, "Cosigned")[0]
        assert (logged.inst, logged.size, logged.root, logged.cosigner, logged.account) == (
            world.a.id,
            10,
            h("root-10"),
            world.b.id,
            world.b.anchorer.address,
        )
    with as_(world.c.anchorer):
        anchors.cosign(world.a.id, 10, h("root-10"))
    assert anchors.cosign_count(world.a.id, 10) == 2
    assert anchors.cosigned(world.a.id, 10, world.b.id)
    assert not anchors.cosigned(world.a.id, 10, world.a.id)


@pytest.mark.parametrize(
    ("caller", "message"),
    [
        ("outsider", "not anchorer"),
        ("a.admin", "not anchorer"),
        ("a.operator", "not anchorer"),
        ("a.researcher", "not anchorer"),
        ("a.reviewer", "not anchorer"),
        ("deployer", "not anchorer"),
    ],
)
@pytest.mark.parametrize("call", ["anchor", "cosign"])
def test_only_anchorers(world: World, caller: str, message: str, call: str) -> None:
    with as_(world.b.anchorer):
        world.anchors.anchor(5, h("b-5"))
    with as_(who(world, caller)), boa.reverts(message):
        if call == "anchor":
            world.anchors.anchor(10, h("root-10"))
        else:
            world.anchors.cosign(world.b.id, 5, h("b-5"))


@pytest.mark.parametrize("call", ["anchor", "cosign"])
def test_suspended_institution_refused(world: World, call: str) -> None:
    with as_(world.b.anchorer):
        world.anchors.anchor(5, h("b-5"))
    world.registry.suspend(world.a.id)
    with as_(world.a.anchorer), boa.reverts("institution suspended"):
        if call == "anchor":
            world.anchors.anchor(10, h("root-10"))
        else:
            world.anchors.cosign(world.b.id, 5, h("b-5"))


@pytest.mark.parametrize(("first", "second"), [(None, 0), (10, 10), (10, 9), (10, 0)])
def test_size_must_grow(world: World, first: int | None, second: int) -> None:
    with as_(world.a.anchorer):
        if first is not None:
            world.anchors.anchor(first, h("first"))
        with boa.reverts("size must grow"):
            world.anchors.anchor(second, h("second"))


def test_empty_root_refused(world: World) -> None:
    with as_(world.a.anchorer), boa.reverts("empty root"):
        world.anchors.anchor(1, ZERO32)


@pytest.mark.parametrize(
    ("inst", "size", "root", "message"),
    [
        ("a", 10, "root-10", "own institution"),
        ("b", 10, "root-10", "unknown anchor"),
        ("a", 11, "root-10", "unknown anchor"),
        ("a", 10, "root-other", "root mismatch"),
    ],
)
def test_cosign_refusals(world: World, inst: str, size: int, root: str, message: str) -> None:
    with as_(world.a.anchorer):
        world.anchors.anchor(10, h("root-10"))
    caller = world.a.anchorer if message == "own institution" else world.c.anchorer
    with as_(caller), boa.reverts(message):
        world.anchors.cosign(getattr(world, inst).id, size, h(root))


def test_cosign_twice_refused(world: World) -> None:
    with as_(world.a.anchorer):
        world.anchors.anchor(10, h("root-10"))
    with as_(world.b.anchorer):
        world.anchors.cosign(world.a.id, 10, h("root-10"))
        with boa.reverts("already cosigned"):
            world.anchors.cosign(world.a.id, 10, h("root-10"))


def test_anchor_at_bad_index(world: World) -> None:
    with boa.reverts("bad index"):
        world.anchors.anchor_at(world.a.id, 0)
    with boa.reverts("bad index"):
        world.anchors.anchor_at(inst_id("nowhere"), 0)
