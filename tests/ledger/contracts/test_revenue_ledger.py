"""RevenueLedger: fee splits in basis points with an explicit remainder, pull withdrawals."""

from __future__ import annotations

import boa
import pytest

from tests.ledger.contracts.conftest import World, as_, events, h, inst_id, who

AGR = h("agreement-1")
ZERO32 = b"\x00" * 32


def test_abi_is_not_payable(world: World) -> None:
    from biobank.ledger.compiler import compile_contract

    for name in ("RevenueLedger", "InstitutionRegistry", "AccessAgreements", "ResourceRegistry", "AuditAnchors"):
        mutabilities = {item.get("stateMutability") for item in compile_contract(name).abi}
        assert "payable" not in mutabilities


def test_record_fee_splits_with_explicit_remainder(world: World) -> None:
    rev = world.revenue
    insts = [world.a.id, world.b.id, world.c.id]
    with as_(world.b.operator):
        rev.record_fee(AGR, 1000, insts, [3334, 3333, 3333], world.b.id)
    recorded = events(rev, "FeeRecorded")[0]
    assert (recorded.agreement, recorded.recorder, recorded.amount) == (AGR, world.b.id, 1000)
    assert list(recorded.institutions) == insts and list(recorded.bps) == [3334, 3333, 3333]
    credited = [(e.inst, e.amount, e.bps) for e in events(rev, "Credited")]
    assert credited == [(world.a.id, 333, 3334), (world.b.id, 333, 3333), (world.c.id, 333, 3333)]
    remainder = events(rev, "RemainderAssigned")[0]
    assert (remainder.inst, remainder.amount) == (world.b.id, 1)
    assert [rev.balance_of(i) for i in insts] == [333, 334, 333]
    assert sum(rev.balance_of(i) for i in insts) == 1000
    assert rev.credit_of(AGR, world.b.id) == 334
    fee = rev.fees(AGR)
    assert (fee.amount, fee.recorder, fee.remainder_to, fee.remainder) == (1000, world.b.id, world.b.id, 1)
    assert fee.recorded_at > 0 and rev.fee_count() == 1


def test_single_institution_takes_everything(world: World) -> None:
    with as_(world.a.operator):
        world.revenue.record_fee(AGR, 7, [world.c.id], [10000], world.c.id)
    assert events(world.revenue, "RemainderAssigned")[0].amount == 0
    assert world.revenue.balance_of(world.c.id) == 7


def test_zero_share_is_allowed(world: World) -> None:
    with as_(world.a.operator):
        world.revenue.record_fee(AGR, 99, [world.a.id, world.b.id], [0, 10000], world.a.id)
    assert (world.revenue.balance_of(world.a.id), world.revenue.balance_of(world.b.id)) == (0, 99)


def test_balances_accumulate_over_fees(world: World) -> None:
    rev = world.revenue
    with as_(world.a.operator):
        rev.record_fee(h("agr-1"), 100, [world.a.id, world.b.id], [5000, 5000], world.a.id)
        rev.record_fee(h("agr-2"), 101, [world.a.id, world.b.id], [5000, 5000], world.a.id)
    assert (rev.balance_of(world.a.id), rev.balance_of(world.b.id)) == (101, 100)
    assert rev.credited(world.a.id) == 101


def test_withdraw(world: World) -> None:
    rev = world.revenue
    with as_(world.a.operator):
        rev.record_fee(AGR, 1000, [world.a.id, world.b.id], [5000, 5000], world.a.id)
    with as_(world.a.admin):
        rev.withdraw(world.a.id, 300)
        logged = events(rev, "Withdrawn")[0]
        assert (logged.inst, logged.amount, logged.account) == (world.a.id, 300, world.a.admin.address)
        rev.withdraw(world.a.id, 200)
        assert (rev.balance_of(world.a.id), rev.withdrawn(world.a.id), rev.credited(world.a.id)) == (0, 500, 500)
        with boa.reverts("insufficient balance"):
            rev.withdraw(world.a.id, 1)
    assert rev.balance_of(world.b.id) == 500


@pytest.mark.parametrize("caller", ["outsider", "deployer", "a.admin", "a.researcher", "a.reviewer", "a.anchorer"])
def test_record_fee_only_by_operator(world: World, caller: str) -> None:
    with as_(who(world, caller)), boa.reverts("not operator"):
        world.revenue.record_fee(AGR, 10, [world.a.id], [10000], world.a.id)


