"""ResourceRegistry: first publisher's institution owns a resource; versions; retirement."""

from __future__ import annotations

import boa
import pytest

from tests.ledger.contracts.conftest import World, as_, events, h, who

RES = h("resource-1")
ZERO32 = b"\x00" * 32


def test_publish_versions_and_retire(world: World) -> None:
    reg = world.resources
    assert reg.latest(RES) == (ZERO32, 0, ZERO32, False)
    with as_(world.a.operator):
        reg.publish(RES, h("v1"))
        logged = events(reg, "Published")[0]
        assert (logged.resource, logged.owner, logged.version, logged.commitment, logged.account) == (
            RES,
            world.a.id,
            1,
            h("v1"),
            world.a.operator.address,
        )
        reg.publish(RES, h("v2"))
    assert reg.latest(RES) == (world.a.id, 2, h("v2"), False)
    assert reg.commitment_at(RES, 1) == h("v1") and reg.commitment_at(RES, 2) == h("v2")
    version = reg.version_at(RES, 1)
    assert (version.commitment, version.publisher) == (h("v1"), world.a.operator.address)
    assert version.timestamp > 0
    assert reg.resource_count() == 1
    with as_(world.a.operator):
        reg.retire(RES)
        logged = events(reg, "Retired")[0]
        assert (logged.resource, logged.owner, logged.version) == (RES, world.a.id, 2)
    assert reg.latest(RES) == (world.a.id, 2, h("v2"), True)
    assert reg.commitment_at(RES, 1) == h("v1")  # history stays


def test_another_operator_of_the_owner_may_publish(world: World) -> None:
    from tests.ledger.contracts.conftest import key_account

    second = key_account("A/second-operator")
    with as_(world.a.admin):
        world.registry.grant_role(world.a.id, second.address, 2)
    with as_(world.a.operator):
        world.resources.publish(RES, h("v1"))
    with as_(second):
        world.resources.publish(RES, h("v2"))
    assert world.resources.latest(RES)[1] == 2


def test_resources_are_independent(world: World) -> None:
    with as_(world.a.operator):
        world.resources.publish(RES, h("a"))
    with as_(world.b.operator):
        world.resources.publish(h("resource-2"), h("b"))
    assert world.resources.latest(h("resource-2"))[:2] == (world.b.id, 1)
    assert world.resources.resource_count() == 2


@pytest.mark.parametrize("caller", ["outsider", "deployer", "a.admin", "a.researcher", "a.reviewer", "a.anchorer"])
@pytest.mark.parametrize("call", ["publish", "retire"])
def test_only_operators(world: World, caller: str, call: str) -> None:
    with as_(world.a.operator):
        world.resources.publish(RES, h("v1"))
    with as_(who(world, caller)), boa.reverts("not operator"):
        world.resources.publish(RES, h("v2")) if call == "publish" else world.resources.retire(RES)


@pytest.mark.parametrize("call", ["publish", "retire"])
def test_suspended_institution_refused(world: World, call: str) -> None:
    with as_(world.a.operator):
        world.resources.publish(RES, h("v1"))
    world.registry.suspend(world.a.id)
    with as_(world.a.operator), boa.reverts("institution suspended"):
        world.resources.publish(RES, h("v2")) if call == "publish" else world.resources.retire(RES)


@pytest.mark.parametrize("call", ["publish", "retire"])
def test_only_the_owner(world: World, call: str) -> None:
    with as_(world.a.operator):
        world.resources.publish(RES, h("v1"))
    with as_(world.b.operator), boa.reverts("not owner"):
        world.resources.publish(RES, h("v2")) if call == "publish" else world.resources.retire(RES)


@pytest.mark.parametrize(
    ("resource", "commitment", "message"), [(None, "c", "empty resource"), (RES, None, "empty commitment")]
)
def test_empty_values_refused(world: World, resource: bytes | None, commitment: str | None, message: str) -> None:
    with as_(world.a.operator), boa.reverts(message):
        world.resources.publish(resource or ZERO32, h(commitment) if commitment else ZERO32)


@pytest.mark.parametrize("call", ["publish", "retire"])
def test_retired_is_final(world: World, call: str) -> None:
    with as_(world.a.operator):
        world.resources.publish(RES, h("v1"))
        world.resources.retire(RES)
        with boa.reverts("retired"):
            world.resources.publish(RES, h("v2")) if call == "publish" else world.resources.retire(RES)


def test_retire_unknown(world: World) -> None:
    with as_(world.a.operator), boa.reverts("unknown resource"):
        world.resources.retire(RES)


@pytest.mark.parametrize("view", ["commitment_at", "version_at"])
@pytest.mark.parametrize("version", [0, 2])
def test_bad_version(world: World, view: str, version: int) -> None:
    with as_(world.a.operator):
        world.resources.publish(RES, h("v1"))
    with boa.reverts("bad version"):
        getattr(world.resources, view)(RES, version)