def test_record_fee_refused_while_suspended(world: World) -> None:
    world.registry.suspend(world.a.id)
    with as_(world.a.operator), boa.reverts("institution suspended"):
        world.revenue.record_fee(AGR, 10, [world.b.id], [10000], world.b.id)


@pytest.mark.parametrize(
    ("agreement", "amount", "insts", "bps", "remainder_to", "message"),
    [
        ("", 10, ["a"], [10000], "a", "empty agreement"),
        ("agr", 0, ["a"], [10000], "a", "zero amount"),
        ("agr", 10, [], [], "a", "no institutions"),
        ("agr", 10, ["a", "b"], [10000], "a", "length mismatch"),
        ("agr", 10, ["a"], [5000, 5000], "a", "length mismatch"),
        ("agr", 10, ["a", "nowhere"], [5000, 5000], "a", "unknown institution"),
        ("agr", 10, ["a", "b", "a"], [4000, 2000, 4000], "a", "duplicate institution"),
        ("agr", 10, ["a", "b"], [5000, 4999], "a", "bps must sum to 10000"),
        ("agr", 10, ["a", "b"], [5000, 5001], "a", "bps must sum to 10000"),
        ("agr", 10, ["a", "b"], [0, 0], "a", "bps must sum to 10000"),
        ("agr", 10, ["a", "b"], [5000, 5000], "c", "remainder_to not listed"),
        ("agr", 10, ["a", "b"], [5000, 5000], "", "remainder_to not listed"),
    ],
)
def test_record_fee_refusals(
    world: World, agreement: str, amount: int, insts: list[str], bps: list[int], remainder_to: str, message: str
) -> None:
    def ref(name: str) -> bytes:
        if name == "":
            return ZERO32
        return inst_id("nowhere") if name == "nowhere" else getattr(world, name).id

    with as_(world.a.operator), boa.reverts(message):
        world.revenue.record_fee(
            h(agreement) if agreement else ZERO32, amount, [ref(i) for i in insts], bps, ref(remainder_to)
        )


def test_one_fee_per_agreement(world: World) -> None:
    with as_(world.a.operator):
        world.revenue.record_fee(AGR, 10, [world.a.id], [10000], world.a.id)
    with as_(world.b.operator), boa.reverts("fee exists"):
        world.revenue.record_fee(AGR, 20, [world.b.id], [10000], world.b.id)


def test_credit_to_suspended_institution_is_kept(world: World) -> None:
    world.registry.suspend(world.c.id)
    with as_(world.a.operator):
        world.revenue.record_fee(AGR, 10, [world.c.id], [10000], world.c.id)
    assert world.revenue.balance_of(world.c.id) == 10


@pytest.mark.parametrize("caller", ["outsider", "deployer", "a.operator", "a.researcher", "b.admin"])
def test_withdraw_only_by_the_institution_admin(world: World, caller: str) -> None:
    with as_(world.a.operator):
        world.revenue.record_fee(AGR, 10, [world.a.id], [10000], world.a.id)
    with as_(who(world, caller)), boa.reverts("not institution admin"):
        world.revenue.withdraw(world.a.id, 1)


def test_withdraw_refusals(world: World) -> None:
    with as_(world.a.operator):
        world.revenue.record_fee(AGR, 10, [world.a.id], [10000], world.a.id)
    with as_(world.a.admin):
        with boa.reverts("zero amount"):
            world.revenue.withdraw(world.a.id, 0)
        with boa.reverts("insufficient balance"):
            world.revenue.withdraw(world.a.id, 11)
    world.registry.suspend(world.a.id)
    with as_(world.a.admin), boa.reverts("institution suspended"):
        world.revenue.withdraw(world.a.id, 1)


def test_large_amount_does_not_lose_units(world: World) -> None:
    amount = 10**60 + 7
    with as_(world.a.operator):
        world.revenue.record_fee(AGR, amount, [world.a.id, world.b.id, world.c.id], [1, 9998, 1], world.c.id)
    total = sum(world.revenue.balance_of(i) for i in (world.a.id, world.b.id, world.c.id))
    assert total == amount
